"""Contextual calibration on hand-made scores."""

import math

import pytest
import torch

from act_lens.errors import ConfigError
from act_lens.evaluation.baselines import contextual_calibration
from act_lens.evaluation.evaluate import EvalResult


def _result(scores, labels):
    n = len(labels)
    preds = tuple(int(torch.tensor(s).argmax()) for s in scores)
    return EvalResult(
        task="t",
        split="eval",
        model="m",
        shots=0,
        seed=0,
        scoring="first_token",
        uids=tuple(f"t:eval:{i}" for i in range(n)),
        labels=tuple(labels),
        predictions=preds,
        scores=tuple(tuple(s) for s in scores),
        interval=(0.0, 1.0),
    )


def test_biased_model_is_corrected():
    # The model prefers label 1 everywhere; the content-free input shows the same bias.
    p = [[0.3, 0.7], [0.45, 0.55], [0.1, 0.9], [0.2, 0.8]]
    scores = [[math.log(a), math.log(b)] for a, b in p]
    labels = [0, 0, 1, 1]
    raw = _result(scores, labels)
    assert raw.predictions == (1, 1, 1, 1) and raw.accuracy == 0.5
    cc = contextual_calibration(raw, torch.tensor([0.4, 0.6]))
    # 0.3/0.4=0.75 > 0.7/0.6=1.17? no -> 1; 0.45/0.4=1.125 vs 0.55/0.6=0.917 -> 0; ...
    assert cc.predictions == (1, 0, 1, 1)
    assert cc.uids == raw.uids and cc.info["contextual_calibration"] == pytest.approx([0.4, 0.6])


def test_uniform_content_free_changes_nothing():
    scores = [[-1.0, -2.0, -0.5], [-3.0, -0.1, -2.0]]
    raw = _result(scores, [2, 1])
    assert contextual_calibration(raw, torch.ones(3) / 3).predictions == raw.predictions


def test_label_count_mismatch():
    with pytest.raises(ConfigError):
        contextual_calibration(_result([[0.0, 1.0]], [0]), torch.ones(3) / 3)


def test_ragged_multiple_choice_uses_one_prior_per_option_count():
    # a 2-option row and a 3-option row, each corrected by the prior for its own count
    scores = [[math.log(0.6), math.log(0.4)], [math.log(0.5), math.log(0.3), math.log(0.2)]]
    raw = _result(scores, [1, 2])
    assert raw.predictions == (0, 0)
    priors = {2: torch.tensor([0.8, 0.2]), 3: torch.tensor([0.6, 0.3, 0.1])}
    cc = contextual_calibration(raw, priors)
    # 0.6/0.8=0.75 < 0.4/0.2=2 -> 1; 0.5/0.6=0.83, 0.3/0.3=1, 0.2/0.1=2 -> 2
    assert cc.predictions == (1, 2) and cc.accuracy == 1.0
    assert cc.info["contextual_calibration"] == {
        "2": pytest.approx([0.8, 0.2]),
        "3": pytest.approx([0.6, 0.3, 0.1]),
    }


def test_missing_option_count_names_the_fix():
    raw = _result([[0.0, 1.0], [0.0, 1.0, 2.0]], [0, 0])
    with pytest.raises(ConfigError, match="3 choices.*content_free_scores"):
        contextual_calibration(raw, {2: torch.tensor([0.5, 0.5])})
