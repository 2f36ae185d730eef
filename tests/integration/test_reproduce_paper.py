"""analyses/reproduce_paper.py on the tiny model: parts run separately and merge into one table."""

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
        "--model",
        "tiny-random",
        "--layers",
        "all",
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--limit",
        "3",
        "--calib-per-task",
        "1",
        "--screen",
        "2",
        "--batch-size",
        "4",
    ]


def test_parts_run_separately_and_merge(data_dir: Path, tmp_path: Path) -> None:
    rp = _script()
    out = tmp_path / "paper"
    assert rp.main(_common(data_dir, out) + ["--parts", "cls,sweeps"]) == 0
    assert {
        "cls.json",
        "sweeps.json",
        "head_set_cls.json",
        "table.md",
        "eval_classification.png",
    } <= {p.name for p in out.iterdir()}
    first = (out / "table.md").read_text()
    assert "## Classification" in first and "## Multiple choice" not in first

    args = _common(data_dir, out) + [
        "--parts",
        "mc,kshot",
        "--shots",
        "1",
        "--seeds",
        "2",
        "--kshot-tasks",
        "sst2,trec",
    ]
    assert rp.main(args) == 0
    table = (out / "table.md").read_text()
    for section in (
        "## Classification",
        "## SST-2 sweeps",
        "## Multiple choice",
        "Content-blind guess",
        "## 1-shot classification over 2 seeds",
    ):
        assert section in table
    # the cls section still shows the command that produced it, not the later one
    assert "--parts cls,sweeps" in table and "--parts mc,kshot" in table

    # the summary is rebuilt from the part files alone, without a model
    (out / "table.md").unlink()
    assert rp.main(["--table-only", "--out", str(out), "--model", "does-not-exist"]) == 0
    assert (out / "table.md").read_text() == table
    assert rp.main(["--table-only", "--out", str(tmp_path / "empty")]) == 2

    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"cls", "sweeps", "mc", "kshot"}
    assert set(results["cls"]["tasks"]) == set(rp.CLS)
    for row in results["cls"]["tasks"].values():
        assert {"act", "random", "all_heads", "cc", "cc+act", "act_vs_cc"} <= set(row)
        assert row["act"]["n"] == 3
    assert set(results["mc"]["tasks"]) == set(rp.MC)
    for row in results["mc"]["tasks"].values():
        assert {"act", "random", "cc", "cc+act", "act_vs_cc"} <= set(row)
    kshot = results["kshot"]
    assert kshot["shots"] == 1 and set(kshot["tasks"]) == {"sst2", "trec"}
    for row in kshot["tasks"].values():
        assert len(row["per_seed"]) == 2
        assert {"cc", "cc+act"} <= set(row) and all("cc" in r for r in row["per_seed"])
        assert row["delta"]["mean"] == pytest.approx(sum(r["delta"] for r in row["per_seed"]) / 2)
    # per-seed results are saved; the seeds draw different demonstrations, so the scores differ
    s0 = json.loads((out / "kshot1_sst2_s0_baseline.json").read_text())
    s1 = json.loads((out / "kshot1_sst2_s1_baseline.json").read_text())
    assert (s0["shots"], s0["seed"], s1["seed"]) == (1, 0, 1)
    assert s0["uids"] == s1["uids"] and s0["scores"] != s1["scores"]


def test_kshot_without_classification_head_set_says_what_to_run(
    data_dir: Path, tmp_path: Path
) -> None:
    rp = _script()
    with pytest.raises(SystemExit, match="run the 'cls' part first"):
        rp.main(_common(data_dir, tmp_path) + ["--parts", "kshot"])


@pytest.mark.parametrize(
    "bad", [["--parts", "cls,nope"], ["--parts", "kshot", "--kshot-tasks", "arc_easy"]]
)
def test_bad_parts_are_rejected_before_loading(bad: list[str], tmp_path: Path) -> None:
    rp = _script()
    with pytest.raises(SystemExit) as err:
        rp.main(["--model", "does-not-exist", "--out", str(tmp_path)] + bad)
    assert err.value.code == 2


def test_reuse_head_sets_skips_the_search_and_keeps_its_command(
    data_dir: Path, tmp_path: Path
) -> None:
    rp = _script()
    out = tmp_path / "paper"
    first = _common(data_dir, out) + ["--parts", "cls"]
    assert rp.main(first) == 0
    searched = json.loads((out / "cls.json").read_text())
    assert searched["search_command"] == searched["command"]
    assert rp.main(_common(data_dir, out) + ["--parts", "cls", "--reuse-head-sets"]) == 0
    reused = json.loads((out / "cls.json").read_text())
    assert reused["timings"]["search_s"] == 0.0
    assert reused["head_set"]["heads"] == searched["head_set"]["heads"]
    assert reused["search_command"] == searched["command"] != reused["command"]
    assert "(searched by `" in (out / "table.md").read_text()


def test_content_blind_guess_is_the_overlap_of_answer_and_gold_rates(tmp_path: Path) -> None:
    from act_lens.evaluate import EvalResult

    rp = _script()
    r = EvalResult(
        task="t",
        split="eval",
        model="m",
        shots=0,
        seed=0,
        scoring="first_token",
        uids=("a", "b", "c", "d"),
        labels=(0, 0, 1, 2),
        predictions=(0, 1, 1, 1),
        scores=((0.0, 0.0, 0.0),) * 4,
        interval=(0.0, 1.0),
    )
    r.save(tmp_path / "r.json")
    # P(pred) = (1/4, 3/4, 0), P(gold) = (1/2, 1/4, 1/4) -> 1/8 + 3/16 = 5/16
    assert rp._content_blind(tmp_path / "r.json") == pytest.approx(5 / 16)
    assert rp._content_blind(tmp_path / "missing.json") is None
