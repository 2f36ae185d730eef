"""Sink scores and sink detection on post-softmax attention patterns (docs/method.md).

The sink score of key ``j`` is the mean attention it receives from the real queries that can
see it: under a causal mask those are the queries ``i >= j`` (and ``i < j + window`` in a
sliding-window layer). Pad queries and pad keys never count. A query that cannot see a key
(outside its window) counts neither in that key's sum nor in its count; see
``act_lens.hooks.arch``.
"""

import torch
from jaxtyping import Bool, Float, Shaped
from torch import Tensor

from act_lens.core.masks import first_real_onehot, first_real_position, real_keys, real_queries
from act_lens.core.settings import SinkRule
from act_lens.errors import ConfigError, ShapeError


def _check_pattern(pattern: Tensor) -> None:
    if pattern.ndim != 4:
        raise ShapeError(
            f"pattern has shape {tuple(pattern.shape)}; expected 4 dims "
            "[batch, head_index, query_pos, key_pos] (what blocks.{l}.attn.hook_pattern gives)"
        )
    if not pattern.is_floating_point():
        raise ShapeError(f"pattern must be a float tensor, got {pattern.dtype}")


def visible_query_counts(
    valid: Bool[Tensor, "batch key_pos"], n_queries: int, window: int | None = None
) -> Float[Tensor, "batch key_pos"]:
    """For each key ``j``, how many real queries ``i`` (among the last ``n_queries``) can see it."""
    n_keys = valid.shape[-1]
    offset = n_keys - n_queries
    q_pos = torch.arange(offset, n_keys, device=valid.device)[:, None]
    k_pos = torch.arange(n_keys, device=valid.device)[None, :]
    sees = q_pos >= k_pos
    if window is not None:
        sees = sees & (q_pos - k_pos < window)
    q_valid = real_queries(valid, n_queries).to(torch.float32)
    return torch.einsum("bq,qk->bk", q_valid, sees.to(torch.float32))


def sink_scores(
    pattern: Float[Tensor, "batch head_index query_pos key_pos"],
    attention_mask: Shaped[Tensor, "batch key_pos"] | None = None,
    *,
    window: int | None = None,
) -> Float[Tensor, "batch head_index key_pos"]:
    """Mean attention each key receives from the real queries that can see it.

    Args:
        pattern: post-softmax attention; the queries are the last ``query_pos`` key positions.
        attention_mask: 1 for real tokens, 0 for padding (left or right); None: all real.
        window: sliding-window size of the layer (a query ``i`` sees keys ``i-window < j <= i``).

    Returns:
        float32 scores; pad keys and keys no real query can see score 0.

    Example:
        >>> p = torch.tensor([[[[1.0, 0, 0], [0.5, 0.5, 0], [0.6, 0.2, 0.2]]]])
        >>> sink_scores(p)[0, 0]
        tensor([0.7000, 0.3500, 0.2000])
    """
    _check_pattern(pattern)
    batch, _, n_q, n_k = pattern.shape
    valid = real_keys(attention_mask, batch, n_k, pattern.device)
    q_valid = real_queries(valid, n_q).to(torch.float32)
    # Pad query rows hold arbitrary values (a fully masked softmax row); drop them from the sum.
    totals = torch.einsum("bhqk,bq->bhk", pattern.to(torch.float32), q_valid)
    counts = visible_query_counts(valid, n_q, window)
    scores = totals / counts.clamp(min=1.0)[:, None, :]
    return torch.where((valid & (counts > 0))[:, None, :], scores, torch.zeros_like(scores))


