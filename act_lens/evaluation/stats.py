"""Significance for per-example correctness: bootstrap intervals, exact McNemar, seed summaries.

Every function takes 1-D per-example correctness (lists of bools, numpy arrays, torch tensors;
0/1 numbers are accepted) and converts it with numpy, so the module needs neither scipy nor a
model. Bootstrap resampling is vectorised over resamples and deterministic for a given seed.
"""

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from act_lens.errors import ConfigError, ShapeError

__all__ = [
    "PairedComparison",
    "SeedSummary",
    "accuracy_interval",
    "compare_correct",
    "mcnemar_exact",
    "paired_lower_bound",
    "paired_bootstrap_interval",
    "summarize_seeds",
]

# Resampled indices (int64) plus the gathered int8 values: 9 bytes per element per resample.
_BOOT_BYTES = 100_000_000
# Up to this many binomial terms McNemar sums exact integers; above, see `mcnemar_exact`.
_EXACT_TERMS = 2_000


def _to_numpy(values: Any) -> np.ndarray:
    torch = sys.modules.get("torch")  # a tensor implies torch is imported; never import it here
    if torch is not None and isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _as_correct(values: Any, name: str) -> np.ndarray:
    """A new 1-D bool array from per-example correctness; the input is never modified."""
    arr = _to_numpy(values)
    if arr.ndim != 1:
        raise ShapeError(
            f"{name} has shape {arr.shape}; expected a 1-D sequence of per-example correctness "
            "(one bool per example). Flatten it or pass one run at a time."
        )
    if arr.dtype == np.bool_:
        return arr.copy()
    if arr.dtype.kind not in "biuf" or not np.isin(arr, (0, 1)).all():
        raise ShapeError(
            f"{name} has dtype {arr.dtype} with values other than 0/1; expected booleans "
            "(True = correct). Convert scores to correctness first, e.g. `scores == labels`."
        )
    return arr.astype(bool)


def _check_boot_args(confidence: float, n_boot: int, seed: int) -> None:
    real = isinstance(confidence, (int, float, np.integer, np.floating))
    if isinstance(confidence, bool) or not real or not 0.0 < float(confidence) < 1.0:
        raise ConfigError(
            f"confidence={confidence!r}; expected a float strictly between 0 and 1, e.g. 0.95."
        )
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ConfigError(f"n_boot={n_boot!r}; expected a positive int, e.g. 10_000.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed={seed!r}; expected a non-negative int, e.g. 0.")


def _require_examples(n: int, name: str) -> None:
    if n == 0:
        raise ConfigError(
            f"{name} is empty; a bootstrap interval needs at least one example. "
            "Check that the evaluation produced results before summarising them."
        )


