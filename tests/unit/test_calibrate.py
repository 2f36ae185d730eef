"""Unit tests for act_lens.core.calibrate: a loop reference of method.md and property tests."""

import inspect
import math
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from act_lens.core.calibrate import calibrate_pattern
from act_lens.core.settings import SinkSettings
from act_lens.core.sinks import detect_sinks
from act_lens.errors import ConfigError, ShapeError
from act_lens.hooks.act import ActConfig, act_hooks, act_pattern_fn
from act_lens.hooks.headset import HeadSet
from tests.helpers import pad_batch, planted_sink_pattern, random_pattern, unpad, valid_keys

PROPERTY = settings(max_examples=50, deadline=None)


def reference_calibrate(
    pattern: torch.Tensor,
    sink_mask: torch.Tensor,
    *,
    beta: float,
    head_mask: torch.Tensor | None = None,
    redistribute: str = "all",
    attention_mask: torch.Tensor | None = None,
    keep_first: bool = True,
    literal: bool = False,
) -> torch.Tensor:
    """method.md, row by row in float64.

    For each selected head and real query row: m = mass on the sink columns (real keys, the
    first real token excluded when keep_first); sinks *= beta; with "all" every other real key
    *= (1 - beta*m) / (1 - m); with "non_initial" the first real token keeps its weight and the
    other non-sink real keys share the freed (1 - beta) * m in proportion to their attention.
    Rows with no sink mass or nothing to receive it, pad rows and pad keys are left alone.
    """
    batch, heads, n_q, n_k = pattern.shape
    a = pattern.double().tolist()
    out = pattern.double().clone()
    valid = valid_keys(attention_mask, batch, n_k).tolist()
    marks = sink_mask.bool().tolist()
    selected = None
    if head_mask is not None:
        selected = head_mask.bool().expand(batch, heads).tolist()
    for b in range(batch):
        real = [j for j in range(n_k) if valid[b][j]]
        first = real[0] if real else None
        for h in range(heads):
            if selected is not None and not selected[b][h]:
                continue
            sinks = [j for j in real if marks[b][h][j] and not (keep_first and j == first)]
            if redistribute == "all":
                receivers = [j for j in real if j not in sinks]
            else:
                receivers = [j for j in real if j not in sinks and j != first]
            for qi in range(n_q):
                if not valid[b][n_k - n_q + qi]:
                    continue
                row = a[b][h][qi]
                m = sum(row[j] for j in sinks)
                r = sum(row[j] for j in receivers)
                if m == 0 or r == 0:
                    continue
                if redistribute == "all":
                    # method.md's (1 - beta*m) / (1 - m), with the row's actual total in place
                    # of 1: float16/bfloat16 rows do not sum to exactly 1, and near m = 1 the
                    # difference is amplified. literal=True keeps the formula as written.
                    total = 1.0 if literal else sum(row[j] for j in real)
                    factor = (total - beta * m) / (total - m)
                else:
                    factor = 1 + (1 - beta) * m / r
                for j in sinks:
                    out[b, h, qi, j] = beta * row[j]
                for j in receivers:
                    out[b, h, qi, j] = row[j] * factor
    return out


TOL = {
    torch.float32: {"atol": 2e-6, "rtol": 1e-5},
    torch.float16: {"atol": 2e-3, "rtol": 5e-3},
    torch.bfloat16: {"atol": 1.5e-2, "rtol": 2e-2},
}


