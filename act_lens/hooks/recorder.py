"""Record sink statistics through ``hook_pattern`` without keeping full patterns.

Each pattern is reduced inside its hook to per-head sink scores and a few statistics; only
patterns asked for (named layers/heads, a query window) are kept, so memory does not grow
with layers x heads x N^2.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from act_lens.core.masks import first_real_onehot, real_keys
from act_lens.core.settings import SinkSettings, settings_from
from act_lens.core.sinks import detect_sinks, head_statistics, sink_scores
from act_lens.errors import old_keywords
from act_lens.hooks.names import is_pattern_hook, layer_of, pattern_hook
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
        layers: layers to record (None: every layer the model has, through one hook filter).
        settings: the sink rule (``threshold``, ``rule``) and the sliding-window size per layer
            (``windows``, for models with local attention layers; layers not in it are global);
            default: ``SinkSettings()``, every layer global.
        keep_patterns: ``{layer: heads or None}`` whose full patterns are kept (None heads: all).
        query_window: keep only these query rows of kept patterns (e.g. ``slice(-16, None)``).

    ``threshold=``, ``rule=`` and ``windows=`` of earlier releases still work for one release,
    with a DeprecationWarning (write ``settings=SinkSettings(...)``).

    Example:
        >>> rec = SinkRecorder(layers=[0, 1])
        >>> logits = model.run_with_hooks(tokens, fwd_hooks=rec.hooks())   # doctest: +SKIP
        >>> rec.records[1][0].first_mass.shape                              # doctest: +SKIP
        torch.Size([1, 9])
    """

    layers: Sequence[int] | None
    settings: SinkSettings
    keep_patterns: Mapping[int, Sequence[int] | None]
    query_window: slice | None
    records: dict[int, list[LayerRecord]]

    def __init__(
        self,
        layers: Sequence[int] | None = None,
        settings: SinkSettings | None = None,
        *,
        keep_patterns: Mapping[int, Sequence[int] | None] | None = None,
        query_window: slice | None = None,
        **deprecated: Any,
    ) -> None:
        loose = old_keywords("SinkRecorder", deprecated, ("threshold", "rule", "windows"))
        self.layers = None if layers is None else tuple(layers)
        self.settings = settings_from(settings, loose=loose, where="SinkRecorder")
        self.keep_patterns = keep_patterns if keep_patterns is not None else {}
        self.query_window = query_window
        self.records = {}

    def hooks(self, attention_mask: Tensor | None = None) -> HookList:
        """``(hook_name, fn)`` pairs for one batch (pass its mask when padded); registers nothing."""
        if self.layers is None:  # one filter matching every layer's pattern hook
            return [(is_pattern_hook, self._hook_fn(attention_mask))]
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
        window = self.settings.window(layer)
        scores = sink_scores(pattern, attention_mask, window=window)
        sinks = detect_sinks(
            pattern,
            threshold=self.settings.threshold,
            rule=self.settings.rule,
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
