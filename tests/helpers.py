"""Test builders: valid causal attention patterns, planted sinks, padding like Hugging Face.

Every pattern is ``[batch, head_index, query_pos, key_pos]`` with the queries being the last
``query_pos`` key positions (prefill when ``query_pos == key_pos``, a decode step otherwise).
Real query rows are post-softmax distributions over the real keys they can see: pad keys get
exactly 0 weight. Pad query rows hold arbitrary values: Hugging Face's eager attention gives a
fully masked row a uniform distribution over every key, which is the default here.
"""

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

Side = Literal["left", "right"]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def visible(n_keys: int, n_queries: int | None = None, window: int | None = None) -> Tensor:
    """``[query_pos, key_pos]`` bool: query ``i`` sees key ``j`` iff ``0 <= i - j < window``."""
    n_queries = n_keys if n_queries is None else n_queries
    q_pos = torch.arange(n_keys - n_queries, n_keys)[:, None]
    k_pos = torch.arange(n_keys)[None, :]
    sees = q_pos >= k_pos
    if window is not None:
        sees = sees & (q_pos - k_pos < window)
    return sees


def valid_keys(attention_mask: Tensor | None, batch: int, n_keys: int) -> Tensor:
    """``[batch, key_pos]`` bool of real tokens (all True without a mask)."""
    if attention_mask is None:
        return torch.ones(batch, n_keys, dtype=torch.bool)
    return attention_mask.bool().expand(batch, n_keys)


def _finish(
    weights: Tensor, attention_mask: Tensor | None, dtype: torch.dtype, pad_fill: float | None
) -> Tensor:
    """Normalise the rows of non-negative ``weights`` and fill the pad query rows."""
    batch, _, n_q, n_k = weights.shape
    sums = weights.sum(-1, keepdim=True)
    pattern = weights / torch.where(sums > 0, sums, torch.ones_like(sums))
    real_q = valid_keys(attention_mask, batch, n_k)[:, n_k - n_q :]
    fill = 1.0 / n_k if pad_fill is None else pad_fill
    pattern = torch.where(real_q[:, None, :, None], pattern, torch.full_like(pattern, fill))
    return pattern.to(dtype)


def random_pattern(
    batch: int,
    heads: int,
    n: int,
    *,
    seed: int,
    dtype: torch.dtype = torch.float32,
    attention_mask: Tensor | None = None,
    n_queries: int | None = None,
    window: int | None = None,
    scale: float = 2.0,
    pad_fill: float | None = None,
) -> Tensor:
    """A softmax of random logits (``scale`` * standard normal) under the causal, padding and
    optional sliding-window masks; pad query rows are ``pad_fill`` (default: uniform)."""
    n_q = n if n_queries is None else n_queries
    logits = torch.randn(batch, heads, n_q, n, generator=_generator(seed), dtype=torch.float64)
    allowed = (
        visible(n, n_q, window)[None, None] & valid_keys(attention_mask, batch, n)[:, None, None, :]
    )
    weights = torch.where(allowed, torch.exp(scale * logits), torch.zeros_like(logits))
    return _finish(weights, attention_mask, dtype, pad_fill)


