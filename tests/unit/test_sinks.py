"""Unit tests for act_lens.core.sinks: sink scores, sink detection, head statistics."""

import inspect
import math

import pytest
import torch

from act_lens.core.masks import real_keys
from act_lens.core.sinks import detect_sinks, head_statistics, sink_scores, visible_query_counts
from act_lens.errors import ConfigError, ShapeError
from tests.helpers import (
    left_pad,
    pad_batch,
    planted_sink_pattern,
    random_pattern,
    unpad,
    valid_keys,
)


def reference_scores(
    pattern: torch.Tensor, attention_mask: torch.Tensor | None = None, window: int | None = None
) -> torch.Tensor:
    """Loop reference: for key j, the mean of A[i, j] over the real queries i that see j."""
    batch, heads, n_q, n_k = pattern.shape
    valid = valid_keys(attention_mask, batch, n_k).tolist()
    a = pattern.double().tolist()
    out = torch.zeros(batch, heads, n_k, dtype=torch.float64)
    for b in range(batch):
        for h in range(heads):
            for j in range(n_k):
                if not valid[b][j]:
                    continue
                vals = []
                for qi in range(n_q):
                    i = n_k - n_q + qi
                    if valid[b][i] and 0 <= i - j and (window is None or i - j < window):
                        vals.append(a[b][h][qi][j])
                out[b, h, j] = sum(vals) / len(vals) if vals else 0.0
    return out


def reference_counts(valid: torch.Tensor, n_queries: int, window: int | None) -> torch.Tensor:
    batch, n_k = valid.shape
    out = torch.zeros(batch, n_k)
    for b in range(batch):
        for j in range(n_k):
            for i in range(n_k - n_queries, n_k):
                if valid[b, i] and 0 <= i - j and (window is None or i - j < window):
                    out[b, j] += 1
    return out


MASKS = {
    "none": None,
    "left": torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1, 1]]),
    "right": torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1, 0]]),
    "mixed": torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0, 0]]),
}


# ---------------------------------------------------------------- scores


def test_docstring_example_by_hand() -> None:
    p = torch.tensor([[[[1.0, 0, 0], [0.5, 0.5, 0], [0.6, 0.2, 0.2]]]])
    # key 0: (1 + 0.5 + 0.6) / 3, key 1: (0.5 + 0.2) / 2, key 2: 0.2 / 1
    expected = torch.tensor([0.7, 0.35, 0.2])
    torch.testing.assert_close(sink_scores(p)[0, 0], expected)


