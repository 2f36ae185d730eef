"""What a hook is here: TransformerLens's ``(hook_name, fn)`` pairs, lists of them, and the
``mask -> hooks`` factories that padding-aware interventions (ACT, the recorder) are.

Hooks on one hook point run in list order, each receiving the previous one's output, so a list
is composed by concatenation: ``[*act, *recorder, *user_hooks]``.
"""

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

Hook = tuple[str, Callable[..., Any]]
HookList = list[Hook]
# What scoring functions accept: a fixed hook list, or a factory called with each batch's
# attention mask (needed by hooks that must ignore padding, such as ACT).
HookSpec = Sequence[Hook] | Callable[[Tensor | None], Sequence[Hook]]


def resolve_hooks(hooks: "HookSpec | None", attention_mask: Tensor | None) -> HookList:
    """A concrete hook list for one batch from a list or a factory."""
    if hooks is None:
        return []
    if callable(hooks):
        return list(hooks(attention_mask))
    return list(hooks)
