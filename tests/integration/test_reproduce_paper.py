"""analyses/reproduce_paper.py on the tiny model: parts, reuse of saved files, the table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "analyses" / "reproduce_paper.py"

pytestmark = pytest.mark.data


def _script():
    spec = importlib.util.spec_from_file_location("reproduce_paper", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _common(data_dir: Path, out: Path) -> list[str]:
    return [
        "--model", "tiny-random", "--data-dir", str(data_dir), "--out", str(out),
        "--limit", "3", "--calib", "4", "--mixed-per-task", "2", "--mc-per-task", "2",
        "--batch-size", "4", "--tasks", "sst2,trec", "--layers", "all",
    ]  # fmt: skip


def test_parts_write_files_that_later_runs_reuse(
    data_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    rp = _script()
    real_evaluate = rp.evaluate
    out = tmp_path / "paper"
    assert rp.main(_common(data_dir, out) + ["--parts", "mixed,cls,sweeps"]) == 0
    names = {p.name for p in out.iterdir()}
    for name in ("head_set_mixed.json", "head_set_sst2.json", "head_effects_trec.pt", "cls_sst2.json",
                 "sst2_baseline.json", "sst2_old_default.json", "trec_mixed.json", "sweeps.json", "table.md"):  # fmt: skip
        assert name in names, name
    rows = json.loads((out / "cls_sst2.json").read_text())["rows"]
    assert {"act", "mixed", "random", "old_default", "cc", "cc+act", "act_vs_cc"} <= set(rows)
    assert rows["random"]["heads"] == rows["act"]["heads"] and rows["act"]["n"] == 3
    table = (out / "table.md").read_text()
    assert "## Classification, zero-shot" in table and "Mean ACT delta over 2 tasks" in table

    # A second run finds every head set and evaluation on disk: no search, no evaluation.
    def refuse(*a, **k):
        raise AssertionError("reused files must not be recomputed")

    monkeypatch.setattr(rp, "search_heads", refuse)
    monkeypatch.setattr(rp, "evaluate", refuse)
    assert rp.main(_common(data_dir, out) + ["--parts", "cls"]) == 0
    assert (out / "table.md").read_text() == table
    (out / "table.md").unlink()
    assert rp.main(["--table-only", "--out", str(out)]) == 0
    assert (out / "table.md").read_text() == table

    # A result saved under other numerics (here another batch size) is evaluated again, so
    # no comparison mixes two roundings; the others are still reused.
    saved = out / "sst2_baseline.json"
    record = json.loads(saved.read_text())
    assert record["info"]["numerics"]["batch_size"] == 4
    record["info"]["numerics"]["batch_size"] = 99
    saved.write_text(json.dumps(record))
    again = []
    monkeypatch.setattr(rp, "evaluate", lambda *a, **k: again.append(k) or real_evaluate(*a, **k))
    assert rp.main(_common(data_dir, out) + ["--parts", "cls"]) == 0
    assert len(again) == 1 and json.loads(saved.read_text())["info"]["numerics"]["batch_size"] == 4


def test_mc_and_kshot_parts(data_dir: Path, tmp_path: Path) -> None:
    rp = _script()
    out = tmp_path / "p"
    args = _common(data_dir, out) + ["--parts", "mc,kshot", "--shots", "1", "--seeds", "2",
                                     "--kshot-tasks", "sst2"]  # fmt: skip
    assert rp.main(args) == 0
    assert {f"mc_{t}.json" for t in rp.MC} <= {p.name for p in out.iterdir()}
    k = json.loads((out / "kshot_sst2.json").read_text())
    assert k["shots"] == 1 and len(k["per_seed"]) == 2
    s0 = json.loads((out / "sst2_k1s0_baseline.json").read_text())
    s1 = json.loads((out / "sst2_k1s1_baseline.json").read_text())
    assert s0["uids"] == s1["uids"] and s0["scores"] != s1["scores"]  # other demonstrations
    table = (out / "table.md").read_text()
    assert "## Multiple choice" in table and "## k-shot" in table


@pytest.mark.parametrize(
    "bad", [["--parts", "nope"], ["--tasks", "arc_easy"], ["--kshot-tasks", "mmlu"]]
)
def test_bad_arguments_exit_2_before_a_model_loads(tmp_path: Path, bad: list[str]) -> None:
    rp = _script()
    with pytest.raises(SystemExit) as err:
        rp.main(["--model", "does-not-exist", "--out", str(tmp_path / "o"), *bad])
    assert err.value.code == 2
