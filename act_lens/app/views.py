"""Interactive views for notebooks and files: attention patterns with their sinks (before and
after an intervention), the sink census, the selection curve and the flips table.

Each function returns a :class:`View`: Jupyter shows it inline (``_repr_html_``) and
``view.save("x.html")`` writes one HTML file that works offline from a ``file://`` URL (the
JavaScript, a small canvas/SVG renderer of act_lens's own, is inlined; nothing comes from a
CDN, so no extra package is needed).

Example:
    >>> from act_lens.app import views                                          # doctest: +SKIP
    >>> views.attention(model, prompt, layers=[9, 10], intervention=ActConfig(hs))  # doctest: +SKIP
    >>> views.census_view(census).save("census.html")                           # doctest: +SKIP
"""

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from act_lens.analysis.census import SinkCensus
from act_lens.analysis.patterns import AttentionPatterns, record_attention
from act_lens.app import html
from act_lens.app.view_payloads import (
    attention_payload,
    census_payload,
    curve_payload,
    flips_payload,
)
from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError
from act_lens.evaluation.evaluate import EvalResult
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.interventions import as_intervention
from act_lens.io import atomic_write_text


@dataclass(frozen=True)
class View:
    """One interactive figure: its kind (``attention``, ``census``, ``curve``, ``flips``) and
    the JSON the page's script draws it from."""

    kind: str
    payload: dict[str, Any] = field(repr=False)
    title: str = "act_lens view"

    def body(self) -> str:
        """The view's element, for pages that hold several views."""
        return html.view_div(self.kind, self.payload)

    def html(self) -> str:
        """A standalone offline page."""
        return html.document(self.title, self.body())

    def _repr_html_(self) -> str:
        return html.fragment(self.body())

    def save(self, path: "str | os.PathLike[str]") -> Path:
        """Write the standalone page to ``path`` (folders created); returns the path."""
        return atomic_write_text(path, self.html())


def attention(
    model: Any,
    prompt: str,
    *,
    layers: Iterable[int] | None = None,
    heads: Iterable[Any] | None = None,
    intervention: Any = None,
    settings: SinkSettings | None = None,
) -> View:
    """Per-head attention of one prompt: token strings on the axes, hover for query, key and
    weight, sink columns marked; with an intervention, before and after side by side, a
    before/after/change toggle and each sink's change of received attention.

    Args:
        model: a TransformerBridge.
        prompt: the text (tokenized as the evaluation does, BOS included).
        layers: layers to show (default: all, or the intervention's when neither is given).
        heads: head indices shown in each layer, or ``(layer, head)`` pairs / a ``HeadSet``
            (then without ``layers``). Default: every head; with neither ``layers`` nor
            ``heads``, an intervention with a ``head_set`` shows that set's heads.
        intervention: anything ``as_intervention`` takes (``ActConfig``, a ``HeadSet``, a hook
            list...).
        settings: the sink rule for the markers (default: the intervention's, else
            ``SinkSettings()``).

    Returns:
        A View.

    Raises:
        ConfigError: ``layers`` together with ``(layer, head)`` pairs, or nothing to show.
        HeadSetError: a head the model lacks.

    Example:
        >>> v = attention(model, "Review: fine.\\nSentiment:", layers=[2], heads=[0, 1])  # doctest: +SKIP
        >>> v.save("attention.html")                                                      # doctest: +SKIP
    """
    if intervention is not None:
        intervention = as_intervention(intervention)  # a HeadSet: its own intervention
    pairs = _pairs(model, layers, heads, intervention)
    if settings is None:
        settings = getattr(intervention, "settings", None)
    patterns = record_attention(model, prompt, pairs, intervention=intervention, settings=settings)
    return attention_view(patterns)


def attention_view(patterns: AttentionPatterns, *, title: str | None = None) -> View:
    """The attention view of recorded patterns (``record_attention``, or a saved file).

    Example:
        >>> attention_view(AttentionPatterns.load("example.json")).save("a.html")  # doctest: +SKIP
    """
    heading = title or f"Attention of {patterns.model}"
    return View("attention", attention_payload(patterns, title=heading), heading)


def census_view(census: SinkCensus) -> View:
    """Layer x head heatmaps of hidden-sink frequency and mass; hover for a head's numbers and
    its most frequent sink tokens.

    Example:
        >>> census_view(SinkCensus.load("census.json")).save("census.html")  # doctest: +SKIP
    """
    return View("census", census_payload(census), f"Sink census of {census.model}")


def selection_curve(head_set: HeadSet, *, title: str | None = None) -> View:
    """The joint selection's validation curve (set size -> metric), chosen size marked.

    Raises:
        DataError: the head set has no curve.

    Example:
        >>> selection_curve(HeadSet.load("head_set.json"))  # doctest: +SKIP
    """
    return View("curve", curve_payload(head_set, title=title), title or "Selection curve")


def flips(base: EvalResult, treated: EvalResult, **options: Any) -> View:
    """The examples whose prediction changed between two runs on the same examples: text
    (from ``prompts``, matched by uid), gold, both predictions and their probabilities among
    the choices; sortable and filterable.

    Args:
        base, treated: the two runs.
        **options: ``prompts`` (the examples' prompts, a sequence or ``{uid: prompt}``),
            ``base_name`` and ``treated_name`` (the columns' labels), as in
            :func:`act_lens.app.view_payloads.flips_payload`.

    Raises:
        ShapeError: the runs are not on the same examples.

    Example:
        >>> flips(base, treated, prompts=build_prompts(task, examples))  # doctest: +SKIP
    """
    return View("flips", flips_payload(base, treated, **options), f"Flips on {base.task}")


def page(views: Sequence[View], *, title: str = "act_lens views") -> str:
    """Several views on one standalone page."""
    return html.document(title, "\n".join(v.body() for v in views))


def _pairs(
    model: Any, layers: Iterable[int] | None, heads: Iterable[Any] | None, intervention: Any
) -> list[tuple[int, int]]:
    n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
    head_list = None if heads is None else list(heads)
    layer_list = None if layers is None else [int(la) for la in layers]
    if head_list is not None and head_list and not isinstance(head_list[0], int):
        if layer_list is not None:
            raise ConfigError(
                "attention(): pass layers with head indices, or (layer, head) pairs alone, not both"
            )
        pairs = [(int(la), int(h)) for la, h in head_list]
    elif head_list is None and layer_list is None and len(getattr(intervention, "head_set", ())):
        pairs = list(intervention.head_set)
    else:
        chosen = range(n_heads) if head_list is None else head_list
        pairs = [(la, int(h)) for la in layer_list or range(n_layers) for h in chosen]
    if not pairs:
        raise ConfigError("attention(): no heads to show; pass layers=..., heads=...")
    return sorted(set(pairs))
