"""``act-lens --version``, ``act-lens models`` and ``act-lens tasks``: what is known, installed,
and where the data must be, from the registries alone (no torch, nothing written)."""

import json
import subprocess
import sys

import act_lens
from act_lens.app.cli import main

_SCRIPT = """
import json, sys
from act_lens.app.cli import main
codes = [main(["models"]), main(["tasks", "--data-dir", sys.argv[1]])]
print(json.dumps([codes, sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformer_lens"))]))
"""


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"act-lens {act_lens.__version__}"


def test_models_and_tasks_list_what_is_known(tmp_path, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("smollm2-135m", "gemma3-270m", "qwen2.5-coder-1.5b", "tiny-random"):
        assert name in out
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "stsa.binary.dev").write_text("1 fine .\n")
    assert main(["tasks", "--data-dir", str(tmp_path)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert rows["reviews"].endswith("built in")
    assert rows["sst2"].endswith("found (1 eval file)")
    assert rows["trec"].endswith(f"{tmp_path}/trec/ missing")
    assert main(["tasks"]) == 0
    assert "<--data-dir>/mmlu/" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == [tmp_path / "sst2"]  # nothing written


def test_the_listings_do_not_import_torch(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    codes, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert codes == [0, 0] and heavy == []
