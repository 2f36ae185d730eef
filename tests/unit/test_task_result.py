"""TaskResult and results.json: typed, versioned, round-tripped, and the flat files written
before the schema key still load (and give the same report table)."""

import json

import pytest

from act_lens.app.report import method_name, results_table
from act_lens.errors import DataError
from act_lens.evaluation.stats import compare_correct
from act_lens.evaluation.task_result import (
    SCHEMA,
    Accuracy,
    Control,
    TaskResult,
    load_results,
    save_results,
)

# A row as act-lens wrote it before results.json had a "schema" key.
FLAT = {
    "task": "reviews", "seed": 0, "shots": 0, "n": 4,
    "baseline_accuracy": 0.5, "baseline_interval": [0.0, 1.0],
    "baseline_prediction_rate": [0.75, 0.25],
    "eval_data": "built-in reviews (eval split)", "calibration_data": None, "config_id": "abc",
    "method": "ACT", "intervention": {"method": "ACT", "beta": 0.4}, "heads": 3,
    "act_accuracy": 0.75, "act_interval": [0.25, 1.0], "act_prediction_rate": [0.5, 0.5],
    "delta": 0.25, "interval": [-0.25, 0.75], "p_value": 1.0,
    "flips": {"gained": 2, "lost": 1},
    "random": {"accuracy": 0.5, "interval": [0.0, 1.0], "delta": 0.0,
               "delta_interval": [-0.5, 0.5], "p_value": 1.0},
    "cc": {"accuracy": 0.25, "interval": [0.0, 0.75], "delta": -0.25,
           "delta_interval": [-0.75, 0.25], "p_value": 1.0},
    "cc_act": {"accuracy": 0.5, "interval": [0.0, 1.0], "delta": 0.0,
               "delta_interval": [-0.5, 0.5], "p_value": 1.0},
    "act_vs_cc": {"accuracy": 0.75, "interval": [0.25, 1.0], "delta": 0.5,
                  "delta_interval": [0.0, 1.0], "p_value": 0.5},
}  # fmt: skip


def _result() -> TaskResult:
    base, treated = [True, False, True, False], [True, True, True, False]
    cmp = compare_correct(base, treated, n_boot=200)
    ctrl = Control(
        Accuracy(0.5, (0.0, 1.0)), 0.0, (-0.5, 0.5), 1.0, "baseline", {"gained": 1, "lost": 1}
    )
    return TaskResult(
        "reviews", 0, 0, 4, Accuracy(0.5, (0.0, 1.0), (0.5, 0.5)),
        treated=Accuracy(0.75, (0.25, 1.0)), comparison=cmp, controls={"random": ctrl},
        method="ACT", intervention={"method": "ACT", "beta": 0.4}, heads=3, config_id="abc",
    )  # fmt: skip


def test_task_result_round_trips_through_results_json(tmp_path):
    results = {"reviews": _result(), "sst2": TaskResult("sst2", 0, 0, 2, Accuracy(1.0, (1.0, 1.0)))}
    path = save_results(tmp_path / "results.json", results)
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA and list(data["tasks"]) == ["reviews", "sst2"]
    assert load_results(tmp_path) == results  # a folder or the file
    assert load_results(path)["reviews"].comparison.flips == {"gained": 1, "lost": 0}
    with pytest.raises(AttributeError):
        results["reviews"].n = 5  # type: ignore[misc]  # frozen


def test_files_written_before_the_schema_key_still_load(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"reviews": FLAT}))
    r = load_results(tmp_path)["reviews"]
    assert (r.baseline.accuracy, r.treated.accuracy, r.heads, r.method) == (0.5, 0.75, 3, "ACT")
    assert r.comparison.delta == 0.25 and r.comparison.flips == {"gained": 2, "lost": 1}
    assert r.controls["act_vs_cc"].against == "cc" and r.controls["random"].flips is None
    assert r.controls["cc"].accuracy.accuracy == 0.25
    # and the report reads them as it reads new files
    table = results_table({"reviews": r})
    assert (
        "| reviews | 4 | 3 | 50.0 [0.0, 100.0] | 75.0 [25.0, 100.0] | +25.0 [-25.0, +75.0]" in table
    )
    assert "25.0 (-25.0, 1)" in table and "+50.0, 0.5 |" in table
    assert method_name({"reviews": r}) == "ACT"
    save_results(tmp_path / "new.json", {"reviews": r})
    assert load_results(tmp_path / "new.json")["reviews"] == r  # upgraded on the next write


def test_bad_files_are_refused_with_the_reason(tmp_path):
    with pytest.raises(DataError, match="cannot read results file"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text(
        json.dumps({"schema": "act_lens.results/9", "tasks": {}})
    )
    with pytest.raises(DataError, match="act_lens.results/9"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"reviews": {"task": "reviews"}}))
    with pytest.raises(DataError, match="not a TaskResult"):
        load_results(tmp_path)
