"""Per-head ablation strategies: small functions ``(x, heads, ctx) -> new x``.

``x`` is one layer's activation at the strategy's hook point for a batch of rows (``pattern``:
``[rows, head_index, query_pos, key_pos]``; ``z``: ``[rows, pos, head_index, d_head]``), and
``heads[r]`` is the head to ablate in row ``r``. A strategy never mutates ``x``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor

from act_lens.core.calibrate import calibrate_pattern
from act_lens.core.settings import SettingsView, SinkSettings
from act_lens.core.sinks import detect_sinks
from act_lens.errors import ConfigError


@dataclass(frozen=True)
class AblationContext(SettingsView):
    """What a strategy may use besides the activation.

    ``beta``, ``threshold``, ``rule``, ``redistribute`` and ``window`` (this layer's sliding
    window, None: global attention) read ``settings``.
    """

    layer: int
    attention_mask: Tensor | None  # [rows, key_pos]
    settings: SinkSettings = field(default_factory=SinkSettings)
    head_means: Tensor | None = None  # [head_index, d_head] mean z of this layer (mean_head)

    @property
    def window(self) -> int | None:
        return self.settings.window(self.layer)


StrategyFn = Callable[[Tensor, Tensor, AblationContext], Tensor]


@dataclass(frozen=True)
class Strategy:
    """A named ablation applied at ``blocks.{l}.attn.hook_{point}``."""

    name: str
    point: Literal["pattern", "z"]
    fn: StrategyFn
    needs_head_means: bool = False


def _rows(x: Tensor) -> Tensor:
    return torch.arange(x.shape[0], device=x.device)


def act_strategy(x: Tensor, heads: Tensor, ctx: AblationContext) -> Tensor:
    """Calibrate the hidden sinks of ``heads[r]`` in row ``r`` (ACT on one head)."""
    rows = _rows(x)
    one = x[rows, heads][:, None]  # [rows, 1, q, k]: only the ablated head is touched
    sinks = detect_sinks(
        one,
        threshold=ctx.threshold,
        rule=ctx.rule,
        attention_mask=ctx.attention_mask,
        window=ctx.window,
    )
    calibrated = calibrate_pattern(
        one,
        sinks,
        beta=ctx.beta,
        attention_mask=ctx.attention_mask,
        redistribute=ctx.redistribute,
        validate=False,  # the model's own softmax output, in the search's hot loop
    )
    out = x.clone()
    out[rows, heads] = calibrated[:, 0]
    return out


def zero_sinks_strategy(x: Tensor, heads: Tensor, ctx: AblationContext) -> Tensor:
    """ACT with ``beta=0``: the head's hidden sinks get no attention at all."""
    return act_strategy(x, heads, replace(ctx, settings=replace(ctx.settings, beta=0.0)))


def head_off_strategy(x: Tensor, heads: Tensor, ctx: AblationContext) -> Tensor:
    """Zero the head's output (its pattern set to 0, so ``z = pattern @ v = 0``)."""
    out = x.clone()
    out[_rows(x), heads] = 0.0
    return out


def mean_head_strategy(x: Tensor, heads: Tensor, ctx: AblationContext) -> Tensor:
    """Replace the head's ``z`` at every position by its mean over the prompt set."""
    if ctx.head_means is None:
        raise ConfigError("mean_head needs the per-head mean z over the prompt set")
    out = x.clone()
    # The means may live on the CPU (head_effects_naive sums them there): index them on x's device.
    means = ctx.head_means.to(device=x.device, dtype=x.dtype)[heads]  # [rows, d_head]
    out[_rows(x), :, heads] = means[:, None, :].expand(-1, x.shape[1], -1)
    return out


STRATEGIES: dict[str, Strategy] = {
    "act": Strategy("act", "pattern", act_strategy),
    "zero_sinks": Strategy("zero_sinks", "pattern", zero_sinks_strategy),
    "head_off": Strategy("head_off", "pattern", head_off_strategy),
    "mean_head": Strategy("mean_head", "z", mean_head_strategy, needs_head_means=True),
}


def get_strategy(strategy: "str | Strategy") -> Strategy:
    if isinstance(strategy, Strategy):
        return strategy
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"unknown strategy {strategy!r}; use one of {sorted(STRATEGIES)} or pass a Strategy"
        )
    return STRATEGIES[strategy]
