"""Bad input is refused before a model loads: one error line, exit status 2, nothing written.

All cases run in one fresh interpreter, which must not have imported torch at the end: the
checks happen before anything slow (a model load imports torch first).
"""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

RUNNER = """
import contextlib, io, json, sys
from act_lens.app.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    out.append({"rc": rc, "err": err.getvalue()})
print(json.dumps({"results": out, "torch": "torch" in sys.modules}))
"""


def _cases(tmp, data_dir):
    bad_json = tmp / "bad.json"
    bad_json.write_text("{not json")
    bad_shape = tmp / "shape.json"
    bad_shape.write_text(json.dumps({"heads": {"2": "x"}}))
    a_file = tmp / "a_file"
    a_file.write_text("")
    empty = tmp / "empty_data"
    empty.mkdir()
    tiny = ["--model", "tiny-random"]
    sst2 = ["--task", "sst2", "--data-dir", str(data_dir)]
    return [
        (["eval", *tiny, "--task", "nope"], "unknown task 'nope'"),
        (["eval", *tiny, "--task", "sst2"], "needs its raw files"),
        (["eval", *tiny, "--task", "sst2", "--data-dir", str(tmp / "no_such")], "does not exist"),
        (["eval", *tiny, "--task", "sst2", "--data-dir", str(empty)], "no 'sst2' folder"),
        (["eval", *tiny, "--task", "sst2", "--data-file", str(tmp / "no.txt")], "does not exist"),
        (["eval", *tiny, *sst2, "--head-set", str(tmp / "none.json")], "does not exist"),
        (["eval", *tiny, *sst2, "--head-set", str(bad_json)], "not valid JSON"),
        (["eval", *tiny, *sst2, "--head-set", str(bad_shape)], "lists of head numbers"),
        (["run", *tiny, "--task", "reviews", "--out", "/proc/act_lens_x"], "cannot be written"),
        (["run", *tiny, "--task", "reviews", "--out", str(a_file / "sub")], "is a file"),
        (["eval", *tiny, *sst2, "--limit", "0"], "--limit must be >= 1"),
        (["search", *tiny, *sst2, "--calib-size", "0"], "--calib-size must be >= 1"),
        (["eval", *tiny, *sst2, "--batch-size", "0"], "--batch-size must be >= 1"),
        (["eval", *tiny, *sst2, "--shots", "-1"], "--shots must be >= 0"),
        (["eval", *tiny, *sst2, "--beta", "1.5"], "--beta must be in [0, 1]"),
        (["search", *tiny, *sst2, "--layers", "5-2"], "runs backwards"),
        (["search", *tiny, *sst2, "--layers", "0-5"], "has 3 layers"),
        (["eval", "--model", str(tmp / "no.gguf"), *sst2], "does not exist"),
        (["search", *tiny, "--task", "hellaswag", "--data-dir", str(data_dir)], "no train split"),
    ]


def test_bad_input_is_refused_before_a_model_loads(tmp_path, data_dir):
    cases = _cases(tmp_path, data_dir)
    argvs = []
    for i, (argv, _) in enumerate(cases):
        # every case gets its own output folder, which must not exist afterwards
        argvs.append(argv if "--out" in argv else [*argv, "--out", str(tmp_path / f"out{i}")])
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(argvs)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, message), res in zip(cases, report["results"], strict=True):
        lines = res["err"].strip().splitlines()
        assert res["rc"] == 2, (argv, res)
        assert len(lines) == 1 and lines[0].startswith("act-lens: error: "), (argv, res["err"])
        assert message in lines[0], (argv, lines[0])
    assert not report["torch"], "a check imported torch: it ran after slow work had started"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a_file",
        "bad.json",
        "empty_data",
        "shape.json",
    ]  # fmt: skip  (no output folder, config.json or probe file was left)


@pytest.mark.parametrize("command", ["eval", "sinks"])
def test_good_input_passes_the_checks(tmp_path, data_dir, command):
    from act_lens.app.cli import resolve_config
    from act_lens.app.preflight import preflight

    cfg = resolve_config(
        [command, "--model", "tiny-random", "--task", "sst2", "--task", "reviews",
         "--data-dir", str(data_dir), "--out", str(tmp_path / "new" / "deeper")]
    )  # fmt: skip
    preflight(cfg)
    assert not (tmp_path / "new").exists()  # checked through its parent, not created
