"""Tokenize and batch prompts with left padding, sorted by length."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from act_lens.errors import ConfigError


@dataclass(frozen=True)
class Batch:
    """Left-padded token ids with their mask; ``index`` maps rows back to the input order."""

    tokens: Tensor  # [batch, pos] long
    attention_mask: Tensor  # [batch, pos] long, 1 = real token
    index: tuple[int, ...]

    @property
    def lengths(self) -> Tensor:
        return self.attention_mask.sum(-1)


def encode(
    tokenizer: Any, texts: Sequence[str], *, add_special_tokens: bool = True
) -> list[list[int]]:
    """Token ids of each text (the tokenizer's own special-token behaviour, e.g. a BOS)."""
    return [list(tokenizer(t, add_special_tokens=add_special_tokens).input_ids) for t in texts]


def pad_left(token_lists: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Left-pad to the longest list: last positions line up, so position -1 is every row's last token."""
    if not token_lists or any(len(t) == 0 for t in token_lists):
        raise ConfigError("cannot batch an empty prompt list or a prompt with no tokens")
    width = max(len(t) for t in token_lists)
    tokens = torch.full((len(token_lists), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_lists), width), dtype=torch.long)
    for row, ids in enumerate(token_lists):
        tokens[row, width - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
        mask[row, width - len(ids) :] = 1
    return tokens, mask


def make_batches(
    token_lists: Sequence[Sequence[int]], batch_size: int, pad_id: int, *, sort: bool = True
) -> Iterator[Batch]:
    """Batches of left-padded prompts; sorted by length (longest first) to waste little padding."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    order = list(range(len(token_lists)))
    if sort:
        order.sort(key=lambda i: -len(token_lists[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        tokens, mask = pad_left([token_lists[i] for i in idx], pad_id)
        yield Batch(tokens, mask, tuple(idx))


def pad_id_of(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id
    return int(pad if pad is not None else 0)