@pytest.mark.parametrize("mask_kind", list(MASKS))
@pytest.mark.parametrize("n_queries", [None, 1, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_scores_match_loop_reference(mask_kind: str, n_queries: int | None, seed: int) -> None:
    mask = MASKS[mask_kind]
    if mask is not None and n_queries is not None:
        mask = torch.ones_like(mask)
        mask[0, :2] = 0  # decode steps only see left padding: the newest position is real
    pattern = random_pattern(2, 3, 9, seed=seed, attention_mask=mask, n_queries=n_queries)
    scores = sink_scores(pattern, mask)
    assert scores.dtype == torch.float32
    assert scores.shape == (2, 3, 9)
    torch.testing.assert_close(
        scores.double(), reference_scores(pattern, mask), atol=1e-6, rtol=1e-5
    )


@pytest.mark.parametrize("window", [1, 2, 3, 8, 20])
@pytest.mark.parametrize("mask_kind", ["none", "left", "right"])
def test_window_scores_match_loop_reference(window: int, mask_kind: str) -> None:
    mask = MASKS[mask_kind]
    pattern = random_pattern(2, 2, 9, seed=window, attention_mask=mask, window=window)
    scores = sink_scores(pattern, mask, window=window)
    torch.testing.assert_close(
        scores.double(), reference_scores(pattern, mask, window), atol=1e-6, rtol=1e-5
    )


def test_window_one_scores_are_the_diagonal() -> None:
    # With window=1 each key is seen by its own query only: the score is A[j, j].
    pattern = random_pattern(1, 2, 7, seed=3, window=1)
    diag = pattern.diagonal(dim1=-2, dim2=-1)
    torch.testing.assert_close(sink_scores(pattern, window=1), diag)


def test_window_changes_the_counts() -> None:
    # A windowed pattern scored as if it were global divides by too many queries.
    pattern = random_pattern(1, 1, 9, seed=4, window=3)
    assert not torch.allclose(sink_scores(pattern, window=3), sink_scores(pattern))


@pytest.mark.parametrize("window", [None, 1, 3])
@pytest.mark.parametrize("n_queries", [9, 4, 1])
@pytest.mark.parametrize("mask_kind", ["none", "left", "mixed"])
def test_visible_query_counts_match_loop(
    window: int | None, n_queries: int, mask_kind: str
) -> None:
    valid = valid_keys(MASKS[mask_kind], 2, 9)
    expected = reference_counts(valid, n_queries, window)
    torch.testing.assert_close(visible_query_counts(valid, n_queries, window), expected)


def test_pad_keys_score_zero_and_pad_rows_are_ignored() -> None:
    mask = MASKS["mixed"]
    # Garbage in the pad query rows: a score that read them would change.
    pattern = random_pattern(2, 2, 9, seed=5, attention_mask=mask, pad_fill=7.0)
    scores = sink_scores(pattern, mask)
    assert torch.all(scores[~mask.bool()[:, None, :].expand_as(scores)] == 0)
    torch.testing.assert_close(
        scores.double(), reference_scores(pattern, mask), atol=1e-6, rtol=1e-5
    )


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("kind", ["random", "planted"])
def test_padded_batch_scores_equal_each_row_alone(side: str, kind: str) -> None:
    lengths = [9, 5, 12, 8]
    if kind == "random":
        rows = [random_pattern(1, 3, n, seed=n)[0] for n in lengths]
    else:
        rows = [planted_sink_pattern(1, 3, n, seed=n)[0] for n in lengths]
    padded, mask = pad_batch(rows, side, pad_fill=0.37)
    scores = sink_scores(padded, mask)
    sinks = detect_sinks(padded, attention_mask=mask)
    sinks_all = detect_sinks(padded, attention_mask=mask, keep_first=False)
    alpha = detect_sinks(padded, attention_mask=mask, rule="alpha", threshold=2.0)
    for b, row in enumerate(rows):
        real = mask[b].bool()
        alone = row[None]
        torch.testing.assert_close(scores[b][:, real], sink_scores(alone)[0], atol=1e-6, rtol=1e-6)
        assert torch.equal(sinks[b][:, real], detect_sinks(alone)[0])
        assert torch.equal(sinks_all[b][:, real], detect_sinks(alone, keep_first=False)[0])
        assert torch.equal(alpha[b][:, real], detect_sinks(alone, rule="alpha", threshold=2.0)[0])
        assert torch.all(scores[b][:, ~real] == 0)
        assert not sinks_all[b][:, ~real].any()


# ---------------------------------------------------------------- detection


def test_planted_sinks_found() -> None:
    n = 16
    pattern = planted_sink_pattern(3, 2, n, seed=0)  # sinks at 0, 8 and 14
    expected = torch.zeros(n, dtype=torch.bool)
    expected[[8, 14]] = True
    found = detect_sinks(pattern)
    assert torch.equal(found, expected.expand(3, 2, n))
    expected[0] = True
    assert torch.equal(detect_sinks(pattern, keep_first=False), expected.expand(3, 2, n))


@pytest.mark.parametrize("hidden", [(3,), (10,), (4, 9), (13,)])
def test_hidden_sinks_found_at_any_position(hidden: tuple[int, ...]) -> None:
    n = 15
    pattern = planted_sink_pattern(2, 2, n, seed=1, sinks=(0, *hidden), sink_mass=0.8)
    expected = torch.zeros(n, dtype=torch.bool)
    expected[list(hidden)] = True
    assert torch.equal(detect_sinks(pattern), expected.expand(2, 2, n))
    expected[0] = True
    assert torch.equal(detect_sinks(pattern, keep_first=False), expected.expand(2, 2, n))


def test_first_token_below_threshold_keeps_the_first_hidden_sink() -> None:
    # The first token is no sink in these heads (score about 0.07); the official code drops
    # "the first detected sink", which would wrongly spare key 1. Excluding position 0 must not.
    n = 20
    pattern = planted_sink_pattern(2, 2, n, seed=1, sinks=(1, 12), sink_mass=0.9)
    assert torch.all(sink_scores(pattern)[..., 0] < 0.1)
    expected = torch.zeros(n, dtype=torch.bool)
    expected[[1, 12]] = True
    for keep_first in (True, False):
        assert torch.equal(detect_sinks(pattern, keep_first=keep_first), expected.expand(2, 2, n))


def test_threshold_is_strict_and_per_head() -> None:
    # Head 0: key 1 scores exactly 0.25 (not > 0.25); head 1: key 1 scores 0.5.
    p = torch.tensor(
        [
            [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.6, 0.2, 0.2]],
            [[1.0, 0.0, 0.0], [0.4, 0.6, 0.0], [0.4, 0.4, 0.2]],
        ]
    )[None]
    found = detect_sinks(p, threshold=0.35)
    assert found[0].tolist() == [[False, False, False], [False, True, False]]
    found = detect_sinks(p, threshold=0.3)
    assert found[0].tolist() == [[False, True, False], [False, True, False]]


def test_keep_first_under_left_padding() -> None:
    n, n_pad = 10, 4
    padded, mask = left_pad(planted_sink_pattern(2, 2, n, seed=2), n_pad)  # sinks 0, 5, 8
    first = n_pad  # the first NON-PAD position
    kept = detect_sinks(padded, attention_mask=mask)
    marked = detect_sinks(padded, attention_mask=mask, keep_first=False)
    assert marked[..., first].all()
    assert not kept[..., first].any()
    assert kept[..., first + 5].all() and kept[..., first + 8].all()
    assert not marked[..., :n_pad].any()
    assert torch.equal(kept[..., first + 1 :], marked[..., first + 1 :])


def test_keep_first_per_row_with_different_pad_lengths() -> None:
    rows = [planted_sink_pattern(1, 1, n, seed=n)[0] for n in (8, 11, 6)]
    padded, mask = pad_batch(rows, "left")
    marked = detect_sinks(padded, attention_mask=mask, keep_first=False)
    kept = detect_sinks(padded, attention_mask=mask)
    for b in range(3):
        first = int(mask[b].nonzero()[0])
        assert marked[b, 0, first] and not kept[b, 0, first]
        assert int(kept[b].sum()) == int(marked[b].sum()) - 1


def test_alpha_rule_uses_the_number_of_real_tokens() -> None:
    n, n_pad = 8, 8
    padded, mask = left_pad(planted_sink_pattern(1, 2, n, seed=3), n_pad)
    scores = sink_scores(padded, mask)
    valid = mask.bool()[:, None, :]
    first = torch.zeros_like(valid)
    first[..., n_pad] = True
    differs = False
    for alpha in (0.5, 1.0, 2.0, 3.0, 5.0):
        found = detect_sinks(padded, attention_mask=mask, rule="alpha", threshold=alpha)
        assert torch.equal(found, (scores > alpha / n) & valid & ~first)
        differs |= not torch.equal(found, (scores > alpha / (n + n_pad)) & valid & ~first)
    assert differs, "the grid must include a threshold where N = padded length would differ"


def test_alpha_rule_by_hand() -> None:
    # N = 4 tokens; alpha = 1 gives the limit 0.25.
    p = torch.tensor(
        [[[[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [0.5, 0.2, 0.3, 0], [0.4, 0.1, 0.3, 0.2]]]]
    )
    # scores: key0 0.6, key1 0.8/3, key2 0.3, key3 0.2
    found = detect_sinks(p, rule="alpha", threshold=1.0, keep_first=False)
    assert found[0, 0].tolist() == [True, True, True, False]
    found = detect_sinks(p, rule="mean", threshold=1.0, keep_first=False)
    assert not found.any()


def test_decode_shaped_pattern() -> None:
    # One query row (the newest position) over 7 keys: each key is seen once.
    pattern = random_pattern(2, 2, 7, seed=6, n_queries=1)
    scores = sink_scores(pattern)
    torch.testing.assert_close(scores, pattern[:, :, 0, :])
    found = detect_sinks(pattern, threshold=0.2, keep_first=False)
    assert torch.equal(found, pattern[:, :, 0, :] > 0.2)
    # Left padding in a decode step: pad keys score 0 and the first real key is kept.
    padded, mask = left_pad(pattern, 3)
    torch.testing.assert_close(sink_scores(padded, mask)[..., 3:], scores)
    found = detect_sinks(padded, threshold=0.2, attention_mask=mask)
    expected = pattern[:, :, 0, :] > 0.2
    expected[..., 0] = False
    assert torch.equal(found[..., 3:], expected)
    assert not found[..., :3].any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_patterns(dtype: torch.dtype) -> None:
    pattern = planted_sink_pattern(2, 2, 12, seed=7, dtype=dtype)
    scores = sink_scores(pattern)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores.double(), reference_scores(pattern), atol=1e-6, rtol=1e-5)
    assert torch.equal(detect_sinks(pattern), detect_sinks(pattern.float()))


# ---------------------------------------------------------------- purity and errors


def test_inputs_unchanged() -> None:
    mask = MASKS["left"].clone()
    pattern = random_pattern(2, 2, 9, seed=8, attention_mask=mask)
    p0, m0 = pattern.clone(), mask.clone()
    scores = sink_scores(pattern, mask)
    sinks = detect_sinks(pattern, attention_mask=mask, keep_first=True, rule="alpha", threshold=3.0)
    s0 = sinks.clone()
    head_statistics(pattern, sinks, mask)
    assert torch.equal(pattern, p0) and torch.equal(mask, m0) and torch.equal(sinks, s0)
    # The results are new tensors, not views of the input.
    scores.add_(1.0)
    assert torch.equal(pattern, p0)


# Under pytest the jaxtyping/beartype checker rejects bad shapes and unknown Literal values before the function body
# runs; the unwrapped functions show the package's own checks, which is what users get.
_raw_scores = inspect.unwrap(sink_scores)
_raw_detect = inspect.unwrap(detect_sinks)
_raw_stats = inspect.unwrap(head_statistics)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rule": "median"}, "rule"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": -0.1}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"rule": "alpha", "threshold": 0.0}, "threshold"),
    ],
)
def test_bad_config_raises_config_error(kwargs: dict, match: str) -> None:
    pattern = random_pattern(1, 1, 4, seed=0)
    with pytest.raises(ConfigError, match=match):
        _raw_detect(pattern, **kwargs)
    # With the runtime checker on, the bad call is refused all the same (a Literal mismatch
    # is a TypeError there).
    with pytest.raises((ConfigError, TypeError)):
        detect_sinks(pattern, **kwargs)


