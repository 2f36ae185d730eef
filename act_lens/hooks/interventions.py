"""Interventions as one kind of object: composition, the factory a head set stands for, and a
``with`` block that applies any of them.

``ActConfig`` and ``ZeroTuningConfig`` are ``mask -> hooks`` factories; ``Compose(a, b)``
applies several in order. Hooks on one hook point run in list order, each seeing the previous
one's output, so the order means something:

* ``Compose(ActConfig(hs), ZeroTuningConfig(zt))``: ACT detects sinks on the raw pattern and
  re-balances them; ZeroTuning then scales the first-token column of the calibrated pattern.
* ``Compose(ZeroTuningConfig(zt), ActConfig(hs))``: ZeroTuning first; ACT then detects sinks on
  the rescaled pattern (every other column's mean attention changed with the renormalisation,
  so the sink set can differ) and calibrates that.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from act_lens.core.settings import Redistribute, SinkRule, SinkSettings
from act_lens.errors import ConfigError
from act_lens.hooks.act import ActConfig
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.spec import HookList
from act_lens.hooks.zerotuning import ZeroTuningConfig


@dataclass(frozen=True)
class Compose:
    """Several ``mask -> hooks`` factories applied in order (see the module docstring).

    Example:
        >>> both = Compose(ActConfig(HeadSet({4: [1]})), ZeroTuningConfig(HeadSet({9: [0]}), gamma=2.0))  # doctest: +SKIP
    """

    parts: tuple[Any, ...]

    def __init__(self, *parts: Any) -> None:
        if not parts:
            raise ConfigError("Compose needs at least one intervention")
        object.__setattr__(self, "parts", tuple(parts))

    def to_dict(self) -> dict[str, Any]:
        return {"compose": [p.to_dict() if hasattr(p, "to_dict") else "custom" for p in self.parts]}

    def for_model(self, model: Any) -> "Compose":
        return Compose(*(p.for_model(model) if hasattr(p, "for_model") else p for p in self.parts))

    def __call__(self, attention_mask: Tensor | None = None) -> HookList:
        out: HookList = []
        for part in self.parts:
            out += list(part(attention_mask)) if callable(part) else list(part)
        return out


def intervention_for(head_set: HeadSet, settings: SinkSettings | None = None) -> Any:
    """The hook factory a head set stands for: ``ActConfig`` or ``ZeroTuningConfig``.

    ``settings`` (default: method.md's) apply to ACT sets only.
    """
    if head_set.method == "zerotuning":
        return ZeroTuningConfig(head_set)
    return ActConfig(head_set, settings)


@contextmanager
def calibrated(
    model: Any,
    head_set: "HeadSet | Any",
    *,
    settings: SinkSettings | None = None,
    beta: float | None = None,
    threshold: float | None = None,
    rule: SinkRule | None = None,
    redistribute: Redistribute | None = None,
    allow_model_mismatch: bool = False,
) -> Iterator[Any]:
    """Apply ACT (or any intervention config) to ``model`` inside a ``with`` block; the hooks
    are always removed afterwards.

    ``head_set``: a HeadSet (ACT with ``settings``, default method.md's, and the keyword
    conveniences on top; a ``method="zerotuning"`` set gets its ZeroTuning hooks), or a
    config such as ``ActConfig``, ``ZeroTuningConfig`` or ``Compose``. For unpadded inputs (one prompt, or equal-length prompts); padded batches need
    the mask: use the config as ``evaluate(..., hooks=config)``.

    Example:
        >>> with calibrated(model, HeadSet({3: [1]})):    # doctest: +SKIP
        ...     logits = model(tokens)
    """
    if isinstance(head_set, HeadSet) and head_set.method == "act":
        config: Any = ActConfig(
            head_set,
            settings,
            beta=beta,
            threshold=threshold,
            rule=rule,
            redistribute=redistribute,
        )
    elif isinstance(head_set, HeadSet):
        config = intervention_for(head_set)
    else:
        config = head_set
    if hasattr(config, "head_set"):  # ActConfig, ZeroTuningConfig
        config = config.for_model(model, allow_model_mismatch=allow_model_mismatch)
    elif hasattr(config, "for_model"):
        config = config.for_model(model)
    with model.hooks(fwd_hooks=list(config(None))):
        yield model
