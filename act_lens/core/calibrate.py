"""Attention calibration (ACT) of post-softmax patterns, exactly as docs/method.md states it.

For every real query row of a selected head, with ``m`` the row's mass on the sink columns:
sink columns are scaled by ``beta`` and the freed mass ``(1 - beta) * m`` goes to the other keys
in proportion to their attention (``redistribute="all"``, the official behaviour, the first token
included), or to the non-sink keys other than the first token (``"non_initial"``).
"""

import torch
from jaxtyping import Bool, Float, Shaped
from torch import Tensor

from act_lens.core.masks import first_real_onehot, heads_by_row, real_keys, real_queries
from act_lens.core.settings import Redistribute
from act_lens.core.sinks import _check_pattern
from act_lens.errors import ConfigError, ShapeError

_EPS = 1e-12


def calibrate_pattern(
    pattern: Float[Tensor, "batch head_index query_pos key_pos"],
    sink_mask: Bool[Tensor, "batch head_index key_pos"],
    *,
    beta: float = 0.4,
    head_mask: Shaped[Tensor, "*batch head_index"] | None = None,
    redistribute: Redistribute = "all",
    attention_mask: Shaped[Tensor, "batch key_pos"] | None = None,
    keep_first: bool = True,
    validate: bool = True,
) -> Float[Tensor, "batch head_index query_pos key_pos"]:
    """Scale sink columns by ``beta`` and give the freed mass to the other keys.

    Args:
        pattern: post-softmax attention; the queries are the last ``query_pos`` key positions.
        sink_mask: which keys are sinks, per batch row and head (e.g. from ``detect_sinks``).
        beta: sink scale in [0, 1]; 1 is the identity, 0 removes the sinks' attention.
        head_mask: heads to calibrate, ``[head_index]`` or ``[batch, head_index]``; None: all.
        redistribute: ``"all"`` (official) or ``"non_initial"`` (first token keeps its weight).
        attention_mask: 1 for real tokens, 0 for padding; pad rows and pad keys are untouched.
        keep_first: never calibrate the first real token even if ``sink_mask`` marks it.
        validate: check that every real query row is a distribution over the real keys (sums
            to 1 within a dtype-dependent tolerance, no NaN). The hooks, whose patterns come
            straight from a softmax, skip it: on a GPU the check waits for the device.

    Returns:
        A new pattern in the input dtype; rows still sum to 1. A row with no attention left
        outside the sinks (nothing to give the mass to) is returned unchanged.

    Raises:
        ConfigError: beta outside [0, 1] or an unknown redistribute mode.
        ShapeError: masks that do not fit the pattern, or (``validate``) a real row that does
            not sum to 1 or holds NaN.

    Example:
        >>> p = torch.tensor([[[[1.0, 0, 0], [0.2, 0.8, 0], [0.2, 0.6, 0.2]]]])
        >>> s = torch.tensor([[[False, True, False]]])
        >>> calibrate_pattern(p, s, beta=0.5)[0, 0, 2]
        tensor([0.3500, 0.3000, 0.3500])
    """
    _check_inputs(pattern, sink_mask, beta, redistribute)
    batch, n_heads, n_q, n_k = pattern.shape
    valid = real_keys(attention_mask, batch, n_k, pattern.device)
    first = first_real_onehot(valid)[:, None, :]
    sinks = sink_mask.to(device=pattern.device).bool() & valid[:, None, :]
    if keep_first:
        sinks = sinks & ~first
    if head_mask is not None:
        sinks = sinks & heads_by_row(head_mask, batch, n_heads, pattern.device)[..., None]

    p = pattern.to(torch.float32)
    # Everything below is per (batch, head, key) or per row; only three passes touch the full
    # [batch, head, query, key] tensor (two reductions and the final scaling), for speed.
    sinks_f = sinks.to(torch.float32)
    if redistribute == "all":
        receivers = ~sinks & valid[:, None, :]
    else:
        receivers = ~sinks & ~first & valid[:, None, :]
    sink_mass = torch.einsum("bhqk,bhk->bhq", p, sinks_f)
    receiver_mass = torch.einsum("bhqk,bhk->bhq", p, receivers.to(torch.float32))
    if validate:
        # Sinks and receivers cover every real key except, with "non_initial", a first token
        # that is not a sink: the row sums come almost free from the two reductions above.
        rows = sink_mass + receiver_mass
        if redistribute != "all":
            first_col = first.to(torch.float32) * (~sinks).to(torch.float32)
            rows = rows + torch.einsum("bhqk,bhk->bhq", p, first_col)
        _check_rows(rows, real_queries(valid, n_q), pattern.dtype)
    changed = (sink_mass > 0) & (receiver_mass > _EPS) & real_queries(valid, n_q)[:, None, :]
    scale = _scale(sinks, receivers, sink_mass, receiver_mass, changed, beta)
    return (p * scale).to(pattern.dtype)


