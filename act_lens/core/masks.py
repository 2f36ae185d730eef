"""Padding helpers shared by the core functions."""

import torch
from jaxtyping import Bool, Shaped
from torch import Tensor

from act_lens.errors import ShapeError


def real_keys(
    attention_mask: Shaped[Tensor, "batch key_pos"] | None,
    batch: int,
    n_keys: int,
    device: torch.device,
) -> Bool[Tensor, "batch key_pos"]:
    """Boolean mask of real (non-pad) key positions; all True when no mask is given."""
    if attention_mask is None:
        return torch.ones(batch, n_keys, dtype=torch.bool, device=device)
    if attention_mask.ndim != 2 or attention_mask.shape[-1] != n_keys:
        raise ShapeError(
            f"attention_mask has shape {tuple(attention_mask.shape)}; expected [batch, {n_keys}] "
            "(one entry per key position, 1 for real tokens and 0 for padding)"
        )
    if attention_mask.shape[0] not in (1, batch):
        raise ShapeError(
            f"attention_mask has batch size {attention_mask.shape[0]} but the pattern has {batch}; "
            "pass the mask of the batch that produced the pattern"
        )
    return attention_mask.to(device=device).bool().expand(batch, n_keys)


def first_real_position(valid: Bool[Tensor, "batch key_pos"]) -> Tensor:
    """Index of the first real token of each row (0 for a row without real tokens)."""
    return valid.to(torch.int8).argmax(dim=-1)


def first_real_onehot(valid: Bool[Tensor, "batch key_pos"]) -> Bool[Tensor, "batch key_pos"]:
    first = first_real_position(valid)
    onehot = torch.zeros_like(valid)
    onehot.scatter_(-1, first[:, None], True)
    return onehot & valid


def real_queries(
    valid_keys: Bool[Tensor, "batch key_pos"], n_queries: int
) -> Bool[Tensor, "batch query_pos"]:
    """Real query rows: queries are the last ``n_queries`` key positions (prefill or decode)."""
    return valid_keys[:, valid_keys.shape[-1] - n_queries :]


def heads_by_row(
    head_mask: Tensor, batch: int, n_heads: int, device: torch.device
) -> Bool[Tensor, "batch head_index"]:
    """A ``[head_index]`` or ``[batch, head_index]`` head selection as ``[batch, head_index]``."""
    mask = head_mask.to(device=device).bool()
    if mask.shape == (n_heads,):
        return mask[None, :].expand(batch, n_heads)
    if mask.shape == (batch, n_heads):
        return mask
    raise ShapeError(
        f"head_mask has shape {tuple(mask.shape)}; expected [{n_heads}] or [{batch}, {n_heads}]"
    )
