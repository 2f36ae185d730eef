"""Contextual calibration on hand-made scores."""

import math

import pytest
import torch

from act_lens.baselines import contextual_calibration
from act_lens.errors import ConfigError
from act_lens.evaluate import EvalResult


def _result(scores, labels):
    n = len(labels)
    preds = tuple(int(torch.tensor(s).argmax()) for s in scores)
    return EvalResult(
        task="t", split="eval", model="m", shots=0, seed=0, scoring="first_token",
        uids=tuple(f"t:eval:{i}" for i in range(n)), labels=tuple(labels), predictions=preds,
        scores=tuple(tuple(s) for s in scores), interval=(0.0, 1.0),
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
