"""scale_initial_attention (ZeroTuning's edit): a loop-based reference and properties."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from act_lens.core.zerotuning import scale_initial_attention
from act_lens.errors import ConfigError
from tests.helpers import random_pattern, valid_keys

PROPERTY = settings(max_examples=60, deadline=None)


def _reference(pattern, gamma, head_mask, mask):
    """One row at a time, straight from the definition (float64)."""
    out = pattern.clone().to(torch.float64)
    batch, heads, n_q, n_k = pattern.shape
    valid = valid_keys(mask, batch, n_k)
    for b in range(batch):
        real = valid[b].nonzero().flatten().tolist()
        if not real:
            continue
        first = real[0]
        for h in range(heads):
            if head_mask is not None and not bool(head_mask[h]):
                continue
            for q in range(n_q):
                if not valid[b, n_k - n_q + q]:
                    continue  # pad query rows are untouched
                row = pattern[b, h, q].to(torch.float64)
                a = float(row[first])
                rest = sum(float(row[k]) for k in real if k != first)
                denom = gamma * a + rest
                if denom <= 1e-12:
                    continue
                new = row / denom
                new[first] = gamma * a / denom
                keep = torch.tensor([not valid[b, k] for k in range(n_k)])
                out[b, h, q] = torch.where(keep, row, new)
    return out


@st.composite
def cases(draw):
    batch, heads, n = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 7))
    mask = None
    if draw(st.booleans()):
        mask = torch.zeros(batch, n, dtype=torch.long)
        for b in range(batch):
            mask[b, n - draw(st.integers(1, n)) :] = 1  # left padding
    pattern = random_pattern(batch, heads, n, seed=draw(st.integers(0, 2**31 - 1)), attention_mask=mask,
                             scale=draw(st.sampled_from([0.5, 2.0, 8.0])))  # fmt: skip
    gamma = draw(st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0]), st.floats(0.0, 6.0)))
    head_mask = (
        None if draw(st.booleans()) else torch.tensor([draw(st.booleans()) for _ in range(heads)])
    )
    return pattern, gamma, head_mask, mask


@PROPERTY
@given(cases())
def test_matches_the_row_by_row_reference(case):
    pattern, gamma, head_mask, mask = case
    out = scale_initial_attention(pattern, gamma=gamma, head_mask=head_mask, attention_mask=mask)
    torch.testing.assert_close(
        out.to(torch.float64), _reference(pattern, gamma, head_mask, mask), atol=1e-6, rtol=1e-5
    )


@PROPERTY
@given(cases())
def test_rows_sum_to_one_identity_at_one_and_inputs_unchanged(case):
    pattern, gamma, head_mask, mask = case
    before = pattern.clone()
    out = scale_initial_attention(pattern, gamma=gamma, head_mask=head_mask, attention_mask=mask)
    assert torch.equal(pattern, before) and out is not pattern
    batch, _, n_q, n_k = pattern.shape
    rows = valid_keys(mask, batch, n_k)[:, None, n_k - n_q :]
    sums = out.sum(-1)
    torch.testing.assert_close(
        sums[rows.expand_as(sums)], torch.ones(int(rows.expand_as(sums).sum())), atol=1e-5, rtol=0
    )
    assert torch.equal(scale_initial_attention(pattern, gamma=1.0, attention_mask=mask), pattern)
    # pad keys stay exactly 0 in real rows; unselected heads are untouched
    if head_mask is not None:
        assert torch.equal(out[:, ~head_mask], pattern[:, ~head_mask])


@PROPERTY
@given(cases(), st.floats(0.1, 3.0), st.floats(0.1, 3.0))
def test_two_scalings_compose_into_one(case, g1, g2):
    pattern, _, head_mask, mask = case
    twice = scale_initial_attention(
        scale_initial_attention(pattern, gamma=g1, head_mask=head_mask, attention_mask=mask),
        gamma=g2, head_mask=head_mask, attention_mask=mask,
    )  # fmt: skip
    once = scale_initial_attention(pattern, gamma=g1 * g2, head_mask=head_mask, attention_mask=mask)
    torch.testing.assert_close(twice, once, atol=1e-5, rtol=1e-4)


def test_by_hand_and_the_other_keys_keep_their_ratios():
    p = torch.tensor([[[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.6, 0.2]]]])
    out = scale_initial_attention(p, gamma=0.5)
    # last row: a = 0.2 -> first 0.1 / 0.9, others 0.6 / 0.9 and 0.2 / 0.9
    torch.testing.assert_close(out[0, 0, 2], torch.tensor([0.1, 0.6, 0.2]) / 0.9)
    assert torch.equal(out[0, 0, 0], p[0, 0, 0])  # the first row only sees the first token
    zero = scale_initial_attention(p, gamma=0.0)
    assert torch.equal(zero[0, 0, 0], p[0, 0, 0])  # nothing to renormalise with: unchanged
    torch.testing.assert_close(zero[0, 0, 1], torch.tensor([0.0, 1.0, 0.0]))
    # under left padding the first *real* token is scaled, pad keys stay 0
    padded = torch.zeros(1, 1, 4, 4)
    padded[0, 0, 2:, 2:] = p[0, 0, 1:, 1:] * 0 + torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    mask = torch.tensor([[0, 0, 1, 1]])
    out = scale_initial_attention(padded, gamma=3.0, attention_mask=mask)
    torch.testing.assert_close(out[0, 0, 3], torch.tensor([0.0, 0.0, 0.75, 0.25]))
    assert torch.equal(out[0, 0, :2], padded[0, 0, :2])


def test_bad_input():
    with pytest.raises(ConfigError, match="gamma must be >= 0"):
        scale_initial_attention(torch.ones(1, 1, 1, 1), gamma=-1.0)
