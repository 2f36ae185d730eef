"""eval applies the settings a head set was searched with; a flag overrides them and says so;
the results name the method. On the tiny random model, with hand-written head sets."""

import json
from pathlib import Path

from act_lens.app.cli import main
from act_lens.evaluation.task_result import load_results

EVAL = ["eval", "--model", "tiny-random", "--task", "reviews", "--limit", "6", "--no-controls"]
HEADS = {"1": [0, 1, 2, 3], "2": [0, 1, 2, 3]}
# beta 0 and a low threshold: a setting that moves the scores of the tiny model.
STORED = {"beta": 0.0, "threshold": 0.02, "rule": "mean"}


def _eval(tmp: Path, name: str, head_set: Path, *flags: str) -> tuple[dict, list]:
    out = tmp / name
    assert main([*EVAL, "--head-set", str(head_set), *flags, "--out", str(out)]) == 0
    row = load_results(out)["reviews"]
    scores = json.loads((out / "eval" / "reviews_act.json").read_text())["scores"]
    return row, scores


def test_eval_applies_the_head_sets_stored_settings(tmp_path, capsys):
    stored, bare = tmp_path / "stored.json", tmp_path / "bare.json"
    stored.write_text(json.dumps({"heads": HEADS, "provenance": STORED}))
    bare.write_text(json.dumps({"heads": HEADS}))

    row, from_set = _eval(tmp_path, "a", stored)
    assert row.method == "ACT"
    assert {k: row.intervention[k] for k in STORED} == STORED
    assert row.intervention["from"]["beta"] == "head set"
    _, same_by_flags = _eval(tmp_path, "b", bare, "--beta", "0", "--threshold", "0.02")
    assert from_set == same_by_flags  # the stored settings were the ones applied
    _, defaults = _eval(tmp_path, "c", bare)
    assert defaults != from_set, (
        "the settings must change the scores for this test to mean anything"
    )

    capsys.readouterr()
    row, overridden = _eval(tmp_path, "d", stored, "--beta", "0.4", "--threshold", "0.1")
    err = capsys.readouterr().err
    assert "--beta 0.4 overrides the beta 0.0" in err and "--threshold 0.1 overrides" in err
    assert row.intervention["from"]["beta"] == "command line"
    assert overridden == defaults


def test_a_zerotuning_set_is_labelled_zerotuning(tmp_path, capsys):
    zt = tmp_path / "zt.json"
    zt.write_text(json.dumps({"method": "zerotuning", "params": {"gamma": 1.5}, "heads": HEADS}))
    row, _ = _eval(tmp_path, "z", zt)
    assert row.method == "ZeroTuning" and row.intervention["params"] == {"gamma": 1.5}
    table = capsys.readouterr().out
    assert "| baseline | ZeroTuning |" in table and "| ACT |" not in table
