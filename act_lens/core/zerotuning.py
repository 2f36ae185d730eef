"""Initial-token attention scaling (ZeroTuning, Han et al. 2025, arXiv 2505.11739).

In the selected heads the column of the first real token is multiplied by ``gamma`` and every
real query row is renormalised: with ``a`` the row's attention on the first token,

    A'[i, first] = gamma * a / (gamma * a + r),   A'[i, k] = A[i, k] / (gamma * a + r),

where ``r`` is the row's attention on the other real keys (``1 - a``; summed directly).

``gamma > 1`` strengthens the initial sink, ``gamma < 1`` weakens it, ``gamma = 1`` is the
identity; the other keys keep their ratios. Scaling by ``g1`` then ``g2`` equals scaling by
``g1 * g2`` (the renormalisations compose).
"""

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from act_lens.core.masks import first_real_onehot, heads_by_row, real_keys, real_queries
from act_lens.core.sinks import _check_pattern
from act_lens.errors import ConfigError


def scale_initial_attention(
    pattern: Float[Tensor, "batch head_index query_pos key_pos"],
    *,
    gamma: float,
    head_mask: Shaped[Tensor, "*batch head_index"] | None = None,
    attention_mask: Shaped[Tensor, "batch key_pos"] | None = None,
) -> Float[Tensor, "batch head_index query_pos key_pos"]:
    """Scale the attention to the first real token by ``gamma`` and renormalise each row.

    Args:
        pattern: post-softmax attention; the queries are the last ``query_pos`` key positions.
        gamma: the scale, >= 0 (1: identity; 0: the first token gets no attention, unless it
            is all a row sees, in which case the row is left unchanged).
        head_mask: heads to scale, ``[head_index]`` or ``[batch, head_index]``; None: all.
        attention_mask: 1 for real tokens, 0 for padding; pad rows and pad keys are untouched,
            and under left padding the first real token is the first 1 of each row.

    Returns:
        A new pattern in the input dtype; real rows still sum to 1.

    Raises:
        ConfigError: ``gamma`` < 0. ShapeError: masks that do not fit the pattern.

    Example:
        >>> p = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
        >>> scale_initial_attention(p, gamma=3.0)[0, 0, 1]
        tensor([0.7500, 0.2500])
    """
    _check_pattern(pattern)
    if not gamma >= 0:
        raise ConfigError(f"gamma must be >= 0, got {gamma}")
    batch, n_heads, n_q, n_k = pattern.shape
    valid = real_keys(attention_mask, batch, n_k, pattern.device)
    if gamma == 1.0:  # exactly the identity (renormalising by the row sum would round)
        return pattern.clone()
    first = first_real_onehot(valid)  # [batch, key]
    rows = real_queries(valid, n_q)[:, None, :].expand(batch, n_heads, n_q)
    if head_mask is not None:
        rows = rows & heads_by_row(head_mask, batch, n_heads, pattern.device)[..., None]
    p = pattern.to(torch.float32)
    a = torch.einsum("bhqk,bk->bhq", p, first.to(torch.float32))
    # The row's own mass off the first token, summed directly: 1 - a would cancel badly when
    # nearly all attention is on the first token (the usual case in late layers).
    rest = torch.einsum("bhqk,bk->bhq", p, (valid & ~first).to(torch.float32))
    denom = gamma * a + rest
    # A row whose only attention is on the first token has nothing to renormalise with at
    # gamma = 0 (denominator 0): it is left as it is, like a row ACT cannot calibrate.
    rows = rows & (denom > 1e-12)
    inv = torch.where(rows, 1.0 / denom.clamp(min=1e-12), torch.ones_like(denom))
    col = torch.where(rows, torch.full_like(a, gamma), torch.ones_like(a))
    scale = inv[..., None] * torch.where(
        first[:, None, None, :], col[..., None], torch.ones((), device=p.device)
    )
    return (p * scale).to(pattern.dtype)