@pytest.mark.parametrize(
    ("pattern", "mask", "match"),
    [
        (torch.rand(2, 3, 3), None, "4 dims"),
        (torch.rand(1, 2, 2, 3, 3), None, "4 dims"),
        (torch.ones(1, 1, 3, 3, dtype=torch.long), None, "float"),
        (torch.rand(2, 1, 3, 3), torch.ones(2, 4), r"\[batch, 3\]"),
        (torch.rand(2, 1, 3, 3), torch.ones(3, 3), "batch size 3"),
    ],
)
def test_bad_shapes_raise_shape_error(
    pattern: torch.Tensor, mask: torch.Tensor | None, match: str
) -> None:
    with pytest.raises(ShapeError, match=match):
        _raw_scores(pattern, mask)
    sinks = torch.zeros(*pattern.shape[:2], pattern.shape[-1], dtype=torch.bool)
    with pytest.raises(ShapeError, match=match):
        _raw_stats(pattern, sinks, mask)
    # With the runtime checker on, the bad call is refused all the same.
    with pytest.raises((ShapeError, TypeError)):
        sink_scores(pattern, mask)


def test_one_dimensional_mask_raises_shape_error() -> None:
    with pytest.raises(ShapeError, match=r"\[batch, 3\]"):
        inspect.unwrap(real_keys)(torch.ones(3), 2, 3, torch.device("cpu"))


