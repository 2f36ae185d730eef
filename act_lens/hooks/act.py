"""ACT as TransformerLens hooks: ``(hook_name, fn)`` pairs that register nothing, and
``ActConfig``, ACT as an intervention.

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

from act_lens.core.calibrate import calibrate_pattern
from act_lens.core.settings import (
    LOOSE_KEYWORDS,
    SettingsView,
    SinkSettings,
    settings_from,
)
from act_lens.core.sinks import detect_sinks
from act_lens.errors import HeadSetError, ShapeError, old_keywords, warn_deprecated
from act_lens.hooks.arch import fill_windows
from act_lens.hooks.check import require_pattern_editable
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.names import pattern_hook
from act_lens.hooks.spec import HookList


@dataclass(frozen=True)
class ActConfig(SettingsView):
    """ACT on a head set with one ``SinkSettings``: an :class:`~act_lens.hooks.spec.Intervention`.

    Args:
        head_set: the heads to calibrate.
        settings: how sinks are found and calibrated (default: ``SinkSettings()``; its
            ``windows`` are filled in from the model by :meth:`for_model`).
        beta: convenience for ``settings=SinkSettings(beta=...)``; not together with
            ``settings``.

    Raises:
        ConfigError: ``beta`` beside ``settings``, or a setting out of range.

    ``threshold=``, ``rule=``, ``redistribute=`` and ``windows=`` of earlier releases still
    work for one release, with a DeprecationWarning (write ``settings=SinkSettings(...)``).

    Example:
        >>> cfg = ActConfig(HeadSet({2: [0, 3]}), beta=0.4)
        >>> [name for name, _ in cfg.hooks()]
        ['blocks.2.attn.hook_pattern']
    """

    head_set: HeadSet
    settings: SinkSettings

    def __init__(
        self,
        head_set: HeadSet,
        settings: SinkSettings | None = None,
        *,
        beta: float | None = None,
        **deprecated: Any,
    ) -> None:
        loose = old_keywords("ActConfig", deprecated, LOOSE_KEYWORDS)
        object.__setattr__(self, "head_set", head_set)
        object.__setattr__(
            self, "settings", settings_from(settings, beta=beta, loose=loose, where="ActConfig")
        )

    # beta, threshold, rule, redistribute: SettingsView; windows under its own name too.
    @property
    def windows(self) -> Mapping[int, int] | None:
        return self.settings.windows

    @classmethod
    def from_settings(cls, head_set: HeadSet, settings: SinkSettings) -> "ActConfig":
        """Deprecated: the constructor, ``ActConfig(head_set, settings)``."""
        warn_deprecated(
            "ActConfig.from_settings(head_set, settings)", "ActConfig(head_set, settings)"
        )
        return cls(head_set, settings)

    def for_model(self, model: Any, *, allow_model_mismatch: bool = False) -> "ActConfig":
        """Checked against ``model`` (pattern editable, heads in range, made for it), with the
        model's sliding windows filled in when not given."""
        if len(self.head_set):
            require_pattern_editable(model)
        self.head_set.validate(model, allow_model_mismatch=allow_model_mismatch)
        filled = fill_windows(self.settings, model)
        return self if filled is self.settings else ActConfig(self.head_set, filled)

    def hooks(
        self, attention_mask: Tensor | None = None, *, sink_queries: int | None = None
    ) -> HookList:
        """The ACT hooks for one batch (``sink_queries``: sinks from the first rows only)."""
        return act_hooks(
            self.head_set, self.settings, attention_mask=attention_mask, sink_queries=sink_queries
        )

    def __call__(self, attention_mask: Tensor | None = None) -> HookList:
        return self.hooks(attention_mask)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "method": "act",
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
    settings: SinkSettings | None = None,
    *,
    beta: float | None = None,
    attention_mask: Shaped[Tensor, "batch key_pos"] | None = None,
    sink_queries: int | None = None,
    window: int | None = None,
    **deprecated: Any,
) -> Callable[..., Tensor]:
    """The hook function calibrating ``heads`` of one layer's pattern with ``settings``
    (``beta``: convenience for ``settings=SinkSettings(beta=...)``, not beside it).

    ``window``: this layer's sliding-window size (None: global attention). ``sink_queries``:
    detect sinks from the first ``sink_queries`` query rows only (the prompt, in generation);
    None uses every row. Calibration applies to every row either way. ``threshold=``,
    ``rule=``, ``redistribute=`` of earlier releases still apply, with a DeprecationWarning.
    """
    loose = old_keywords("act_pattern_fn", deprecated, ("threshold", "rule", "redistribute"))
    s = settings_from(settings, beta=beta, loose=loose, where="act_pattern_fn")
    head_idx = torch.tensor(sorted(set(heads)), dtype=torch.long)
    if len(head_idx) and int(head_idx.min()) < 0:
        raise HeadSetError(f"head numbers must be >= 0, got {sorted(set(heads))}")
    top = int(head_idx.max()) if len(head_idx) else -1

    def hook_fn(
        pattern: Float[Tensor, "batch head_index query_pos key_pos"], hook: Any = None
    ) -> Tensor:
        if pattern.ndim != 4:
            name = getattr(hook, "name", "hook")
            raise ShapeError(
                f"{name}: expected a [batch, head, query, key] pattern, got {tuple(pattern.shape)}"
            )
        if top >= pattern.shape[1]:
            name = getattr(hook, "name", "hook")
            raise HeadSetError(
                f"{name}: head {top} is out of range, this layer has {pattern.shape[1]} heads "
                f"(0..{pattern.shape[1] - 1}); was the head set made for another model?"
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
            detect_on, threshold=s.threshold, rule=s.rule, attention_mask=detect_mask, window=window
        )
        if sinks.shape[-1] < sub.shape[-1]:
            pad = sinks.new_zeros(*sinks.shape[:-1], sub.shape[-1] - sinks.shape[-1])
            sinks = torch.cat([sinks, pad], dim=-1)
        calibrated = calibrate_pattern(
            sub,
            sinks,
            beta=s.beta,
            attention_mask=mask,
            redistribute=s.redistribute,
            validate=False,  # the model's own softmax output, on every forward
        )
        return calibrated if every_head else pattern.index_copy(1, idx, calibrated)

    return hook_fn