def detect_sinks(
    pattern: Float[Tensor, "batch head_index query_pos key_pos"],
    *,
    threshold: float = 0.1,
    rule: SinkRule = "mean",
    attention_mask: Shaped[Tensor, "batch key_pos"] | None = None,
    keep_first: bool = True,
    window: int | None = None,
) -> Bool[Tensor, "batch head_index key_pos"]:
    """Mark sink keys: ``score > threshold`` (``rule="mean"``) or ``score > threshold / N``
    (``rule="alpha"``, N = number of real tokens of the row).

    Args:
        pattern: post-softmax attention ``[batch, head_index, query_pos, key_pos]``.
        threshold: tau for ``"mean"`` (official 0.1), alpha for ``"alpha"`` (about 5).
        rule: ``"mean"`` or ``"alpha"``.
        attention_mask: 1 for real tokens, 0 for padding.
        keep_first: never mark the first real token (the initial sink ACT keeps).
        window: sliding-window size of the layer, if any.

    Returns:
        Boolean sink mask; pad keys are never sinks.

    Raises:
        ConfigError: unknown rule or a non-positive threshold.

    Example:
        >>> p = torch.tensor([[[[1.0, 0, 0], [0.5, 0.5, 0], [0.6, 0.3, 0.1]]]])
        >>> detect_sinks(p, threshold=0.3)[0, 0]
        tensor([False,  True, False])
    """
    if rule not in ("mean", "alpha"):
        raise ConfigError(f"rule must be 'mean' or 'alpha', got {rule!r}")
    if not threshold > 0:
        raise ConfigError(f"threshold must be > 0, got {threshold}")
    scores = sink_scores(pattern, attention_mask, window=window)
    batch, _, _, n_k = pattern.shape
    valid = real_keys(attention_mask, batch, n_k, pattern.device)
    if rule == "mean":
        limit = torch.full((batch, 1, 1), float(threshold), device=pattern.device)
    else:
        n_real = valid.sum(-1).clamp(min=1).to(torch.float32)
        limit = (threshold / n_real)[:, None, None]
    sinks = (scores > limit) & valid[:, None, :]
    if keep_first:
        # The initial sink (BOS or the first real token) is what the model relies on; ACT
        # only re-balances the later ("hidden") sinks.
        sinks = sinks & ~first_real_onehot(valid)[:, None, :]
    return sinks


def head_statistics(
    pattern: Float[Tensor, "batch head_index query_pos key_pos"],
    hidden_sinks: Bool[Tensor, "batch head_index key_pos"],
    attention_mask: Shaped[Tensor, "batch key_pos"] | None = None,
    *,
    window: int | None = None,
) -> tuple[
    Float[Tensor, "batch head_index"],
    Float[Tensor, "batch head_index"],
    Float[Tensor, "batch head_index"],
]:
    """Per head, averaged over real query rows: attention mass on the first real token, mass on
    the hidden sinks, and the row entropy (nats).

    ``window``: sliding-window size of the layer. The first-token mass then averages only over
    the rows that can see the first real token (``act_lens.hooks.arch`` has the definition).

    Returns:
        ``(first_mass, hidden_mass, entropy)``, float32.
    """
    _check_pattern(pattern)
    batch, _, n_q, n_k = pattern.shape
    valid = real_keys(attention_mask, batch, n_k, pattern.device)
    q_valid = real_queries(valid, n_q).to(torch.float32)
    n_rows = q_valid.sum(-1).clamp(min=1.0)[:, None]
    p = pattern.to(torch.float32)
    first_hot = first_real_onehot(valid)
    first = first_hot.to(torch.float32)
    first_rows = torch.einsum("bhqk,bk->bhq", p, first)
    hidden_rows = torch.einsum(
        "bhqk,bhk->bhq", p, hidden_sinks.to(device=p.device, dtype=torch.float32)
    )
    entropy_rows = -(p * torch.log(p.clamp(min=1e-30))).sum(-1)

    def row_mean(rows: Tensor) -> Tensor:
        return torch.einsum("bhq,bq->bh", rows, q_valid) / n_rows

    first_mass = row_mean(first_rows)
    if window is not None:
        # Rows past the window cannot see the first token: they would add structural zeros.
        q_pos = torch.arange(n_k - n_q, n_k, device=pattern.device)[None, :]
        sees_first = (q_pos - first_real_position(valid)[:, None] < window).to(
            torch.float32
        ) * q_valid
        first_mass = (
            torch.einsum("bhq,bq->bh", first_rows, sees_first)
            / sees_first.sum(-1).clamp(min=1.0)[:, None]
        )
    return first_mass, row_mean(hidden_rows), row_mean(entropy_rows)