def _bootstrap_interval(
    values: np.ndarray, confidence: float, n_boot: int, seed: int
) -> tuple[float, float]:
    """Percentile interval of the mean of int8 ``values`` over ``n_boot`` index resamples."""
    n = values.shape[0]
    rng = np.random.default_rng(seed)
    rows = max(1, _BOOT_BYTES // (9 * n))  # chunk so one draw stays near 100 MB
    sums = np.empty(n_boot, dtype=np.int64)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        sums[start:stop] = values[idx].sum(axis=1, dtype=np.int64)
    # Integer sums over n give the same float as the point estimate, so lo <= mean <= hi
    # is not broken by rounding.
    means = sums / n
    alpha = 1.0 - float(confidence)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    lo_b, hi_b = float(values.min()), float(values.max())
    return float(np.clip(lo, lo_b, hi_b)), float(np.clip(hi, lo_b, hi_b))


def accuracy_interval(
    correct: Any, *, confidence: float = 0.95, n_boot: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the accuracy (mean correctness).

    Args:
        correct: 1-D per-example correctness (list of bools, numpy array or torch tensor).
        confidence: coverage of the interval, strictly between 0 and 1.
        n_boot: number of bootstrap resamples.
        seed: seed of the resampling; the same seed gives the same interval.

    Returns:
        ``(lo, hi)`` within ``[0, 1]``.

    Raises:
        ConfigError: empty input, or confidence / n_boot / seed out of range.
        ShapeError: input not 1-D or not boolean (0/1).

    Example:
        >>> lo, hi = accuracy_interval([True] * 80 + [False] * 20, seed=0)
        >>> lo <= 0.8 <= hi
        True
        >>> accuracy_interval([True, True, True])
        (1.0, 1.0)
    """
    _check_boot_args(confidence, n_boot, seed)
    arr = _as_correct(correct, "correct")
    _require_examples(arr.shape[0], "correct")
    return _bootstrap_interval(arr.astype(np.int8), confidence, int(n_boot), int(seed))


def paired_bootstrap_interval(
    baseline_correct: Any,
    treated_correct: Any,
    *,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Paired bootstrap interval of ``mean(treated) - mean(baseline)``.

    Example indices are resampled jointly, so the pairing (same prompt, two conditions) is kept.

    Args:
        baseline_correct: 1-D per-example correctness without the intervention.
        treated_correct: 1-D per-example correctness with it, same examples in the same order.
        confidence: coverage of the interval, strictly between 0 and 1.
        n_boot: number of bootstrap resamples.
        seed: seed of the resampling; the same seed gives the same interval.

    Returns:
        ``(lo, hi)`` within ``[-1, 1]`` (fractions, not percentage points).

    Raises:
        ShapeError: lengths differ, or an input is not 1-D boolean.
        ConfigError: empty inputs, or confidence / n_boot / seed out of range.

    Example:
        >>> base = [True] * 50 + [False] * 50
        >>> treated = [True] * 60 + [False] * 40
        >>> lo, hi = paired_bootstrap_interval(base, treated)
        >>> lo <= 0.10 <= hi
        True
    """
    _check_boot_args(confidence, n_boot, seed)
    base, treated = _paired(baseline_correct, treated_correct)
    diff = treated.astype(np.int8) - base.astype(np.int8)
    return _bootstrap_interval(diff, confidence, int(n_boot), int(seed))


def _paired(baseline_correct: Any, treated_correct: Any) -> tuple[np.ndarray, np.ndarray]:
    base = _as_correct(baseline_correct, "baseline_correct")
    treated = _as_correct(treated_correct, "treated_correct")
    if base.shape != treated.shape:
        raise ShapeError(
            f"baseline_correct has {base.shape[0]} examples but treated_correct has "
            f"{treated.shape[0]}; expected one entry per example in both, in the same order. "
            "Evaluate both conditions on the same example list."
        )
    _require_examples(base.shape[0], "baseline_correct")
    return base, treated


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(
            f"{name}={value!r}; expected a non-negative int count of flipped examples."
        )
    return int(value)


def mcnemar_exact(gained: int | np.integer, lost: int | np.integer) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts.

    ``p = min(1, 2 * BinomCDF(min(b, c); b + c, 1/2))``. While ``min(b, c) <= 2000`` the CDF
    is a sum of exact integers divided by ``2**(b + c)`` (correctly rounded). Above that, the
    exact leading term ``comb(b + c, min(b, c))`` is scaled by the float sum of the geometric-like
    tail ratios, truncated once terms fall below 1e-17 of the total (relative error ~1e-13).
    Neither path overflows; p-values below ~1e-308 round to 0.0.

    Args:
        gained: discordant pairs one way (baseline wrong, treated right).
        lost: discordant pairs the other way (baseline right, treated wrong).

    Returns:
        The p-value in ``[0, 1]``; 1.0 when there are no discordant pairs.

    Raises:
        ConfigError: a count is negative or not an int.

    Example:
        >>> mcnemar_exact(10, 2)
        0.03857421875
        >>> mcnemar_exact(0, 0)
        1.0
    """
    b, c = _count(gained, "gained"), _count(lost, "lost")
    m, k = b + c, min(b, c)
    if 2 * k >= m:  # b == c (incl. 0, 0): the lower tail already holds half the mass
        return 1.0
    if k <= _EXACT_TERMS:
        term = total = 1
        for i in range(k):
            term = term * (m - i) // (i + 1)
            total += term
        return min(1.0, (2 * total) / (1 << m))  # int / int is correctly rounded, no overflow
    # Tail relative to the last term C(m, k): ratio C(m, i - 1) / C(m, i) = i / (m - i + 1).
    ratio_sum, ratio = 1.0, 1.0
    for i in range(k, 0, -1):
        ratio *= i / (m - i + 1)
        ratio_sum += ratio
        if ratio < 1e-17 * ratio_sum:
            break
    lead = math.comb(m, k)
    shift = max(0, lead.bit_length() - 60)  # lead ~= (lead >> shift) * 2**shift, 60-bit mantissa
    return min(1.0, math.ldexp(2.0 * float(lead >> shift) * ratio_sum, shift - m))


def _upper_tail(g: int, m: int, q: float) -> float:
    """P(X >= g) for X ~ Binomial(m, q), summed in log space (no overflow for large m)."""
    if q <= 0.0:
        return 1.0 if g <= 0 else 0.0
    if q >= 1.0:
        return 1.0
    lq, l1q, lm = math.log(q), math.log1p(-q), math.lgamma(m + 1)
    return min(1.0, sum(
        math.exp(lm - math.lgamma(i + 1) - math.lgamma(m - i + 1) + i * lq + (m - i) * l1q)
        for i in range(g, m + 1)
    ))  # fmt: skip


def paired_lower_bound(
    gained: int | np.integer, lost: int | np.integer, n: int, *, confidence: float = 0.9
) -> tuple[float, float]:
    """One-sided exact lower confidence bound of a paired accuracy gain, and its p-value.

    Conditional on the ``m = gained + lost`` examples whose correctness changed, ``gained`` is
    Binomial(m, q) and the gain is ``(m / n) (2 q - 1)``. The bound uses the Clopper-Pearson
    lower bound of ``q`` at ``confidence``, so it is above zero exactly when the one-sided
    exact McNemar (sign) test rejects "no gain" at level ``1 - confidence``: unlike a
    bootstrap bound it does not call 3 gains out of 3 changes on 24 examples significant.

    Args:
        gained, lost: examples fixed and broken by the treatment. n: examples in all.
        confidence: one-sided coverage, in (0.5, 1).

    Returns:
        ``(lower_bound, p_value)``: the bound as a fraction in ``[-1, 1]`` and the one-sided
        p-value of "treated is no better".

    Raises:
        ConfigError: negative counts, ``gained + lost > n``, or confidence out of range.

    Example:
        >>> lo, p = paired_lower_bound(3, 0, 24)        # 3 of 3 changes: not enough
        >>> lo < 0 < 3 / 24, round(p, 3)
        (True, 0.125)
        >>> paired_lower_bound(10, 1, 24)[0] > 0
        True
    """
    g, lost_ = _count(gained, "gained"), _count(lost, "lost")
    m = g + lost_
    if not isinstance(n, (int, np.integer)) or n < max(m, 1):
        raise ConfigError(f"n={n!r} must be an int >= gained + lost = {m} and >= 1")
    if not 0.5 < float(confidence) < 1.0:
        raise ConfigError(f"confidence must be in (0.5, 1), got {confidence!r}")
    if m == 0:
        return 0.0, 1.0
    alpha = 1.0 - float(confidence)
    p_value = min(1.0, _upper_tail(g, m, 0.5))
    if g == 0:
        q_lo = 0.0
    else:  # the q where P(X >= g; m, q) = alpha; the tail rises with q
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if _upper_tail(g, m, mid) < alpha:
                lo = mid
            else:
                hi = mid
        q_lo = lo
    return (m / int(n)) * (2.0 * q_lo - 1.0), float(p_value)


def _pts(fraction: float) -> str:
    text = f"{fraction * 100:+.1f}"
    return "+0.0" if text == "-0.0" else text


@dataclass(frozen=True)
class PairedComparison:
    """Baseline vs treated correctness on the same examples.

    Attributes:
        n: number of paired examples.
        baseline_accuracy: mean correctness without the intervention.
        treated_accuracy: mean correctness with it.
        delta: ``treated_accuracy - baseline_accuracy`` (fraction).
        interval: paired bootstrap interval of ``delta``.
        p_value: exact McNemar p-value from the flips.
        flips: ``{"gained": wrong -> right, "lost": right -> wrong}``.
        confidence: coverage of ``interval``.
    """

    n: int
    baseline_accuracy: float
    treated_accuracy: float
    delta: float
    interval: tuple[float, float]
    p_value: float
    flips: dict[str, int]
    confidence: float

    def __str__(self) -> str:
        p = f"{self.p_value:.3f}" if self.p_value >= 1e-3 else f"{self.p_value:.1e}"
        lo, hi = self.interval
        return (
            f"{_pts(self.delta)} pts [{_pts(lo)}, {_pts(hi)}] p={p} "
            f"(gained {self.flips['gained']}, lost {self.flips['lost']}, n={self.n})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``from_dict`` inverts it."""
        return {
            "n": self.n,
            "baseline_accuracy": self.baseline_accuracy,
            "treated_accuracy": self.treated_accuracy,
            "delta": self.delta,
            "interval": list(self.interval),
            "p_value": self.p_value,
            "flips": dict(self.flips),
            "confidence": self.confidence,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PairedComparison":
        """Rebuild from ``to_dict`` output. Raises ConfigError on missing keys."""
        keys = ("n", "baseline_accuracy", "treated_accuracy", "delta", "interval", "p_value")
        _require_keys(data, (*keys, "flips", "confidence"), cls.__name__)
        lo, hi = data["interval"]
        return cls(
            n=int(data["n"]),
            baseline_accuracy=float(data["baseline_accuracy"]),
            treated_accuracy=float(data["treated_accuracy"]),
            delta=float(data["delta"]),
            interval=(float(lo), float(hi)),
            p_value=float(data["p_value"]),
            flips={"gained": int(data["flips"]["gained"]), "lost": int(data["flips"]["lost"])},
            confidence=float(data["confidence"]),
        )


def _require_keys(data: Mapping[str, Any], keys: Sequence[str], name: str) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise ConfigError(
            f"{name}.from_dict got a dict without {missing}; expected the keys {list(keys)}. "
            f"Pass the output of {name}.to_dict()."
        )


def compare_correct(
    baseline_correct: Any,
    treated_correct: Any,
    *,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
) -> PairedComparison:
    """Accuracy change, paired bootstrap interval, McNemar p-value and flip counts.

    Args:
        baseline_correct: 1-D per-example correctness without the intervention.
        treated_correct: 1-D per-example correctness with it, same examples in the same order.
        confidence: coverage of the interval, strictly between 0 and 1.
        n_boot: number of bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        A ``PairedComparison``.

    Raises:
        ShapeError: lengths differ, or an input is not 1-D boolean.
        ConfigError: empty inputs, or confidence / n_boot / seed out of range.

    Example:
        >>> cmp = compare_correct([True, False, False, True], [True, True, True, False])
        >>> cmp.flips
        {'gained': 2, 'lost': 1}
        >>> print(cmp)  # doctest: +SKIP
        +25.0 pts [-50.0, +100.0] p=1.000 (gained 2, lost 1, n=4)
    """
    _check_boot_args(confidence, n_boot, seed)
    base, treated = _paired(baseline_correct, treated_correct)
    n = base.shape[0]
    gained = int(np.count_nonzero(~base & treated))
    lost = int(np.count_nonzero(base & ~treated))
    n_base, n_treated = int(np.count_nonzero(base)), int(np.count_nonzero(treated))
    return PairedComparison(
        n=n,
        baseline_accuracy=n_base / n,
        treated_accuracy=n_treated / n,
        delta=(n_treated - n_base) / n,
        interval=paired_bootstrap_interval(
            base, treated, confidence=confidence, n_boot=n_boot, seed=seed
        ),
        p_value=mcnemar_exact(gained, lost),
        flips={"gained": gained, "lost": lost},
        confidence=float(confidence),
    )


@dataclass(frozen=True)
class SeedSummary:
    """Spread of one metric over seeds; ``std`` is the sample std (ddof=1), 0.0 for one value."""

    values: tuple[float, ...]
    mean: float
    std: float
    min: float
    max: float

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.std:.2g} (n={len(self.values)}, range {self.min:.4g}..{self.max:.4g})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``from_dict`` inverts it."""
        return {
            "values": list(self.values),
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SeedSummary":
        """Rebuild from ``to_dict`` output. Raises ConfigError on missing keys."""
        _require_keys(data, ("values", "mean", "std", "min", "max"), cls.__name__)
        return cls(
            values=tuple(float(v) for v in data["values"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            min=float(data["min"]),
            max=float(data["max"]),
        )


def summarize_seeds(values: Any) -> SeedSummary:
    """Mean, sample std, min and max of one metric measured over several seeds.

    Args:
        values: 1-D finite numbers (list, numpy array or torch tensor), one per seed.

    Returns:
        A ``SeedSummary``; ``std`` uses ddof=1 and is 0.0 for a single value.

    Raises:
        ConfigError: no values, or a value is NaN / infinite.
        ShapeError: input not 1-D numeric.

    Example:
        >>> s = summarize_seeds([0.5, 0.6, 0.7])
        >>> round(s.mean, 6), round(s.std, 6), s.min, s.max
        (0.6, 0.1, 0.5, 0.7)
    """
    arr = _to_numpy(values)
    if arr.ndim != 1 or arr.dtype.kind not in "biuf":
        raise ShapeError(
            f"values has shape {arr.shape} and dtype {arr.dtype}; expected a 1-D sequence of "
            "numbers, one per seed. Pass e.g. [acc_seed0, acc_seed1, acc_seed2]."
        )
    arr = arr.astype(np.float64)
    if arr.shape[0] == 0:
        raise ConfigError("values is empty; expected at least one per-seed value.")
    if not np.isfinite(arr).all():
        raise ConfigError(
            f"values contains NaN or infinity ({arr.tolist()}); expected finite per-seed "
            "metrics. Find the seed whose run failed and rerun or drop it."
        )
    return SeedSummary(
        values=tuple(float(v) for v in arr),
        mean=float(arr.mean()),
        std=float(arr.std(ddof=1)) if arr.shape[0] > 1 else 0.0,
        min=float(arr.min()),
        max=float(arr.max()),
    )