def _padded_planted(
    side: str, dtype: torch.dtype, heads: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = (11, 8, 13) if side != "none" else (12, 12, 12)
    rows = [
        planted_sink_pattern(1, heads, n, seed=n, sink_mass=0.6, sinks=(0, n // 3, n - 2))[0]
        for n in lengths
    ]
    padded, mask = pad_batch(rows, "left" if side == "none" else side)
    return padded.to(dtype), mask


# ---------------------------------------------------------------- by hand


def test_docstring_example_by_hand() -> None:
    p = torch.tensor([[[[1.0, 0, 0], [0.2, 0.8, 0], [0.2, 0.6, 0.2]]]])
    s = torch.tensor([[[False, True, False]]])
    out = calibrate_pattern(p, s, beta=0.5)
    # Row 2: m = 0.6, sink -> 0.3, others * (1 - 0.3) / 0.4 = 1.75.
    torch.testing.assert_close(out[0, 0, 2], torch.tensor([0.35, 0.3, 0.35]))
    # Row 1: m = 0.8, sink -> 0.4, first token * 0.6 / 0.2 = 3.
    torch.testing.assert_close(out[0, 0, 1], torch.tensor([0.6, 0.4, 0.0]))
    # Row 0 sees only the first token: nothing to calibrate.
    assert torch.equal(out[0, 0, 0], p[0, 0, 0])


def test_non_initial_by_hand() -> None:
    p = torch.tensor(
        [[[[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [0.2, 0.6, 0.2, 0], [0.1, 0.5, 0.1, 0.3]]]]
    )
    s = torch.tensor([[[False, True, False, False]]])
    out = calibrate_pattern(p, s, beta=0.5, redistribute="non_initial")
    expected = torch.tensor(
        [
            [1.0, 0, 0, 0],
            [0.5, 0.5, 0, 0],  # no non-initial key to receive the mass: unchanged
            [0.2, 0.3, 0.5, 0],  # key 2 gets all of the freed 0.3
            [0.1, 0.25, 0.1625, 0.4875],  # keys 2, 3 share 0.25 as 1 : 3
        ]
    )
    torch.testing.assert_close(out[0, 0], expected)


# ---------------------------------------------------------------- against the reference


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("redistribute", ["all", "non_initial"])
@pytest.mark.parametrize("side", ["none", "left", "right"])
@pytest.mark.parametrize("head_mask_kind", [None, "heads", "batch_heads"])
def test_matches_reference_on_planted_sinks(
    dtype: torch.dtype, redistribute: str, side: str, head_mask_kind: str | None
) -> None:
    pattern, mask = _padded_planted(side, dtype)
    sinks = detect_sinks(pattern, attention_mask=mask)
    assert sinks.sum() > 0
    head_mask = {
        None: None,
        "heads": torch.tensor([True, True, False]),
        "batch_heads": torch.tensor(
            [[True, False, True], [False, True, True], [True, True, False]]
        ),
    }[head_mask_kind]
    out = calibrate_pattern(
        pattern,
        sinks,
        beta=0.4,
        head_mask=head_mask,
        redistribute=redistribute,
        attention_mask=mask,
    )
    assert out.dtype == dtype and out.shape == pattern.shape
    ref = reference_calibrate(
        pattern,
        sinks,
        beta=0.4,
        head_mask=head_mask,
        redistribute=redistribute,
        attention_mask=mask,
    )
    torch.testing.assert_close(out.double(), ref, **TOL[dtype])
    assert not torch.allclose(out.double(), pattern.double())  # the calibration did something
    if head_mask is not None:
        skipped = ~head_mask.bool().expand(3, 3)
        assert torch.equal(out[skipped], pattern[skipped])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("redistribute", ["all", "non_initial"])
@pytest.mark.parametrize("keep_first", [True, False])
@pytest.mark.parametrize("n_queries", [None, 1, 3])
def test_matches_reference_on_random_sink_masks(
    dtype: torch.dtype, redistribute: str, keep_first: bool, n_queries: int | None
) -> None:
    # Random marks, including pad keys and the first real token, on random patterns.
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1, 1]])
    if n_queries is None:
        mask[1, 7:] = 0  # right padding in the second row (prefill only)
    pattern = random_pattern(
        2, 2, 9, seed=11, dtype=dtype, attention_mask=mask, n_queries=n_queries
    )
    gen = torch.Generator().manual_seed(12)
    sinks = torch.rand(2, 2, 9, generator=gen) < 0.35
    sinks[:, :, 2] = True  # the first real token of row 0 (a plain key in row 1)
    sinks[1, :, 0] = True  # the first real token of row 1
    kwargs = {
        "beta": 0.3,
        "redistribute": redistribute,
        "attention_mask": mask,
        "keep_first": keep_first,
    }
    out = calibrate_pattern(pattern, sinks, **kwargs)
    ref = reference_calibrate(pattern, sinks, **kwargs)
    torch.testing.assert_close(out.double(), ref, **TOL[dtype])


def test_all_equals_the_literal_method_formula_in_float64() -> None:
    # Rows that sum to 1 (to float64 rounding): the "freed mass in proportion" form equals
    # (1 - beta*m) / (1 - m) as written. (The core computes in float32 internally.)
    pattern = random_pattern(2, 2, 10, seed=13, dtype=torch.float64)
    sinks = torch.rand(2, 2, 10, generator=torch.Generator().manual_seed(14)) < 0.4
    out = calibrate_pattern(pattern, sinks, beta=0.4)
    ref = reference_calibrate(pattern, sinks, beta=0.4, literal=True)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)


