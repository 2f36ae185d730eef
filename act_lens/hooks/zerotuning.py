"""ZeroTuning (initial-token attention scaling) as TransformerLens hooks.

``ZeroTuningConfig(head_set, gamma=...)`` is an intervention like ``ActConfig``: pass it as
``intervention=`` to ``evaluate``, ``calibrated``, ``generate``, ``sink_census`` or the lm-eval
adapter, alone or in ``Compose`` (``act_lens.hooks.interventions``, where the order of composed
parts is explained).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from act_lens.core.zerotuning import scale_initial_attention
from act_lens.errors import ConfigError, HeadSetError, ShapeError
from act_lens.hooks.check import require_pattern_editable
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.names import pattern_hook
from act_lens.hooks.spec import HookList
from act_lens.hooks.strategies import AblationContext, Strategy


def zt_pattern_fn(
    heads: Sequence[int],
    *,
    gamma: float,
    attention_mask: Shaped[Tensor, "batch key_pos"] | None = None,
) -> Callable[..., Tensor]:
    """The hook function scaling the first-token attention of ``heads`` of one layer."""
    head_idx = torch.tensor(sorted(set(heads)), dtype=torch.long)

    def hook_fn(
        pattern: Float[Tensor, "batch head_index query_pos key_pos"], hook: Any = None
    ) -> Tensor:
        if attention_mask is not None and attention_mask.shape[-1] != pattern.shape[-1]:
            raise ShapeError(
                f"attention_mask covers {attention_mask.shape[-1]} positions but the pattern has "
                f"{pattern.shape[-1]} keys: build the hooks with the mask of this batch"
            )
        mask = torch.zeros(pattern.shape[1], dtype=torch.bool, device=pattern.device)
        mask[head_idx.to(pattern.device)] = True
        return scale_initial_attention(
            pattern, gamma=gamma, head_mask=mask, attention_mask=attention_mask
        )

    return hook_fn


@dataclass(frozen=True)
class ZeroTuningConfig:
    """Initial-token scaling on a head set: an :class:`~act_lens.hooks.spec.Intervention`.

    Args:
        head_set: the heads (a ``method="zerotuning"`` HeadSet carries its gamma in
            ``params``, which is used when ``gamma`` is None).
        gamma: the scale of the first real token's attention (> 1 strengthens it).

    Example:
        >>> cfg = ZeroTuningConfig(HeadSet({4: [1, 2]}), gamma=0.5)
        >>> [name for name, _ in cfg.hooks()]
        ['blocks.4.attn.hook_pattern']
    """

    head_set: HeadSet
    gamma: float | None = None

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ConfigError(f"gamma must be >= 0, got {self.value}")

    @property
    def value(self) -> float:
        """The gamma in use (the argument, else the head set's ``params["gamma"]``)."""
        gamma = self.gamma if self.gamma is not None else self.head_set.params.get("gamma")
        if gamma is None:
            raise HeadSetError(
                "ZeroTuningConfig needs gamma=..., or a head set found by "
                "act_lens.zerotuning_search (its params hold the chosen gamma)"
            )
        return float(gamma)

    def for_model(self, model: Any, *, allow_model_mismatch: bool = False) -> "ZeroTuningConfig":
        """Checked against ``model`` (pattern editable, heads in range, made for it)."""
        if len(self.head_set):
            require_pattern_editable(model)
        self.head_set.validate(model, allow_model_mismatch=allow_model_mismatch)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"method": "zerotuning", "head_set": self.head_set.to_dict(), "gamma": self.value}

    def hooks(
        self, attention_mask: Tensor | None = None, *, sink_queries: int | None = None
    ) -> HookList:
        """The hooks for one batch. ``sink_queries`` is ignored: the first token's attention is
        scaled in every row, generated rows included."""
        return [
            (pattern_hook(layer), zt_pattern_fn(self.head_set.heads[layer], gamma=self.value,
                                                attention_mask=attention_mask))
            for layer in self.head_set.layers
        ]  # fmt: skip

    def __call__(self, attention_mask: Tensor | None = None) -> HookList:
        return self.hooks(attention_mask)


class _ScaleInitial:
    """One head's first-token attention times ``gamma``, per batch row (a module-level class,
    not a closure, so that the strategy pickles by reference to Ray workers)."""

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma

    def __call__(self, x: Tensor, heads: Tensor, ctx: AblationContext) -> Tensor:
        rows = torch.arange(x.shape[0], device=x.device)
        mask = torch.zeros(x.shape[0], x.shape[1], dtype=torch.bool, device=x.device)
        mask[rows, heads] = True
        return scale_initial_attention(
            x, gamma=self.gamma, head_mask=mask, attention_mask=ctx.attention_mask
        )


def zerotuning_strategy(gamma: float) -> Strategy:
    """An engine strategy scaling one head's first-token attention by ``gamma`` (profiling)."""
    return Strategy(f"zerotuning(gamma={gamma:g})", "pattern", _ScaleInitial(gamma))