def test_config_checked_before_shape() -> None:
    with pytest.raises(ConfigError):
        _raw_detect(torch.rand(2, 3, 3), rule="nope")


# ---------------------------------------------------------------- head statistics


def reference_head_statistics(
    pattern: torch.Tensor, sinks: torch.Tensor, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch, heads, n_q, n_k = pattern.shape
    valid = valid_keys(attention_mask, batch, n_k)
    out = torch.zeros(3, batch, heads, dtype=torch.float64)
    p = pattern.double()
    for b in range(batch):
        first = int(valid[b].nonzero()[0])
        rows = [qi for qi in range(n_q) if valid[b, n_k - n_q + qi]]
        for h in range(heads):
            for qi in rows:
                row = p[b, h, qi]
                out[0, b, h] += row[first]
                out[1, b, h] += row[sinks[b, h]].sum()
                out[2, b, h] -= sum(float(x) * math.log(float(x)) for x in row if x > 0)
            out[:, b, h] /= len(rows)
    return out[0], out[1], out[2]


@pytest.mark.parametrize("mask_kind", ["none", "left", "right", "mixed"])
def test_head_statistics_match_loop_reference(mask_kind: str) -> None:
    mask = MASKS[mask_kind]
    pattern = random_pattern(2, 3, 9, seed=9, attention_mask=mask, pad_fill=0.5)
    sinks = detect_sinks(pattern, attention_mask=mask, threshold=0.15)
    got = head_statistics(pattern, sinks, mask)
    for g, r in zip(got, reference_head_statistics(pattern, sinks, mask), strict=True):
        assert g.dtype == torch.float32 and g.shape == (2, 3)
        torch.testing.assert_close(g.double(), r, atol=1e-5, rtol=1e-5)


def test_head_statistics_of_planted_pattern() -> None:
    n, n_pad = 16, 3
    padded, mask = left_pad(planted_sink_pattern(1, 2, n, seed=10), n_pad)
    sinks = detect_sinks(padded, attention_mask=mask)
    first_mass, hidden_mass, entropy = head_statistics(padded, sinks, mask)
    alone = planted_sink_pattern(1, 2, n, seed=10)
    for got, want in zip(
        (first_mass, hidden_mass, entropy),
        head_statistics(alone, detect_sinks(alone)),
        strict=True,
    ):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    assert torch.all(first_mass > 0.4) and torch.all(hidden_mass > 0.2)
    assert torch.all(first_mass + hidden_mass <= 1.0 + 1e-6)
    assert torch.all(entropy > 0) and torch.all(entropy < math.log(n))
    assert torch.equal(unpad(padded, mask, 0), alone[0])
