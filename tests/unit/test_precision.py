"""The bf16 guard for padding queries: rows of masked scores that are -inf everywhere."""

import torch

from act_lens.runtime.precision import _finite_masked_rows


def test_only_rows_that_are_minus_inf_everywhere_become_zero() -> None:
    inf = float("-inf")
    scores = torch.tensor(
        [[[[inf, inf, inf], [0.5, inf, inf], [0.1, 0.2, inf]], [[inf, inf, inf]] * 3]]
    )  # [batch 1, head 2, query 3, key 3]: head 0 has one dead row, head 1 only dead rows
    scores[0, 0, 2, 1] = float("nan")  # a NaN row is not a masked row: left as it is
    out = _finite_masked_rows(None, (), scores)
    assert torch.equal(out[0, 1], torch.zeros(3, 3))
    assert torch.equal(out[0, 0, 0], torch.zeros(3))
    assert torch.equal(out[0, 0, 1], scores[0, 0, 1])
    assert out[0, 0, 2, 1].isnan() and out[0, 0, 2, 0] == 0.1
    # the same as the full-size form it replaced
    dead = torch.isneginf(scores).all(dim=-1, keepdim=True)
    assert torch.equal(out.nan_to_num(7.0), scores.masked_fill(dead, 0.0).nan_to_num(7.0))


def test_scores_without_padding_rows_come_back_untouched() -> None:
    scores = torch.tensor([[[[0.0, float("-inf")], [1.0, 2.0]]]])
    assert _finite_masked_rows(None, (), scores) is scores