# ---------------------------------------------------------------- edge cases by hand


@pytest.mark.parametrize("redistribute", ["all", "non_initial"])
@pytest.mark.parametrize("beta", [0.0, 0.4])
def test_rows_with_nothing_to_receive_are_unchanged_and_finite(
    redistribute: str, beta: float
) -> None:
    p = torch.tensor([[[[1.0, 0, 0], [0.3, 0.7, 0], [0.0, 0.5, 0.5]]]])
    every = torch.ones(1, 1, 3, dtype=torch.bool)
    # keep_first=False: every visible key of every row is a sink.
    out = calibrate_pattern(p, every, beta=beta, redistribute=redistribute, keep_first=False)
    assert torch.equal(out, p)
    # keep_first=True: the first token receives with "all"; row 2 gives it nothing to scale.
    out = calibrate_pattern(p, every, beta=beta, redistribute=redistribute)
    assert torch.isfinite(out).all()
    assert torch.equal(out[0, 0, 2], p[0, 0, 2])
    if redistribute == "all":
        torch.testing.assert_close(out[0, 0, 1], torch.tensor([1.0 - beta * 0.7, beta * 0.7, 0.0]))
    else:
        assert torch.equal(out, p)


def test_zero_beta_removes_sink_attention() -> None:
    pattern = planted_sink_pattern(1, 2, 10, seed=15)
    sinks = detect_sinks(pattern)
    out = calibrate_pattern(pattern, sinks, beta=0.0)
    assert torch.all(out.transpose(-1, -2)[sinks] == 0)
    torch.testing.assert_close(out.sum(-1), torch.ones(1, 2, 10))


def test_pad_rows_and_pad_keys_untouched_even_with_garbage() -> None:
    rows = [planted_sink_pattern(1, 2, n, seed=n)[0] for n in (6, 9)]
    padded, mask = pad_batch(rows, "left", pad_fill=3.0)
    sinks = torch.ones(2, 2, 9, dtype=torch.bool)
    out = calibrate_pattern(padded, sinks, attention_mask=mask)
    pad_rows = ~mask.bool()[:, None, :, None].expand_as(padded)
    assert torch.equal(out[pad_rows], padded[pad_rows])
    pad_keys = ~mask.bool()[:, None, None, :].expand_as(padded) & ~pad_rows
    assert torch.all(out[pad_keys] == 0)


def test_result_is_a_new_tensor_and_input_unchanged() -> None:
    pattern, mask = _padded_planted("left", torch.float32)
    sinks = detect_sinks(pattern, attention_mask=mask)
    p0, s0, m0 = pattern.clone(), sinks.clone(), mask.clone()
    out = calibrate_pattern(pattern, sinks, beta=1.0, attention_mask=mask, head_mask=torch.ones(3))
    out.fill_(0.5)
    assert torch.equal(pattern, p0) and torch.equal(sinks, s0) and torch.equal(mask, m0)


