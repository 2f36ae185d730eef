"""SearchResult: what ``search_heads`` returns: the head set, the single-head effects, the
validation curve and the time each stage took."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from act_lens.analysis.effects import HeadEffects
from act_lens.errors import warn_deprecated
from act_lens.hooks.headset import HeadSet

# Stages of a search, in order, as keys of ``SearchResult.timings`` (seconds); ``workers``
# only where the search started or joined Ray actors.
STAGES = ("workers", "screen", "effects", "curve", "total")


@dataclass(frozen=True)
class SearchResult:
    """The outcome of one head search.

    Attributes:
        head_set: the chosen heads (possibly none), with the provenance of every decision
            (keep-rule, settings, per-head scores, ``decision``).
        effects: every evaluated head's single-head effects on the ranking prompts (NaN where
            a head was screened out or eliminated).
        curve: the joint rule's validation curve, one row per set size (0 = no heads);
            empty for the other rules.
        timings: seconds per stage: ``workers`` (starting Ray and the actors' model loads;
            only with workers), ``screen``, ``effects``, ``curve`` and ``total``.

    Until the next release, the head set's attributes (``heads``, ``save``, ``summary``,
    ``provenance``...), ``len``, iteration and ``in`` also work on the result itself, with a
    DeprecationWarning naming ``.head_set``: ``search_heads`` returned the HeadSet before.

    Example:
        >>> result = search_heads(model, calib)             # doctest: +SKIP
        >>> result.head_set.save("head_set.json")           # doctest: +SKIP
        >>> result.effects.top(5), result.timings["total"]  # doctest: +SKIP
    """

    head_set: HeadSet
    effects: HeadEffects
    curve: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # Only called for names the result lacks; dataclass fields and dunders never forward
        # (copy and pickle look up dunders before the fields exist).
        if name.startswith("__") or name in ("head_set", "effects", "curve", "timings"):
            raise AttributeError(name)
        if not hasattr(HeadSet, name) and name not in ("heads", "provenance", "method", "params"):
            raise AttributeError(f"'SearchResult' object has no attribute {name!r}")
        _deprecated(name)
        return getattr(self.head_set, name)

    def __len__(self) -> int:
        _deprecated("__len__", "len(result.head_set)")
        return len(self.head_set)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        _deprecated("__iter__", "iter(result.head_set)")
        return iter(self.head_set)

    def __contains__(self, item: object) -> bool:
        _deprecated("__contains__", "... in result.head_set")
        return item in self.head_set


def _deprecated(name: str, new: str | None = None) -> None:
    warn_deprecated(
        f"search_heads(...).{name} (the result as a HeadSet)",
        new or f"search_heads(...).head_set.{name}",
        stacklevel=4,
    )