def _scale(
    sinks: Bool[Tensor, "batch head_index key_pos"],
    receivers: Bool[Tensor, "batch head_index key_pos"],
    sink_mass: Float[Tensor, "batch head_index query_pos"],
    receiver_mass: Float[Tensor, "batch head_index query_pos"],
    changed: Bool[Tensor, "batch head_index query_pos"],
    beta: float,
) -> Float[Tensor, "batch head_index query_pos key_pos"]:
    """The factor each weight is multiplied by: beta on sinks, the growth on receivers."""
    # Receivers grow by the freed mass (1 - beta) * m in proportion to their attention:
    # factor 1 + freed / r. With "all" and r = 1 - m this is (1 - beta*m) / (1 - m) of docs/method.md.
    factor = 1.0 + (1.0 - beta) * sink_mass / receiver_mass.clamp(min=_EPS)
    # A row that is not changed gets factor 1 and sink scale 1: it is returned exactly.
    factor = torch.where(changed, factor, torch.ones_like(factor))
    sink_scale = torch.where(changed, torch.full_like(factor, beta), torch.ones_like(factor))
    one = torch.ones((), device=factor.device)
    return torch.where(
        sinks[:, :, None, :],
        sink_scale[..., None],
        torch.where(receivers[:, :, None, :], factor[..., None], one),
    )


def _check_inputs(pattern: Tensor, sink_mask: Tensor, beta: float, redistribute: str) -> None:
    """Refuse a beta, mode or sink mask that does not fit (ConfigError, ShapeError)."""
    _check_pattern(pattern)
    if not 0.0 <= beta <= 1.0:
        raise ConfigError(f"beta must be in [0, 1], got {beta}")
    if redistribute not in ("all", "non_initial"):
        raise ConfigError(f"redistribute must be 'all' or 'non_initial', got {redistribute!r}")
    batch, n_heads, _, n_k = pattern.shape
    if sink_mask.shape != (batch, n_heads, n_k):
        raise ShapeError(
            f"sink_mask has shape {tuple(sink_mask.shape)}; expected {(batch, n_heads, n_k)} "
            "[batch, head_index, key_pos] matching the pattern"
        )


def _check_rows(
    rows: Float[Tensor, "batch head_index query_pos"],
    real: Bool[Tensor, "batch query_pos"],
    dtype: torch.dtype,
) -> None:
    """Refuse rows that are not attention distributions (ShapeError naming the first one)."""
    # 16-bit patterns round each weight to about 3 significant digits.
    tol = 1e-3 if torch.finfo(dtype).bits >= 32 else 2e-2
    bad = ~((rows - 1.0).abs() <= tol) & real[:, None, :]  # NaN compares False: bad
    if not bool(bad.any()):
        return
    b, h, q = (int(i) for i in bad.nonzero()[0])
    value = float(rows[b, h, q])
    what = "holds NaN" if value != value else f"sums to {value:.4g} over the real keys"
    raise ShapeError(
        f"pattern row (batch {b}, head {h}, query {q}) {what}, not 1 (tolerance {tol}): "
        "calibrate_pattern takes post-softmax attention (hook_pattern) with 0 on pad keys; "
        "pass the attention_mask of a padded batch, or validate=False to skip this check"
    )