# ---------------------------------------------------------------- errors

_raw_calibrate = inspect.unwrap(calibrate_pattern)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"beta": -0.1}, "beta"),
        ({"beta": 1.5}, "beta"),
        ({"beta": math.nan}, "beta"),
        ({"redistribute": "first"}, "redistribute"),
    ],
)
def test_bad_config_raises_config_error(kwargs: dict, match: str) -> None:
    pattern = random_pattern(1, 1, 4, seed=0)
    sinks = torch.zeros(1, 1, 4, dtype=torch.bool)
    # Unwrapped: under pytest the runtime checker refuses an unknown Literal first.
    with pytest.raises(ConfigError, match=match):
        _raw_calibrate(pattern, sinks, **kwargs)
    with pytest.raises((ConfigError, TypeError)):
        calibrate_pattern(pattern, sinks, **kwargs)


@pytest.mark.parametrize(
    ("sink_shape", "head_mask", "mask", "match"),
    [
        ((2, 3, 4), None, None, "sink_mask"),
        ((2, 2, 5), None, None, "sink_mask"),
        ((2, 2), None, None, "sink_mask"),
        ((2, 2, 4), torch.ones(3), None, "head_mask"),
        ((2, 2, 4), torch.ones(3, 2), None, "head_mask"),
        ((2, 2, 4), None, torch.ones(2, 5), "attention_mask"),
    ],
)
def test_bad_shapes_raise_shape_error(
    sink_shape: tuple[int, ...],
    head_mask: torch.Tensor | None,
    mask: torch.Tensor | None,
    match: str,
) -> None:
    pattern = random_pattern(2, 2, 4, seed=0)
    sinks = torch.zeros(sink_shape, dtype=torch.bool)
    with pytest.raises(ShapeError, match=match):
        _raw_calibrate(pattern, sinks, head_mask=head_mask, attention_mask=mask)
    with pytest.raises((ShapeError, TypeError)):
        calibrate_pattern(pattern, sinks, head_mask=head_mask, attention_mask=mask)


def test_bad_pattern_raises_shape_error() -> None:
    with pytest.raises(ShapeError, match="4 dims"):
        _raw_calibrate(torch.rand(2, 4, 4), torch.zeros(2, 4, dtype=torch.bool))


# ---------------------------------------------------------------- properties


@dataclass
class Case:
    pattern: torch.Tensor
    sinks: torch.Tensor
    mask: torch.Tensor | None
    beta: float
    redistribute: str


@st.composite
def cases(draw: st.DrawFn, dtype: torch.dtype = torch.float32) -> Case:
    batch = draw(st.integers(1, 3))
    heads = draw(st.integers(1, 3))
    n = draw(st.integers(1, 8))
    side = draw(st.sampled_from(["none", "left", "right"]))
    mask = None
    if side != "none":
        mask = torch.zeros(batch, n, dtype=torch.long)
        for b in range(batch):
            length = draw(st.integers(1, n))
            if side == "left":
                mask[b, n - length :] = 1
            else:
                mask[b, :length] = 1
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.5, 2.0, 8.0]))
    pattern = random_pattern(
        batch, heads, n, seed=seed, dtype=dtype, attention_mask=mask, scale=scale
    )
    prob = draw(st.sampled_from([0.0, 0.3, 0.6, 1.0]))
    sinks = torch.rand(batch, heads, n, generator=torch.Generator().manual_seed(seed + 1)) < prob
    beta = draw(st.one_of(st.sampled_from([0.0, 0.4, 1.0]), st.floats(0.0, 1.0)))
    redistribute = draw(st.sampled_from(["all", "non_initial"]))
    return Case(pattern, sinks, mask, beta, redistribute)


