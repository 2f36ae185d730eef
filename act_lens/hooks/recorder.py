"""Record sink statistics through ``hook_pattern`` without keeping full patterns.

Each pattern is reduced inside its hook to per-head sink scores and a few statistics; only
patterns asked for (named layers/heads, a query window) are kept, so memory does not grow
with layers x heads x N^2.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from act_lens.core.masks import first_real_onehot, real_keys
from act_lens.core.sinks import SinkRule, detect_sinks, head_statistics, sink_scores
from act_lens.hooks.names import layer_of, pattern_hook
from act_lens.hooks.spec import HookList


@dataclass
class LayerRecord:
    """What one forward left for one layer (tensors on the CPU)."""

    layer: int
    scores: Tensor  # [batch, head_index, key_pos] sink scores
    sinks: (
        Tensor  # [batch, head_index, key_pos] bool, first real token included when above threshold
    )
    first_mass: Tensor  # [batch, head_index]
    hidden_mass: Tensor  # [batch, head_index]
    entropy: Tensor  # [batch, head_index]
    pattern: Tensor | None = None  # kept pattern [batch, kept heads, query window, key_pos]


@dataclass
class SinkRecorder:
    """Hooks that reduce each ``hook_pattern`` to sink statistics, plus the store they fill.

    Args:
        layers: layers to record (None: every layer the model has, resolved at hook time).
        threshold, rule: the sink rule (as ``detect_sinks``).
        keep_patterns: ``{layer: heads or None}`` whose full patterns are kept (None heads: all).
        query_window: keep only these query rows of kept patterns (e.g. ``slice(-16, None)``).
        windows: sliding-window size per layer, for models with local attention layers
            (``act_lens.hooks.arch.layer_windows(model)``; layers not in it are global).

    Example:
        >>> rec = SinkRecorder(layers=[0, 1])
        >>> logits = model.run_with_hooks(tokens, fwd_hooks=rec.hooks())   # doctest: +SKIP
        >>> rec.records[1][0].first_mass.shape                              # doctest: +SKIP
        torch.Size([1, 9])
    """

    layers: Sequence[int]
    threshold: float = 0.1
    rule: SinkRule = "mean"
    keep_patterns: Mapping[int, Sequence[int] | None] = field(default_factory=dict)
    query_window: slice | None = None
    windows: Mapping[int, int] = field(default_factory=dict)
    records: dict[int, list[LayerRecord]] = field(default_factory=dict)

    def hooks(self, attention_mask: Tensor | None = None) -> HookList:
        """``(hook_name, fn)`` pairs for one batch (pass its mask when padded); registers nothing."""
        return [(pattern_hook(layer), self._hook_fn(attention_mask)) for layer in self.layers]

    __call__ = hooks

    def clear(self) -> None:
        self.records.clear()

    def _hook_fn(self, attention_mask: Tensor | None) -> Any:
        def record(pattern: Tensor, hook: Any) -> Tensor:
            layer = layer_of(hook.name)
            with torch.no_grad():
                self.records.setdefault(layer, []).append(
                    self._reduce(layer, pattern.detach(), attention_mask)
                )
            return pattern

        return record

    def _reduce(self, layer: int, pattern: Tensor, attention_mask: Tensor | None) -> LayerRecord:
        window = self.windows.get(layer)
        scores = sink_scores(pattern, attention_mask, window=window)
        sinks = detect_sinks(
            pattern,
            threshold=self.threshold,
            rule=self.rule,
            attention_mask=attention_mask,
            keep_first=False,
            window=window,
        )
        valid = real_keys(attention_mask, pattern.shape[0], pattern.shape[-1], pattern.device)
        hidden = sinks & ~first_real_onehot(valid)[:, None, :]
        first_mass, hidden_mass, entropy = head_statistics(
            pattern, hidden, attention_mask, window=window
        )
        kept = None
        if layer in self.keep_patterns:
            heads = self.keep_patterns[layer]
            kept = pattern if heads is None else pattern[:, list(heads)]
            if self.query_window is not None:
                kept = kept[:, :, self.query_window]
            kept = kept.to(torch.float32).cpu().clone()
        return LayerRecord(
            layer,
            scores.cpu(),
            sinks.cpu(),
            first_mass.cpu(),
            hidden_mass.cpu(),
            entropy.cpu(),
            kept,
        )
