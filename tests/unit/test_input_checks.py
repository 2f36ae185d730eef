"""The Python API refuses bad values with ActLensError subclasses whose messages name the fix."""

import time
import warnings

import pytest
import torch

from act_lens.analysis.calibration_set import calibration_mix
from act_lens.core.calibrate import calibrate_pattern
from act_lens.core.settings import SinkSettings
from act_lens.errors import ActLensWarning, ConfigError, ModelLoadError, ShapeError
from act_lens.models.registry import nearest_known, parse_spec


def _pattern() -> torch.Tensor:
    return torch.tensor([[[[1.0, 0, 0], [0.2, 0.8, 0], [0.2, 0.6, 0.2]]]])


def _sinks() -> torch.Tensor:
    return torch.tensor([[[False, True, False]]])


def test_calibrate_pattern_refuses_rows_that_do_not_sum_to_one():
    p = _pattern()
    p[0, 0, 2, 2] = 0.5  # row 2 sums to 1.3
    with pytest.raises(ShapeError, match=r"query 2\) sums to 1.3.*post-softmax"):
        calibrate_pattern(p, _sinks())
    out = calibrate_pattern(p, _sinks(), validate=False)  # the check can be switched off
    assert out.shape == p.shape


def test_calibrate_pattern_refuses_nan():
    p = _pattern()
    p[0, 0, 1, 0] = float("nan")
    with pytest.raises(ShapeError, match="NaN"):
        calibrate_pattern(p, _sinks())
    with pytest.raises(ShapeError, match="NaN"):
        calibrate_pattern(p, _sinks(), redistribute="non_initial")


def test_calibrate_pattern_ignores_pad_rows_and_takes_half_precision():
    p = _pattern()
    p[0, 0, 0] = torch.tensor([7.0, 7.0, 7.0])  # a pad query row (left padding) holds anything
    mask = torch.tensor([[0, 1, 1]])
    p[0, 0, 1:, 0] = 0.0  # the pad key gets no attention
    p[0, 0, 1] = torch.tensor([0.0, 1.0, 0.0])
    p[0, 0, 2] = torch.tensor([0.0, 0.7, 0.3])
    calibrate_pattern(p, _sinks(), attention_mask=mask)
    calibrate_pattern(_pattern().to(torch.bfloat16), _sinks())


def test_impossible_mean_threshold_is_refused_alpha_is_not():
    with pytest.raises(ConfigError, match="finds no sink.*rule='alpha'"):
        SinkSettings(threshold=5.0)
    assert SinkSettings(threshold=5.0, rule="alpha").threshold == 5.0


def test_calibration_mix_warns_when_asked_for_more_than_the_pool():
    with pytest.warns(ActLensWarning, match="pool has 300; using 300"):
        calib = calibration_mix(["reviews"], 100_000)
    assert len(calib) == 300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calibration_mix(["reviews"], 10)  # no warning when the pool suffices


def test_misspelt_model_name_names_the_nearest_known_one():
    assert nearest_known("smollm2-13m") == "smollm2-135m"
    assert nearest_known("gpt2") is None
    with pytest.raises(ModelLoadError, match="did you mean 'smollm2-135m'"):
        parse_spec("smollm2-13m")
    assert parse_spec("gpt2").kind == "hub"  # a real hub name is not a typo


def test_hub_name_fails_fast_when_offline(monkeypatch, tmp_path):
    from act_lens.models.loading import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache: nothing to fall back on
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE is set.*smollm2-135m"):
        load_model("gpt2")
    # no retries: transformers alone spends most of a minute here
    assert time.perf_counter() - t0 < 10