def act_hooks(
    head_set: HeadSet,
    settings: SinkSettings | None = None,
    *,
    beta: float | None = None,
    attention_mask: Shaped[Tensor, "batch key_pos"] | None = None,
    sink_queries: int | None = None,
    model: Any = None,
    **deprecated: Any,
) -> HookList:
    """``(hook_name, fn)`` pairs that apply ACT to the heads of ``head_set``.

    Sinks are detected on every input (per batch row); only the chosen heads are calibrated.
    Nothing is registered: pass the list to ``model.run_with_hooks(fwd_hooks=...)`` or
    ``with model.hooks(fwd_hooks=...)``.

    Args:
        head_set: the heads to calibrate.
        settings: how sinks are found and calibrated (default: ``SinkSettings()``). Its
            ``windows`` (``{layer: sliding-window size}`` of local-attention layers,
            ``act_lens.hooks.arch.layer_windows(model)``) make sink scores there count only
            the queries that can see each key; None: every layer is global.
        beta: convenience for ``settings=SinkSettings(beta=...)``; not together with
            ``settings``.
        attention_mask: the batch's mask when it is padded (pad rows/keys are then ignored).
        sink_queries: detect sinks on the first ``sink_queries`` rows only (generation policy).
        model: when given, every layer and head is checked against it here. Without it, a
            head out of range is a HeadSetError at the first forward, and a layer the model
            lacks is TransformerLens's ``KeyError`` there (the hook never runs).

    Raises:
        HeadSetError: with ``model``, a layer or head the model does not have.
        ConfigError: a setting out of range (SinkSettings), or ``beta`` beside ``settings``.

    ``threshold=``, ``rule=``, ``redistribute=``, ``windows=``: as in ``ActConfig``
    (deprecated, still applied).

    Example:
        >>> hooks = act_hooks(HeadSet({3: [1, 4]}), beta=0.4)
        >>> hooks[0][0]
        'blocks.3.attn.hook_pattern'
    """
    if not isinstance(head_set, HeadSet):
        head_set = HeadSet(head_set)
    if model is not None:
        n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
        for layer, head in head_set:
            if layer >= n_layers or head >= n_heads:
                raise HeadSetError(
                    f"act_hooks: head ({layer}, {head}) is out of range for this model "
                    f"({n_layers} layers x {n_heads} heads); was the head set made for another "
                    "model?"
                )
    loose = old_keywords("act_hooks", deprecated, LOOSE_KEYWORDS)
    settings = settings_from(settings, beta=beta, loose=loose, where="act_hooks")
    return [
        (
            pattern_hook(layer),
            act_pattern_fn(
                head_set.heads[layer],
                settings,
                attention_mask=attention_mask,
                sink_queries=sink_queries,
                window=settings.window(layer),
            ),
        )
        for layer in head_set.layers
    ]
