"""analyses/compare_methods.py on the tiny model: every method on the same examples."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "analyses" / "compare_methods.py"
pytestmark = pytest.mark.data


def test_every_method_is_evaluated_on_the_same_examples(data_dir, tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("compare_methods", SCRIPT)
    cm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cm)
    out = tmp_path / "m"
    args = ["--model", "tiny-random", "--data-dir", str(data_dir), "--tasks", "trec", "--limit", "4",
            "--calib", "6", "--screen", "4", "--layers", "all", "--batch-size", "4",
            "--act-from", str(tmp_path / "none"), "--out", str(out)]  # fmt: skip
    assert cm.main(args) == 0
    d = json.loads((out / "cls_trec.json").read_text())
    assert set(d["rows"]) == set(cm.METHODS)
    uids = {json.loads((out / f"trec_{m}.json").read_text())["uids"] == json.loads((out / "trec_baseline.json").read_text())["uids"]
            for m in ("act", "zt_sup", "zt_unsup", "act+zt")}  # fmt: skip
    assert uids == {True}
    sup = json.loads((out / "head_set_ztsup_trec.json").read_text())
    assert sup["method"] == "zerotuning" and sup["provenance"]["supervised"] is True
    table = (out / "table.md").read_text()
    assert "ZeroTuning (unsup.)" in table and "| trec | 4 |" in table