def planted_sink_pattern(
    batch: int,
    heads: int,
    n: int,
    *,
    seed: int,
    dtype: torch.dtype = torch.float32,
    sinks: Sequence[int] | None = None,
    sink_mass: float = 0.9,
    n_queries: int | None = None,
    noise: float = 0.3,
) -> Tensor:
    """An unpadded causal pattern with planted sink columns.

    In each query row the visible sink columns share ``sink_mass`` (all of it if the row sees
    nothing else) and the other visible keys share the rest; weights carry multiplicative
    noise ``exp(noise * z)``. With the default sinks ``(0, n // 2, n - 2)`` (the first token,
    a mid-sequence column and a column near the end), ``n >= 8`` and ``sink_mass = 0.9``, every
    sink scores above 0.25 and every other key below 0.05. Pad with ``left_pad``/``pad_batch``.
    """
    sinks = (0, n // 2, n - 2) if sinks is None else tuple(sinks)
    n_q = n if n_queries is None else n_queries
    z = torch.randn(batch, heads, n_q, n, generator=_generator(seed), dtype=torch.float64)
    sees = visible(n, n_q)[None, None]
    is_sink = torch.zeros(n, dtype=torch.bool)
    is_sink[list(sinks)] = True
    w = torch.where(sees, torch.exp(noise * z), torch.zeros_like(z))
    sink_w = w * is_sink
    other_w = w * ~is_sink
    s_sum = sink_w.sum(-1, keepdim=True)
    o_sum = other_w.sum(-1, keepdim=True)
    target = torch.where(o_sum == 0, 1.0, torch.where(s_sum == 0, 0.0, sink_mass))
    pattern = sink_w / s_sum.clamp(min=1e-300) * target + other_w / o_sum.clamp(min=1e-300) * (
        1 - target
    )
    return pattern.to(dtype)


def pad_batch(
    patterns: Sequence[Tensor],
    side: Side = "left",
    *,
    length: int | None = None,
    pad_fill: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Stack unpadded square patterns ``[head_index, n_b, n_b]`` of different lengths into one
    padded batch ``[batch, head_index, L, L]`` and its attention mask ``[batch, L]`` (int64).

    Real rows keep their values on the real keys and get exactly 0 on the pad keys; pad query
    rows are ``pad_fill`` (default: uniform over all ``L`` keys, as Hugging Face gives).
    """
    heads = patterns[0].shape[0]
    dtype = patterns[0].dtype
    total = max(p.shape[-1] for p in patterns) if length is None else length
    fill = 1.0 / total if pad_fill is None else pad_fill
    out = torch.full((len(patterns), heads, total, total), fill, dtype=torch.float64)
    mask = torch.zeros(len(patterns), total, dtype=torch.long)
    for b, p in enumerate(patterns):
        n = p.shape[-1]
        start = total - n if side == "left" else 0
        real = slice(start, start + n)
        out[b, :, real, :] = 0.0
        out[b, :, real, real] = p.to(torch.float64)
        mask[b, real] = 1
    return out.to(dtype), mask


def left_pad(
    pattern: Tensor, n_pad: int, *, pad_fill: float | None = None
) -> tuple[Tensor, Tensor]:
    """Embed an unpadded pattern (prefill ``[B, H, n, n]`` or decode ``[B, H, q, n]``) into a
    pattern left-padded by ``n_pad`` positions; returns ``(padded, attention_mask)``."""
    batch, heads, n_q, n = pattern.shape
    total = n + n_pad
    mask = torch.ones(batch, total, dtype=torch.long)
    mask[:, :n_pad] = 0
    if n_q == n:
        padded, _ = pad_batch(list(pattern), "left", length=total, pad_fill=pad_fill)
        return padded, mask
    # A decode step: every query row is real (the newest positions), only pad keys are added.
    padded = torch.zeros(batch, heads, n_q, total, dtype=pattern.dtype)
    padded[..., n_pad:] = pattern
    return padded, mask


def unpad(padded: Tensor, attention_mask: Tensor, b: int) -> Tensor:
    """The real block ``[head_index, n_b, n_b]`` of batch row ``b`` of a padded prefill pattern."""
    idx = attention_mask[b].bool().nonzero().flatten()
    return padded[b][:, idx][:, :, idx]


def byte_prompts(
    texts: Sequence[str],
    choices: tuple[str, ...] = ("x", "y", "z"),
    labels: Sequence[int] | None = None,
    prefix: str = "t",
):
    """``Prompt`` objects for the tiny model's byte tokenizer: one-byte choices with distinct
    first tokens (task label words like ``" negative"`` all start with the byte ``" "``);
    labels cycle through the choices unless given."""
    from act_lens.evaluation.tasks import Prompt

    labels = [i % len(choices) for i in range(len(texts))] if labels is None else labels
    return [
        Prompt(f"{prefix}:{i}", text, choices, int(label), text, choices, {})
        for i, (text, label) in enumerate(zip(texts, labels, strict=True))
    ]


def n_hooks(model) -> int:
    """Hooks currently registered on a bridge: TransformerLens hook points and block pre-hooks."""
    points = sum(
        len(hp._forward_hooks) + len(hp._backward_hooks) for hp in model.hook_dict.values()
    )
    return points + sum(len(block._forward_pre_hooks) for block in model.blocks)
