"""What a hook is here, and what an intervention is.

A hook is TransformerLens's ``(hook_name, fn)`` pair. Hooks on one hook point run in list order,
each receiving the previous one's output, so a list is composed by concatenation:
``[*act, *recorder, *user_hooks]``.

An :class:`Intervention` is what to apply to a model, in one shape for every kind: ``ActConfig``,
``ZeroTuningConfig``, ``Compose`` and a plain hook list (:class:`Hooks`). It is what
``evaluate``, ``generate``, ``calibrated``, ``sink_census`` and the lm-eval adapter take as
``intervention=`` (``act_lens.hooks.interventions.as_intervention`` turns a ``HeadSet``, a hook
list or a ``mask -> hooks`` function into one).
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from act_lens.errors import ConfigError

# A hook point's name, or a filter on names (TransformerLens takes both).
Hook = tuple[str | Callable[[str], bool], Callable[..., Any]]
HookList = list[Hook]
# What the scoring functions accept: a fixed hook list, or a factory called with each batch's
# attention mask (every Intervention is such a factory).
HookSpec = Sequence[Hook] | Callable[[Tensor | None], Sequence[Hook]]


@runtime_checkable
class Intervention(Protocol):
    """What to apply to a model: hooks for each batch, checked against the model first.

    * ``for_model(model, *, allow_model_mismatch=False)``: the same intervention checked
      against ``model`` (pattern editable, heads in range, made for this model) with the
      model's facts filled in (sliding windows). Every function that takes an intervention
      calls it; raises ``HeadSetError`` or ``PatternNotEditableError``.
    * ``hooks(attention_mask=None, *, sink_queries=None)``: the ``(hook_name, fn)`` pairs for
      one batch, registering nothing. ``attention_mask``: the batch's mask when it is padded.
      ``sink_queries``: the decode-step policy of ``generate`` (ACT detects sinks on the first
      ``sink_queries`` query rows; interventions without sinks ignore it).
    * ``to_dict()``: what was applied, as JSON (results files, lm-eval's model info).
    * ``intervention(mask)`` is ``intervention.hooks(mask)``: an intervention is also the
      ``mask -> hooks`` factory the batched scoring functions take.

    Example:
        >>> isinstance(Hooks([]), Intervention)
        True
    """

    def for_model(self, model: Any, *, allow_model_mismatch: bool = False) -> "Intervention": ...

    def hooks(
        self, attention_mask: Tensor | None = None, *, sink_queries: int | None = None
    ) -> HookList: ...

    def to_dict(self) -> dict[str, Any]: ...

    def __call__(self, attention_mask: Tensor | None = None) -> HookList: ...


@dataclass(frozen=True)
class Hooks:
    """A plain list of ``(hook_name, fn)`` pairs as an intervention: the same pairs for every
    batch (they never see the attention mask; a hook that must ignore padding needs a
    ``mask -> hooks`` function, see :class:`HookFactory`).

    Example:
        >>> steer = Hooks([("blocks.1.hook_resid_pre", lambda resid, hook: resid)])
        >>> [name for name, _ in steer.hooks()]
        ['blocks.1.hook_resid_pre']
    """

    pairs: tuple[Hook, ...] = ()

    def __init__(self, pairs: Iterable[Hook] = ()) -> None:
        pairs = tuple(pairs)
        for pair in pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2 and callable(pair[1])):
                raise ConfigError(
                    f"a hook is a (hook_name, fn) pair, got {pair!r}; "
                    "e.g. ('blocks.3.attn.hook_pattern', fn)"
                )
        object.__setattr__(self, "pairs", pairs)

    def for_model(self, model: Any, *, allow_model_mismatch: bool = False) -> "Hooks":
        return self

    def hooks(
        self, attention_mask: Tensor | None = None, *, sink_queries: int | None = None
    ) -> HookList:
        return list(self.pairs)

    def __call__(self, attention_mask: Tensor | None = None) -> HookList:
        return self.hooks(attention_mask)

    def __len__(self) -> int:
        return len(self.pairs)

    def to_dict(self) -> dict[str, Any]:
        return {"hooks": [name if isinstance(name, str) else "filter" for name, _ in self.pairs]}


@dataclass(frozen=True)
class HookFactory:
    """A function ``mask -> hooks`` (a ``SinkRecorder``, your own padding-aware hooks) as an
    intervention: called with each batch's attention mask.

    Example:
        >>> HookFactory(lambda mask: []).hooks(None)
        []
    """

    fn: Callable[[Tensor | None], Sequence[Hook]]

    def for_model(self, model: Any, *, allow_model_mismatch: bool = False) -> "HookFactory":
        return self

    def hooks(
        self, attention_mask: Tensor | None = None, *, sink_queries: int | None = None
    ) -> HookList:
        return list(self.fn(attention_mask))

    def __call__(self, attention_mask: Tensor | None = None) -> HookList:
        return self.hooks(attention_mask)

    def to_dict(self) -> dict[str, Any]:
        return {"hooks": getattr(self.fn, "__name__", type(self.fn).__name__)}


def resolve_hooks(hooks: "HookSpec | None", attention_mask: Tensor | None) -> HookList:
    """A concrete hook list for one batch from a list or a factory."""
    if hooks is None:
        return []
    if callable(hooks):
        return list(hooks(attention_mask))
    return list(hooks)