def _roles(case: Case) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per [batch, head, query, key]: effective sinks, receivers, real rows, first real key."""
    batch, heads, n_q, n_k = case.pattern.shape
    valid = valid_keys(case.mask, batch, n_k)
    first = torch.zeros_like(valid)
    first[torch.arange(batch), valid.int().argmax(-1)] = True
    first &= valid
    eff = case.sinks & valid[:, None, :] & ~first[:, None, :]
    receivers = valid[:, None, :] & ~eff
    if case.redistribute == "non_initial":
        receivers &= ~first[:, None, :]
    shape = case.pattern.shape
    rows = valid[:, None, :, None].expand(shape)
    return eff[:, :, None, :].expand(shape), receivers[:, :, None, :].expand(shape), rows, first


def _calibrate(case: Case, **kwargs: object) -> torch.Tensor:
    return calibrate_pattern(
        case.pattern,
        case.sinks,
        beta=case.beta,
        redistribute=case.redistribute,  # type: ignore[arg-type]
        attention_mask=case.mask,
        **kwargs,  # type: ignore[arg-type]
    )


@PROPERTY
@given(cases())
def test_real_rows_sum_to_one_and_never_nan(case: Case) -> None:
    out = _calibrate(case)
    assert not torch.isnan(out).any()
    assert torch.all((out >= 0) & (out <= 1 + 1e-6))
    _, _, rows, _ = _roles(case)
    sums = out.sum(-1)[rows[..., 0]]
    torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-5, rtol=0)


@PROPERTY
@given(cases(dtype=torch.float16), st.sampled_from([torch.float32, torch.float16, torch.bfloat16]))
def test_beta_one_is_exactly_the_identity(case: Case, dtype: torch.dtype) -> None:
    case.pattern = case.pattern.to(dtype)
    case.beta = 1.0
    out = _calibrate(case)
    assert out.dtype == dtype
    assert torch.equal(out, case.pattern)


@PROPERTY
@given(cases())
def test_sinks_scaled_exactly_and_receiver_ratios_preserved(case: Case) -> None:
    out = _calibrate(case)
    eff, receivers, rows, _ = _roles(case)
    p = case.pattern
    recv_mass = (p * receivers).sum(-1, keepdim=True).expand_as(p)
    sink_mass = (p * eff).sum(-1, keepdim=True).expand_as(p)
    active = rows & (recv_mass > 1e-6) & (sink_mass > 0)
    idle = ~rows | (recv_mass == 0) | (sink_mass == 0)
    # Sinks: exactly beta times the original (float32).
    assert torch.equal(out[active & eff], p[active & eff] * case.beta)
    # Receivers: one common factor per row, so their ratios are unchanged.
    sel = active & receivers & (p > 1e-30)
    ratio = torch.where(sel, out / torch.where(sel, p, torch.ones_like(p)), torch.nan)
    row_factor = torch.nanmean(ratio, dim=-1, keepdim=True).expand_as(p)
    torch.testing.assert_close(ratio[sel], row_factor[sel], rtol=1e-5, atol=0)
    assert torch.all(ratio[sel] >= 1 - 1e-6)
    # Keys that neither give nor receive, and idle rows, are bit-for-bit unchanged.
    untouched = (rows & ~eff & ~receivers) | idle
    assert torch.equal(out[untouched], p[untouched])


@PROPERTY
@given(cases())
def test_first_real_token_never_calibrated(case: Case) -> None:
    _, _, rows, first = _roles(case)
    marked = case.sinks | first[:, None, :]
    unmarked = case.sinks & ~first[:, None, :]
    out = _calibrate(case)
    assert torch.equal(
        out,
        calibrate_pattern(
            case.pattern,
            marked,
            beta=case.beta,
            redistribute=case.redistribute,  # type: ignore[arg-type]
            attention_mask=case.mask,
        ),
    )
    assert torch.equal(
        out,
        calibrate_pattern(
            case.pattern,
            unmarked,
            beta=case.beta,
            redistribute=case.redistribute,  # type: ignore[arg-type]
            attention_mask=case.mask,
        ),
    )
    first_cells = rows & first[:, None, None, :].expand_as(rows)
    if case.redistribute == "non_initial":
        assert torch.equal(out[first_cells], case.pattern[first_cells])
    else:
        assert torch.all(out[first_cells] >= case.pattern[first_cells])


@PROPERTY
@given(cases(), st.sampled_from([None, "heads", "batch_heads"]))
def test_inputs_unchanged(case: Case, head_mask_kind: str | None) -> None:
    batch, heads = case.pattern.shape[:2]
    head_mask = {
        None: None,
        "heads": torch.arange(heads) % 2 == 0,
        "batch_heads": torch.rand(batch, heads, generator=torch.Generator().manual_seed(0)) < 0.5,
    }[head_mask_kind]
    before = [t.clone() for t in (case.pattern, case.sinks, case.mask, head_mask) if t is not None]
    _calibrate(case, head_mask=head_mask)
    after = [t for t in (case.pattern, case.sinks, case.mask, head_mask) if t is not None]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


@PROPERTY
@given(
    st.lists(st.integers(1, 8), min_size=1, max_size=3),
    st.integers(1, 3),
    st.sampled_from(["left", "right"]),
    st.integers(0, 2**31 - 1),
    st.floats(0.0, 1.0),
    st.sampled_from(["all", "non_initial"]),
    st.integers(0, 3),
)
def test_padded_batch_equals_each_row_alone(
    lengths: list[int], heads: int, side: str, seed: int, beta: float, redistribute: str, extra: int
) -> None:
    rows = [random_pattern(1, heads, n, seed=seed + i)[0] for i, n in enumerate(lengths)]
    gen = torch.Generator().manual_seed(seed)
    row_sinks = [torch.rand(heads, n, generator=gen) < 0.4 for n in lengths]
    padded, mask = pad_batch(rows, side, length=max(lengths) + extra, pad_fill=0.25)  # type: ignore[arg-type]
    # Marks on pad keys must be ignored: mark every pad key.
    sinks = ~mask.bool()[:, None, :].repeat(1, heads, 1)
    for b, s in enumerate(row_sinks):
        sinks[b][:, mask[b].bool()] = s
    out = calibrate_pattern(
        padded, sinks, beta=beta, redistribute=redistribute, attention_mask=mask
    )  # type: ignore[arg-type]
    for b, (row, s) in enumerate(zip(rows, row_sinks, strict=True)):
        real = mask[b].bool()
        alone = calibrate_pattern(row[None], s[None], beta=beta, redistribute=redistribute)  # type: ignore[arg-type]
        torch.testing.assert_close(out[b][:, real][:, :, real], alone[0], atol=1e-6, rtol=1e-6)
        assert torch.all(out[b][:, real][:, :, ~real] == 0)
        assert torch.equal(out[b][:, ~real], padded[b][:, ~real])


@PROPERTY
@given(cases())
def test_all_sink_rows_with_beta_zero_are_finite(case: Case) -> None:
    case.beta = 0.0
    case.sinks = torch.ones_like(case.sinks)
    for keep_first in (True, False):
        out = _calibrate(case, keep_first=keep_first)
        assert torch.isfinite(out).all()
        if not keep_first:
            # Every visible key is a sink: nothing can receive, every row is unchanged.
            assert torch.equal(out, case.pattern)


# ---------------------------------------------------------------- ACT hook functions on tensors


def test_act_pattern_fn_changes_only_the_chosen_head() -> None:
    pattern = planted_sink_pattern(2, 3, 12, seed=20)
    p0 = pattern.clone()
    out = act_pattern_fn([1], beta=0.4)(pattern, hook=None)
    assert out.shape == pattern.shape and out.dtype == pattern.dtype
    assert torch.equal(pattern, p0)  # the hook returns a new tensor
    assert torch.equal(out[:, [0, 2]], pattern[:, [0, 2]])
    head = pattern[:, 1:2]
    expected = calibrate_pattern(head, detect_sinks(head), beta=0.4)
    assert torch.equal(out[:, 1:2], expected)
    assert not torch.allclose(out[:, 1], pattern[:, 1])  # efficacy: the head did change


def test_act_pattern_fn_with_padding_and_repeated_heads() -> None:
    rows = [planted_sink_pattern(1, 4, n, seed=n)[0] for n in (9, 13)]
    pattern, mask = pad_batch(rows, "left")
    out = act_pattern_fn([3, 0, 3], SinkSettings(beta=0.2, threshold=0.2), attention_mask=mask)(
        pattern, hook=None
    )
    sub = pattern[:, [0, 3]]
    sinks = detect_sinks(sub, threshold=0.2, attention_mask=mask)
    expected = calibrate_pattern(sub, sinks, beta=0.2, attention_mask=mask)
    assert torch.equal(out[:, [0, 3]], expected)
    assert torch.equal(out[:, [1, 2]], pattern[:, [1, 2]])
    for b, row in enumerate(rows):  # each padded row is calibrated like the row alone
        alone = act_pattern_fn([0, 3], SinkSettings(beta=0.2, threshold=0.2))(row[None], hook=None)
        torch.testing.assert_close(unpad(out, mask, b), alone[0], atol=1e-6, rtol=1e-6)


def test_act_pattern_fn_rule_and_redistribute_are_passed_on() -> None:
    pattern = planted_sink_pattern(1, 2, 12, seed=21)
    settings = SinkSettings(rule="alpha", threshold=2.0, redistribute="non_initial")
    out = act_pattern_fn([0], settings)(pattern, hook=None)
    head = pattern[:, :1]
    sinks = detect_sinks(head, rule="alpha", threshold=2.0)
    assert torch.equal(out[:, :1], calibrate_pattern(head, sinks, redistribute="non_initial"))
    # non_initial: the first token keeps its weight.
    assert torch.equal(out[:, 0, :, 0], pattern[:, 0, :, 0])


def test_act_pattern_fn_loose_settings_still_apply_with_a_warning() -> None:
    pattern = planted_sink_pattern(1, 2, 12, seed=21)
    new = act_pattern_fn([0], SinkSettings(rule="alpha", threshold=2.0))(pattern, hook=None)
    with pytest.warns(DeprecationWarning, match=r"settings=SinkSettings\(threshold=2.0"):
        old = act_pattern_fn([0], threshold=2.0, rule="alpha")(pattern, hook=None)
    assert torch.equal(old, new)
    with pytest.raises(ConfigError, match="beside settings"):
        act_pattern_fn([0], SinkSettings(), beta=0.2)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        act_pattern_fn([0], windows_size=3)


def test_act_pattern_fn_decode_step() -> None:
    pattern = planted_sink_pattern(2, 2, 10, seed=22, n_queries=1)
    out = act_pattern_fn([0, 1], SinkSettings(beta=0.4, threshold=0.2))(pattern, hook=None)
    sinks = detect_sinks(pattern, threshold=0.2)
    assert sinks.any()
    assert torch.equal(out, calibrate_pattern(pattern, sinks, beta=0.4))
    torch.testing.assert_close(out.sum(-1), torch.ones(2, 2, 1))


def test_act_hooks_names_and_heads() -> None:
    hooks = act_hooks(HeadSet({5: [0], 3: [4, 1]}), beta=0.4)
    assert [name for name, _ in hooks] == [
        "blocks.3.attn.hook_pattern",
        "blocks.5.attn.hook_pattern",
    ]
    assert all(callable(fn) for _, fn in hooks)
    pattern = planted_sink_pattern(1, 5, 12, seed=23)
    out = hooks[0][1](pattern, hook=None)
    changed = [h for h in range(5) if not torch.equal(out[:, h], pattern[:, h])]
    assert changed == [1, 4]
    out = hooks[1][1](pattern, hook=None)
    assert [h for h in range(5) if not torch.equal(out[:, h], pattern[:, h])] == [0]
    assert act_hooks(HeadSet()) == []
    cfg = ActConfig(HeadSet({5: [0], 3: [4, 1]}), beta=0.3)
    assert [name for name, _ in cfg(None)] == [name for name, _ in hooks]
    assert cfg.to_dict()["head_set"]["heads"] == {"3": [1, 4], "5": [0]}


@pytest.mark.parametrize(
    ("kwargs", "strict"),
    [
        ({"beta": 1.2}, True),
        ({"beta": -0.5}, True),
        ({"threshold": 0.0}, True),
        ({"rule": "max"}, False),  # Literal: refused by the runtime checker under pytest
        ({"redistribute": "some"}, False),
    ],
)
def test_act_config_validates(kwargs: dict, strict: bool) -> None:
    errors = ConfigError if strict else (ConfigError, TypeError)
    with pytest.raises(errors):
        ActConfig(HeadSet({1: [0]}), SinkSettings(**kwargs))
    with pytest.raises(errors):
        act_hooks(HeadSet({1: [0]}), SinkSettings(**kwargs))


def test_act_pattern_fn_mask_length_mismatch() -> None:
    pattern = random_pattern(2, 2, 6, seed=24)
    fn = act_pattern_fn([0], attention_mask=torch.ones(2, 5, dtype=torch.long))
    with pytest.raises(ShapeError, match="5 positions but the pattern has 6 keys"):
        fn(pattern, hook=None)


def test_act_pattern_fn_bad_pattern_shape() -> None:
    fn = act_pattern_fn([0])
    with pytest.raises(ShapeError, match="expected a \\[batch, head, query, key\\] pattern"):
        inspect.unwrap(fn)(torch.rand(2, 6, 6), hook=None)
    with pytest.raises((ShapeError, TypeError)):
        fn(torch.rand(2, 6, 6), hook=None)


def _prompt_then_late_sinks(k: int = 6, n: int = 12) -> torch.Tensor:
    """Column 3 is a sink in the prompt rows (< k); columns 4 and 8 only in the later rows."""
    pattern = planted_sink_pattern(1, 2, n, seed=25, sinks=(0, 3), sink_mass=0.9).double()
    late = torch.zeros(n, n, dtype=torch.float64)
    late[k:, 4] = 1.0
    late[8:, 4] = 0.5
    late[8:, 8] = 0.5
    pattern[:, :, k:] = 0.5 * pattern[:, :, k:] + 0.5 * late[k:]
    return pattern.float()


def test_sink_queries_detects_on_the_prompt_rows_only() -> None:
    k, n = 6, 12
    pattern = _prompt_then_late_sinks(k, n)
    for h in range(2):
        on_prompt = detect_sinks(pattern[:, :, :k, :k])[0, h].tolist()
        on_all = detect_sinks(pattern)[0, h].tolist()
        assert [j for j in range(k) if on_prompt[j]] == [3]
        assert [j for j in range(n) if on_all[j]] == [3, 4, 8]
    out = act_pattern_fn([0, 1], sink_queries=k)(pattern, hook=None)
    expected_sinks = torch.zeros(1, 2, n, dtype=torch.bool)
    expected_sinks[..., 3] = True
    assert torch.equal(out, calibrate_pattern(pattern, expected_sinks))
    # The prompt's sink is calibrated in every row, the later rows included.
    assert torch.all(out[0, :, k:, 3] < pattern[0, :, k:, 3])
    assert torch.all(out[0, :, k:, 4] > pattern[0, :, k:, 4])  # column 4 only receives
    # Without the policy the late columns are sinks too.
    full = act_pattern_fn([0, 1])(pattern, hook=None)
    assert torch.all(full[0, :, 8:, 8] < pattern[0, :, 8:, 8])


@pytest.mark.parametrize("k", [12, 20])
def test_sink_queries_covering_every_row_is_the_default(k: int) -> None:
    pattern = _prompt_then_late_sinks()
    assert torch.equal(
        act_pattern_fn([1], sink_queries=k)(pattern, hook=None),
        act_pattern_fn([1])(pattern, hook=None),
    )
