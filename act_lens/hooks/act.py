"""ACT as TransformerLens hooks: ``(hook_name, fn)`` pairs that register nothing.

Composition is list concatenation. Hooks on the same hook point run in list order, each
receiving the previous one's output: ``[*act_hooks(...), *recorder.hooks()]`` lets the recorder
see calibrated patterns; the other order records the raw ones.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from act_lens.core.calibrate import Redistribute, calibrate_pattern
from act_lens.core.settings import SinkSettings
from act_lens.core.sinks import SinkRule, detect_sinks
from act_lens.errors import ShapeError
from act_lens.hooks.arch import layer_windows
from act_lens.hooks.check import require_pattern_editable
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.names import pattern_hook
from act_lens.hooks.spec import HookList


@dataclass(frozen=True)
class ActConfig:
    """ACT settings; calling it with an attention mask gives the hooks for that batch.

    ``windows``: ``{layer: sliding-window size}`` of the model's local layers
    (``act_lens.hooks.arch.layer_windows(model)``); None or missing layers: global attention.

    Example:
        >>> cfg = ActConfig(HeadSet({2: [0, 3]}), beta=0.4)
        >>> [name for name, _ in cfg(None)]
        ['blocks.2.attn.hook_pattern']
    """

    head_set: HeadSet
    beta: float = 0.4
    threshold: float = 0.1
    rule: SinkRule = "mean"
    redistribute: Redistribute = "all"
    windows: Mapping[int, int] | None = None

    def __post_init__(self) -> None:
        _ = self.settings  # validates the values (SinkSettings raises ConfigError)

    @property
    def settings(self) -> SinkSettings:
        """The sink settings of this config (everything but the head set)."""
        return SinkSettings(self.beta, self.threshold, self.rule, self.redistribute, self.windows)

    @classmethod
    def from_settings(cls, head_set: HeadSet, settings: SinkSettings) -> "ActConfig":
        return cls(
            head_set,
            settings.beta,
            settings.threshold,
            settings.rule,
            settings.redistribute,
            settings.windows,
        )

    def for_model(self, model: Any, *, allow_model_mismatch: bool = False) -> "ActConfig":
        """Checked against ``model`` (pattern editable, heads in range, made for it), with the
        model's sliding windows filled in when not given. ``evaluate`` calls this itself."""
        from dataclasses import replace

        if len(self.head_set):
            require_pattern_editable(model)
        self.head_set.validate(model, allow_model_mismatch=allow_model_mismatch)
        return self if self.windows is not None else replace(self, windows=layer_windows(model))

    def __call__(self, attention_mask: Tensor | None = None) -> HookList:
        return act_hooks(
            self.head_set,
            beta=self.beta,
            threshold=self.threshold,
            rule=self.rule,
            attention_mask=attention_mask,
            redistribute=self.redistribute,
            windows=self.windows,
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            "head_set": self.head_set.to_dict(),
            "beta": self.beta,
            "threshold": self.threshold,
            "rule": self.rule,
            "redistribute": self.redistribute,
        }
        if self.windows:
            out["windows"] = {str(k): int(v) for k, v in self.windows.items()}
        return out


def act_pattern_fn(
    heads: Sequence[int],
    *,
    beta: float = 0.4,
    threshold: float = 0.1,
    rule: SinkRule = "mean",
    attention_mask: Shaped[Tensor, "batch key_pos"] | None = None,
    redistribute: Redistribute = "all",
    sink_queries: int | None = None,
    window: int | None = None,
) -> Callable[..., Tensor]:
    """The hook function calibrating ``heads`` of one layer's pattern.

    ``sink_queries``: detect sinks from the first ``sink_queries`` query rows only (the prompt,
    in generation); None uses every row. Calibration applies to every row either way.
    """
    head_idx = torch.tensor(sorted(set(heads)), dtype=torch.long)

    def hook_fn(
        pattern: Float[Tensor, "batch head_index query_pos key_pos"], hook: Any = None
    ) -> Tensor:
        if pattern.ndim != 4:
            name = getattr(hook, "name", "hook")
            raise ShapeError(
                f"{name}: expected a [batch, head, query, key] pattern, got {tuple(pattern.shape)}"
            )
        idx = head_idx.to(pattern.device)
        every_head = len(idx) == pattern.shape[1]
        sub = pattern if every_head else pattern.index_select(1, idx)
        mask = attention_mask
        if mask is not None and mask.shape[-1] != pattern.shape[-1]:
            raise ShapeError(
                f"attention_mask covers {mask.shape[-1]} positions but the pattern has "
                f"{pattern.shape[-1]} keys: build the hooks with the mask of this batch"
            )
        detect_on = sub
        detect_mask = mask
        if sink_queries is not None and sink_queries < sub.shape[-2]:
            # Sinks come from the prompt rows and columns only (decode-step policy).
            detect_on = sub[:, :, :sink_queries, :sink_queries]
            detect_mask = None if mask is None else mask[:, :sink_queries]
        sinks = detect_sinks(
            detect_on, threshold=threshold, rule=rule, attention_mask=detect_mask, window=window
        )
        if sinks.shape[-1] < sub.shape[-1]:
            pad = sinks.new_zeros(*sinks.shape[:-1], sub.shape[-1] - sinks.shape[-1])
            sinks = torch.cat([sinks, pad], dim=-1)
        calibrated = calibrate_pattern(
            sub, sinks, beta=beta, attention_mask=mask, redistribute=redistribute
        )
        return calibrated if every_head else pattern.index_copy(1, idx, calibrated)

    return hook_fn


def act_hooks(
    head_set: HeadSet,
    *,
    beta: float = 0.4,
    threshold: float = 0.1,
    rule: SinkRule = "mean",
    attention_mask: Shaped[Tensor, "batch key_pos"] | None = None,
    redistribute: Redistribute = "all",
    sink_queries: int | None = None,
    windows: Mapping[int, int] | None = None,
) -> HookList:
    """``(hook_name, fn)`` pairs that apply ACT to the heads of ``head_set``.

    Sinks are detected on every input (per batch row); only the chosen heads are calibrated.
    Nothing is registered: pass the list to ``model.run_with_hooks(fwd_hooks=...)`` or
    ``with model.hooks(fwd_hooks=...)``.

    Args:
        head_set: the heads to calibrate.
        beta, threshold, rule, redistribute: as in ``calibrate_pattern``/``detect_sinks``.
        attention_mask: the batch's mask when it is padded (pad rows/keys are then ignored).
        sink_queries: detect sinks on the first ``sink_queries`` rows only (generation policy).
        windows: ``{layer: sliding-window size}`` for local-attention layers
            (``act_lens.hooks.arch.layer_windows(model)``); sink scores there count only the queries
            that can see each key. None: every layer is global.

    Example:
        >>> hooks = act_hooks(HeadSet({3: [1, 4]}), beta=0.4)
        >>> hooks[0][0]
        'blocks.3.attn.hook_pattern'
    """
    if not isinstance(head_set, HeadSet):
        head_set = HeadSet(head_set)
    ActConfig(head_set, beta, threshold, rule, redistribute, windows)  # validates the settings
    windows = windows or {}
    return [
        (
            pattern_hook(layer),
            act_pattern_fn(
                head_set.heads[layer],
                beta=beta,
                threshold=threshold,
                rule=rule,
                attention_mask=attention_mask,
                redistribute=redistribute,
                sink_queries=sink_queries,
                window=windows.get(layer),
            ),
        )
        for layer in head_set.layers
    ]
