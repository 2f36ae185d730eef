"""Interventions as one kind of object: composition, what a head set stands for, the one
conversion every ``intervention=`` parameter goes through, and a ``with`` block.

``ActConfig``, ``ZeroTuningConfig``, ``Compose`` and ``Hooks`` (a plain hook list) implement the
:class:`~act_lens.hooks.spec.Intervention` protocol. ``Compose(a, b)`` applies several in
order. Hooks on one hook point run in list order, each seeing the previous one's output, so the
order means something:

* ``Compose(ActConfig(hs), ZeroTuningConfig(zt))``: ACT detects sinks on the raw pattern and
  re-balances them; ZeroTuning then scales the first-token column of the calibrated pattern.
* ``Compose(ZeroTuningConfig(zt), ActConfig(hs))``: ZeroTuning first; ACT then detects sinks on
  the rescaled pattern (every other column's mean attention changed with the renormalisation,
  so the sink set can differ) and calibrates that.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from act_lens.core.settings import SinkSettings, resolve_settings
from act_lens.errors import (
    ConfigError,
    HeadSetError,
    old_keywords,
    renamed_keyword,
    warn_deprecated,
)
from act_lens.hooks.act import ActConfig
from act_lens.hooks.headset import HeadSet, stored_settings
from act_lens.hooks.spec import HookFactory, HookList, Hooks, Intervention
from act_lens.hooks.zerotuning import ZeroTuningConfig


@dataclass(frozen=True)
class Compose:
    """Several interventions applied in order (see the module docstring).

    Each part is anything ``as_intervention`` takes (an ``ActConfig``, a ``HeadSet``, a hook
    list...).

    Example:
        >>> both = Compose(ActConfig(HeadSet({4: [1]})), ZeroTuningConfig(HeadSet({9: [0]}), gamma=2.0))
        >>> [name for name, _ in both.hooks()]
        ['blocks.4.attn.hook_pattern', 'blocks.9.attn.hook_pattern']
    """

    parts: tuple[Intervention, ...]

    def __init__(self, *parts: Any) -> None:
        if not parts:
            raise ConfigError("Compose needs at least one intervention")
        object.__setattr__(self, "parts", tuple(as_intervention(p) for p in parts))

    def to_dict(self) -> dict[str, Any]:
        return {"compose": [p.to_dict() for p in self.parts]}

    def for_model(self, model: Any, *, allow_model_mismatch: bool = False) -> "Compose":
        return Compose(
            *(p.for_model(model, allow_model_mismatch=allow_model_mismatch) for p in self.parts)
        )

    def hooks(
        self, attention_mask: Tensor | None = None, *, sink_queries: int | None = None
    ) -> HookList:
        out: HookList = []
        for part in self.parts:
            out += part.hooks(attention_mask, sink_queries=sink_queries)
        return out

    def __call__(self, attention_mask: Tensor | None = None) -> HookList:
        return self.hooks(attention_mask)


def searched_settings(head_set: HeadSet) -> SinkSettings:
    """The sink settings an ACT head set was searched with (``SinkSettings()`` defaults for
    the values it does not record).

    Raises:
        HeadSetError: a stored value that is not a valid setting.
    """
    stored = stored_settings(head_set)
    try:
        return SinkSettings(**stored)
    except (TypeError, ValueError) as err:
        raise HeadSetError(
            f"the head set's stored sink settings {stored} are not valid ({err}); pass "
            "settings=SinkSettings(...) to replace them"
        ) from err


def intervention_for(
    head_set: HeadSet, settings: SinkSettings | None = None, *, beta: float | None = None
) -> Intervention:
    """The intervention a saved head set stands for: the one place a head set becomes hooks.

    A ``method="zerotuning"`` set gives a ``ZeroTuningConfig`` (its gamma from ``params``);
    an ACT set gives an ``ActConfig`` with the sink settings it was searched with (recorded in
    its provenance; ``SinkSettings()`` for a hand-made set), which ``settings`` replaces and
    ``beta`` (a convenience) changes.

    Raises:
        ConfigError: ``settings`` or ``beta`` with a ZeroTuning set, or both given.
        HeadSetError: stored settings that are not valid.

    Example:
        >>> hs = HeadSet({3: [1]}, {"beta": 0.2})
        >>> intervention_for(hs).beta, intervention_for(hs, beta=0.5).beta
        (0.2, 0.5)
    """
    if head_set.method == "zerotuning":
        if settings is not None or beta is not None:
            raise ConfigError(
                "settings/beta are ACT settings, but this is a ZeroTuning head set "
                f"({dict(head_set.params)}); drop them"
            )
        return ZeroTuningConfig(head_set)
    if settings is not None and beta is not None:
        raise ConfigError(
            "intervention_for: beta given beside settings=; set it inside the SinkSettings"
        )
    if settings is None:
        settings = resolve_settings(searched_settings(head_set), beta=beta)
    return ActConfig(head_set, settings)


def as_intervention(value: Any) -> Intervention:
    """What every ``intervention=`` parameter does with its argument.

    ``None``: nothing (an empty hook list). An ``Intervention`` (``ActConfig``,
    ``ZeroTuningConfig``, ``Compose``, ``Hooks``): itself. A ``HeadSet``: ``intervention_for``.
    A function ``mask -> hooks`` (e.g. a ``SinkRecorder``): a ``HookFactory``. A list of
    ``(hook_name, fn)`` pairs: ``Hooks``.

    Raises:
        ConfigError: anything else.

    Example:
        >>> as_intervention(None).hooks()
        []
    """
    if value is None:
        return Hooks()
    if isinstance(value, HeadSet):
        return intervention_for(value)
    if isinstance(value, Intervention):
        return value
    if callable(value):
        return HookFactory(value)
    if isinstance(value, (list, tuple)):
        return Hooks(value)
    raise ConfigError(
        f"intervention must be an ActConfig, ZeroTuningConfig, Compose, HeadSet, a list of "
        f"(hook_name, fn) pairs or a function mask -> hooks, got {type(value).__name__}"
    )


# Keywords of earlier releases that configured a HeadSet given where an intervention goes.
OLD_SETTINGS_KEYWORDS = ("settings", "beta", "threshold", "rule", "redistribute")


def with_old_settings(
    where: str, intervention: Any, old: Mapping[str, Any], *, stacklevel: int = 4
) -> Any:
    """``intervention`` with the settings keywords of earlier releases applied (deprecated).

    ``calibrated(model, hs, beta=0.2)`` and ``generate(model, p, hs, threshold=...)`` keep
    working for one release, as they did: ACT on ``hs`` with those settings over the defaults.

    Raises:
        ConfigError: such keywords with anything but an ACT ``HeadSet`` (they were ignored).
    """
    given = {k: v for k, v in old.items() if k in OLD_SETTINGS_KEYWORDS and v is not None}
    if not given:
        return intervention
    shown = ", ".join(f"{k}=" for k in given)
    warn_deprecated(
        f"{where}(..., {shown})",
        f"{where}(..., ActConfig(head_set, settings))",
        stacklevel=stacklevel,
    )
    if not (isinstance(intervention, HeadSet) and intervention.method == "act"):
        raise ConfigError(
            f"{where}: {shown} configure an ACT HeadSet, but the intervention is a "
            f"{type(intervention).__name__}; set them in it (ActConfig(head_set, settings))"
        )
    settings = given.pop("settings", None)
    return ActConfig(intervention, resolve_settings(settings, **given))


@contextmanager
def calibrated(
    model: Any,
    intervention: Any = None,
    *,
    allow_model_mismatch: bool = False,
    **deprecated: Any,
) -> Iterator[Any]:
    """Apply an intervention to ``model`` inside a ``with`` block; the hooks are always removed
    afterwards.

    Args:
        model: a TransformerBridge.
        intervention: anything ``as_intervention`` takes: an ``ActConfig``,
            ``ZeroTuningConfig``, ``Compose``, hook list, or a ``HeadSet`` (its own method,
            with the sink settings it was searched with).
        allow_model_mismatch: apply a head set made for another model.

    For unpadded inputs (one prompt, or equal-length prompts); padded batches need the mask:
    pass the intervention to ``evaluate(..., intervention=...)``. The keywords ``settings``,
    ``beta``, ``threshold``, ``rule`` and ``redistribute`` of earlier releases still work for
    one release, with a DeprecationWarning (write ``ActConfig(head_set, settings)``), and so
    does ``head_set=`` (now ``intervention=``).

    Raises:
        HeadSetError: heads the model lacks, or a set made for another model.
        PatternNotEditableError: a model whose pattern hook does not change the logits.

    Example:
        >>> with calibrated(model, HeadSet({3: [1]})):    # doctest: +SKIP
        ...     logits = model(tokens)
    """
    old = old_keywords("calibrated", deprecated, (*OLD_SETTINGS_KEYWORDS, "head_set"))
    # stacklevel 5: the warnings point at the caller's ``with`` line, past contextlib
    intervention = renamed_keyword(
        "calibrated", "intervention", intervention, old, "head_set", stacklevel=5
    )
    intervention = with_old_settings("calibrated", intervention, old, stacklevel=5)
    applied = as_intervention(intervention).for_model(
        model, allow_model_mismatch=allow_model_mismatch
    )
    with model.hooks(fwd_hooks=applied.hooks(None)):
        yield model
