"""Unit tests for act_lens.evaluation.stats: hand-computed McNemar values, bootstrap properties."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from act_lens.errors import ConfigError, ShapeError
from act_lens.evaluation.stats import (
    PairedComparison,
    SeedSummary,
    accuracy_interval,
    compare_correct,
    mcnemar_exact,
    paired_bootstrap_interval,
    summarize_seeds,
)


def _mcnemar_logspace(b: int, c: int) -> float:
    """Reference: 2 * P(X <= min(b, c)), X ~ Binom(b + c, 1/2), summed with log-sum-exp."""
    m, k = b + c, min(b, c)
    logs = [math.lgamma(m + 1) - math.lgamma(i + 1) - math.lgamma(m - i + 1) for i in range(k + 1)]
    top = max(logs)
    log_cdf = top + math.log(math.fsum(math.exp(v - top) for v in logs)) - m * math.log(2)
    return min(1.0, 2.0 * math.exp(log_cdf))


# ---------------------------------------------------------------- McNemar


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (10, 2, 0.03857421875),  # 2 * (1 + 12 + 66) / 4096
        (2, 10, 0.03857421875),
        (0, 5, 0.0625),  # 2 / 32
        (5, 0, 0.0625),
        (1, 0, 1.0),  # 2 * 1/2 capped
        (0, 0, 1.0),
        (7, 7, 1.0),
        (6, 1, 0.125),  # 2 * (1 + 7) / 128
        (12, 4, 0.076812744140625),  # 2 * (1 + 16 + 120 + 560 + 1820) / 65536
    ],
)
def test_mcnemar_hand_computed(b: int, c: int, expected: float) -> None:
    assert mcnemar_exact(b, c) == expected


@pytest.mark.parametrize(
    ("b", "c"),
    [
        (1_200, 1_000),  # exact integer path
        (2_300, 2_100),  # float-tail path (min > 2000)
        (50_500, 49_500),
        (52_000, 48_000),
        (49_999, 50_001),
    ],
)
def test_mcnemar_large_counts_match_logspace(b: int, c: int) -> None:
    p = mcnemar_exact(b, c)
    ref = _mcnemar_logspace(b, c)
    assert 0.0 < p <= 1.0
    assert p == pytest.approx(ref, rel=1e-7)


def test_mcnemar_extreme_counts_do_not_overflow() -> None:
    assert mcnemar_exact(100_000, 0) == 0.0
    assert mcnemar_exact(0, 100_000) == 0.0
    assert mcnemar_exact(60_000, 40_000) == 0.0  # ~1e-870: underflows, no OverflowError
    assert mcnemar_exact(50_000, 50_000) == 1.0
    assert mcnemar_exact(np.int64(10), np.int64(2)) == 0.03857421875


@pytest.mark.parametrize(("b", "c"), [(-1, 3), (3, -1)])
def test_mcnemar_rejects_negative_counts(b: int, c: int) -> None:
    with pytest.raises(ConfigError, match="expected a non-negative int"):
        mcnemar_exact(b, c)


@pytest.mark.parametrize(("b", "c"), [(1.5, 2), (True, 2), ("3", 1)])
def test_mcnemar_rejects_non_int_counts(b: object, c: object) -> None:
    # TypeError when the suite runs under the beartype import hook, ConfigError without it
    with pytest.raises((ConfigError, TypeError)):
        mcnemar_exact(b, c)  # type: ignore[arg-type]


# ---------------------------------------------------------------- accuracy interval


def test_accuracy_interval_deterministic_per_seed() -> None:
    rng = np.random.default_rng(1)
    correct = rng.random(300) < 0.7
    # few resamples, so the quantiles interpolate between resamples and differ across seeds
    a = accuracy_interval(correct, n_boot=37, seed=3)
    b = accuracy_interval(correct, n_boot=37, seed=3)
    c = accuracy_interval(correct, n_boot=37, seed=4)
    assert a == b
    assert a != c


def test_accuracy_interval_contains_mean_and_is_reasonable() -> None:
    correct = [True] * 160 + [False] * 40
    lo, hi = accuracy_interval(correct, n_boot=4_000)
    assert lo < 0.8 < hi
    # normal approximation half-width 1.96 * sqrt(.8 * .2 / 200) ~ 0.055
    assert 0.04 < 0.8 - lo < 0.07
    assert 0.04 < hi - 0.8 < 0.07
    narrow = accuracy_interval(correct, confidence=0.5, n_boot=4_000)
    assert lo < narrow[0] < narrow[1] < hi


def test_accuracy_interval_degenerate_inputs() -> None:
    assert accuracy_interval([True] * 50) == (1.0, 1.0)
    assert accuracy_interval(np.zeros(50, dtype=bool)) == (0.0, 0.0)
    assert accuracy_interval([True]) == (1.0, 1.0)


def test_accuracy_interval_accepts_lists_arrays_tensors_and_does_not_mutate() -> None:
    as_list = [True, False, True, True, False, True]
    arr = np.array(as_list)
    tensor = torch.tensor(as_list)
    ints = [int(v) for v in as_list]
    expected = accuracy_interval(as_list, n_boot=500)
    assert accuracy_interval(arr, n_boot=500) == expected
    assert accuracy_interval(tensor, n_boot=500) == expected
    assert accuracy_interval(ints, n_boot=500) == expected
    assert arr.tolist() == as_list and tensor.tolist() == as_list


def test_accuracy_interval_chunked_draws_stay_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    import act_lens.evaluation.stats as stats

    correct = np.random.default_rng(0).random(100) < 0.5
    monkeypatch.setattr(stats, "_BOOT_BYTES", 9 * 100 * 7)  # 7 resamples per chunk
    lo, hi = accuracy_interval(correct, n_boot=1_000)
    assert 0.0 <= lo <= correct.mean() <= hi <= 1.0
    assert accuracy_interval(correct, n_boot=1_000) == (lo, hi)


def test_accuracy_interval_errors() -> None:
    with pytest.raises(ConfigError, match="empty"):
        accuracy_interval([])
    with pytest.raises(ShapeError, match="1-D"):
        accuracy_interval(np.ones((2, 3), dtype=bool))
    with pytest.raises(ShapeError, match="0/1"):
        accuracy_interval([0.3, 1.0])
    for bad in ({"confidence": 1.0}, {"confidence": 0.0}, {"n_boot": 0}, {"seed": -1}):
        with pytest.raises(ConfigError):
            accuracy_interval([True, False], **bad)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    correct=st.lists(st.booleans(), min_size=1, max_size=60),
    confidence=st.floats(0.5, 0.99),
    seed=st.integers(0, 2**32),
)
def test_accuracy_interval_properties(correct: list[bool], confidence: float, seed: int) -> None:
    lo, hi = accuracy_interval(correct, confidence=confidence, n_boot=1_000, seed=seed)
    mean = sum(correct) / len(correct)
    assert 0.0 <= lo <= mean <= hi <= 1.0


# ---------------------------------------------------------------- paired


def test_paired_interval_of_identical_arrays_is_zero() -> None:
    correct = np.random.default_rng(2).random(200) < 0.6
    assert paired_bootstrap_interval(correct, correct.copy(), n_boot=1_000) == (0.0, 0.0)


def test_paired_interval_tighter_than_unpaired_when_correlated() -> None:
    base = np.random.default_rng(5).random(400) < 0.5
    treated = base.copy()
    treated[np.flatnonzero(~base)[:20]] = True  # +5 pts, all from flips
    lo, hi = paired_bootstrap_interval(base, treated, n_boot=2_000)
    assert 0.0 < lo < 0.05 < hi < 0.1
    assert paired_bootstrap_interval(base, treated, n_boot=2_000) == (lo, hi)


def test_paired_mismatched_lengths_raise() -> None:
    with pytest.raises(ShapeError, match="3 examples but treated_correct has 2"):
        paired_bootstrap_interval([True, False, True], [True, False])
    with pytest.raises(ShapeError):
        compare_correct([True, False, True], [True, False])
    with pytest.raises(ConfigError, match="empty"):
        compare_correct([], [])


# ---------------------------------------------------------------- compare_correct


def test_compare_correct_counts_flips_and_accuracies() -> None:
    base = np.array([True, True, False, False, True, False, True, False])
    treated = torch.tensor([True, False, True, True, True, True, True, False])
    cmp = compare_correct(base, treated, n_boot=500)
    assert cmp.n == 8
    assert cmp.flips == {"gained": 3, "lost": 1}
    assert cmp.baseline_accuracy == 0.5
    assert cmp.treated_accuracy == 0.75
    assert cmp.delta == 0.25
    assert cmp.p_value == mcnemar_exact(3, 1) == 0.625  # 2 * (1 + 4) / 16
    assert cmp.confidence == 0.95
    lo, hi = cmp.interval
    assert lo <= cmp.delta <= hi
    assert cmp.interval == paired_bootstrap_interval(base, treated, n_boot=500)
    assert base.tolist() == [True, True, False, False, True, False, True, False]


def test_paired_comparison_str_and_roundtrip() -> None:
    cmp = PairedComparison(
        n=200,
        baseline_accuracy=0.5,
        treated_accuracy=0.532,
        delta=0.032,
        interval=(0.010, 0.054),
        p_value=0.0123,
        flips={"gained": 12, "lost": 4},
        confidence=0.95,
    )
    assert str(cmp) == "+3.2 pts [+1.0, +5.4] p=0.012 (gained 12, lost 4, n=200)"
    again = PairedComparison.from_dict(json.loads(json.dumps(cmp.to_dict())))
    assert again == cmp
    tiny = PairedComparison.from_dict({**cmp.to_dict(), "delta": -0.0001, "p_value": 2e-6})
    assert str(tiny).startswith("+0.0 pts") and "p=2.0e-06" in str(tiny)
    with pytest.raises(ConfigError, match="flips"):
        PairedComparison.from_dict({k: v for k, v in cmp.to_dict().items() if k != "flips"})


def test_compare_correct_real_roundtrip() -> None:
    rng = np.random.default_rng(7)
    base = rng.random(100) < 0.6
    treated = base ^ (rng.random(100) < 0.1)
    cmp = compare_correct(base, treated, n_boot=500, seed=1)
    assert PairedComparison.from_dict(cmp.to_dict()) == cmp
    assert compare_correct(base, treated, n_boot=500, seed=1) == cmp


# ---------------------------------------------------------------- seeds


def test_summarize_seeds_values() -> None:
    s = summarize_seeds([0.5, 0.6, 0.7])
    assert s.values == (0.5, 0.6, 0.7)
    assert s.mean == pytest.approx(0.6)
    assert s.std == pytest.approx(0.1)  # ddof=1
    assert (s.min, s.max) == (0.5, 0.7)
    assert summarize_seeds([0.42]) == SeedSummary((0.42,), 0.42, 0.0, 0.42, 0.42)
    assert summarize_seeds(torch.tensor([1.0, 3.0])).std == pytest.approx(math.sqrt(2))
    assert SeedSummary.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert "n=3" in str(s)


def test_summarize_seeds_errors() -> None:
    with pytest.raises(ConfigError, match="empty"):
        summarize_seeds([])
    with pytest.raises(ConfigError, match="NaN"):
        summarize_seeds([0.5, float("nan")])
    with pytest.raises(ShapeError):
        summarize_seeds([[0.5, 0.6]])
    with pytest.raises(ConfigError, match="missing|without"):
        SeedSummary.from_dict({"values": [1.0]})
