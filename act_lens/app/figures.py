"""Figures from saved results: attention maps with sinks marked, sink census summaries,
per-head ablation effects and evaluation comparisons.

Every function takes result objects (never a model), builds a ``matplotlib.figure.Figure``
directly (no pyplot, so no backend is chosen and nothing global changes) and optionally saves
it as a PNG.
"""

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

from act_lens.analysis.census import SinkCensus
from act_lens.analysis.effects import RENAMED, HeadEffects
from act_lens.errors import ConfigError, DataError
from act_lens.hooks.headset import HeadSet

PathLike = str | os.PathLike[str]
FIRST_COLOR, HIDDEN_COLOR = "tab:red", "tab:orange"
DPI = 150


def plot_attention_map(census: SinkCensus, layer: int, *, path: PathLike | None = None) -> Figure:
    """Head-averaged attention map of the census example prompt at one layer, sinks marked.

    Columns that are a sink in any head of the layer get a marker above the map: a red
    triangle for the first token, orange for hidden sinks.

    Args:
        census: a SinkCensus recorded with an example prompt.
        layer: model layer number (one of ``census.layers``).
        path: where to save a PNG (optional).

    Returns:
        The figure.

    Example:
        >>> census = SinkCensus.load("census.json")          # doctest: +SKIP
        >>> plot_attention_map(census, 10, path="map.png")    # doctest: +SKIP
    """
    tokens = _example_tokens(census)
    n = len(tokens)
    side = min(max(3.0 + 0.12 * n, 4.5), 14.0)
    fig = Figure(figsize=(side + 1.0, side))
    ax = fig.add_subplot()
    im = _draw_map(ax, census, layer)
    # Tick labels shrink with the prompt so long prompts stay legible without overlapping.
    size = max(3.0, min(8.0, 420.0 / max(n, 1)))
    labels = [_token_label(t) for t in tokens]
    ax.set_xticks(range(n), labels, rotation=90, fontsize=size)
    ax.set_yticks(range(n), labels, fontsize=size)
    ax.set_xlabel("key token")
    ax.set_ylabel("query token")
    ax.set_title(f"{census.model}: layer {layer}, mean over heads", pad=18)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="attention")
    return _finish(fig, path)


def plot_attention_grid(
    census: SinkCensus, *, layers: Sequence[int] | None = None, path: PathLike | None = None
) -> Figure:
    """Head-averaged attention maps of the census example for several layers, sinks marked.

    Args:
        census: a SinkCensus recorded with an example prompt.
        layers: model layers to show (default: up to 8 spread over the recorded depth).
        path: where to save a PNG (optional).

    Returns:
        The figure (one panel per layer, titled ``layer l``).

    Example:
        >>> plot_attention_grid(census, layers=[0, 4, 8, 12])   # doctest: +SKIP
    """
    _example_tokens(census)
    if layers is None:
        idx = np.unique(np.linspace(0, len(census.layers) - 1, min(8, len(census.layers))).round())
        layers = [census.layers[int(i)] for i in idx]
    if not layers:
        raise ConfigError(
            "plot_attention_grid needs at least one layer; pass layers=None for a default"
        )
    cols = min(4, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig = Figure(figsize=(3.2 * cols, 3.3 * rows))
    for k, layer in enumerate(layers):
        ax = fig.add_subplot(rows, cols, k + 1)
        _draw_map(ax, census, layer)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"layer {layer}", pad=12, fontsize=10)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncols=2, fontsize=8, frameon=False)
    fig.suptitle(f"{census.model}: attention maps (mean over heads)")
    return _finish(fig, path)


def plot_sink_frequency(census: SinkCensus, *, path: PathLike | None = None) -> Figure:
    """Layer x head heatmap of how often each head has a hidden sink.

    Args:
        census: a SinkCensus.
        path: where to save a PNG (optional).

    Returns:
        The figure; ``fig.axes[0].images[0]`` holds ``census.hidden_sink_freq``.
    """
    freq = census.hidden_sink_freq.detach().cpu().numpy()
    fig = Figure(figsize=(min(max(3.0 + 0.22 * freq.shape[1], 5.0), 12.0), 5.0))
    ax = fig.add_subplot()
    im = ax.imshow(freq, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    _layer_head_axes(ax, census.layers, range(freq.shape[1]))
    ax.set_title(f"{census.model}: hidden-sink frequency ({census.n_prompts} prompts)")
    fig.colorbar(im, ax=ax, label="fraction of prompts with a hidden sink")
    return _finish(fig, path)


def plot_token_classes(census: SinkCensus, *, path: PathLike | None = None) -> Figure:
    """Hidden-sink counts per token class and, when recorded, the most frequent sink tokens.

    Args:
        census: a SinkCensus.
        path: where to save a PNG (optional).

    Returns:
        The figure: panel 0 per-class counts (the ``first`` class excluded), panel 1 (if
        ``census.top_tokens``) the top 15 hidden-sink tokens.
    """
    totals = census.class_totals(hidden_only=True)
    top = list(census.top_tokens[:15])
    fig = Figure(figsize=(11.0 if top else 6.0, 4.5))
    ax = fig.add_subplot(1, 2 if top else 1, 1)
    ax.bar(list(totals), list(totals.values()), color="tab:blue")
    ax.tick_params(axis="x", rotation=35, labelsize=8)
    ax.set_ylabel("hidden sinks (head x prompt x position)")
    ax.set_title("hidden sinks by token class")
    if top:
        ax2 = fig.add_subplot(1, 2, 2)
        # Horizontal bars, most frequent on top, so token texts read left to right.
        ax2.barh(range(len(top)), [c for _, c in top], color="tab:orange")
        ax2.set_yticks(range(len(top)), [_token_label(t) for t, _ in top], fontsize=8)
        ax2.invert_yaxis()
        ax2.set_xlabel("count")
        ax2.set_title(f"top {len(top)} hidden-sink tokens")
    fig.suptitle(census.model)
    return _finish(fig, path)


def plot_mass_by_layer(census: SinkCensus, *, path: PathLike | None = None) -> Figure:
    """Mean (over heads) attention on the first token and on hidden sinks, per layer.

    Args:
        census: a SinkCensus.
        path: where to save a PNG (optional).

    Returns:
        The figure, with two lines labelled ``first token`` and ``hidden sinks``.
    """
    fig = Figure(figsize=(6.5, 4.0))
    ax = fig.add_subplot()
    x = list(census.layers)
    ax.plot(
        x, census.first_mass.mean(1).tolist(), "o-", color=FIRST_COLOR, label="first token", ms=3
    )
    ax.plot(
        x, census.hidden_mass.mean(1).tolist(), "s-", color=HIDDEN_COLOR, label="hidden sinks", ms=3
    )
    ax.set_xlabel("layer")
    ax.set_ylabel("mean attention mass")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{census.model}: attention on sinks by layer")
    return _finish(fig, path)


def plot_head_effects(
    effects: HeadEffects, *, metric: str = "choice_logprob", path: PathLike | None = None
) -> Figure:
    """Diverging layer x head heatmap (centred at 0) of the change when each head is ablated.

    Args:
        effects: a HeadEffects sweep.
        metric: one of ``effects.effects`` (``choice_logprob``, ``vocab_logprob``, ``margin``,
            ``accuracy``); the old name ``gold_logprob`` means ``vocab_logprob``.
        path: where to save a PNG (optional).

    Returns:
        The figure; ``fig.axes[0].images[0]`` holds ``effects.effects[metric]``.

    Example:
        >>> plot_head_effects(HeadEffects.load("effects.pt"), metric="margin")  # doctest: +SKIP
    """
    metric = RENAMED.get(metric, metric)
    if metric not in effects.effects:
        raise ConfigError(f"unknown metric {metric!r}; this sweep has {sorted(effects.effects)}")
    values = effects.effects[metric].detach().cpu().numpy()
    # Symmetric limits put 0 at the neutral colour whatever the sign of the effects.
    lim = float(np.abs(values).max()) or 1e-9
    fig = Figure(figsize=(min(max(3.0 + 0.22 * values.shape[1], 5.0), 12.0), 5.0))
    ax = fig.add_subplot()
    im = ax.imshow(
        values, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest"
    )
    _layer_head_axes(ax, effects.layers, effects.heads)
    ax.set_title(f"ablating one head ({effects.strategy}): change in {metric}")
    fig.colorbar(im, ax=ax, label=f"{metric} (ablated - clean)")
    return _finish(fig, path)


def plot_selection_curve(head_set: HeadSet, *, path: PathLike | None = None) -> Figure:
    """The joint selection's validation curve: set size -> validation metric, chosen size marked.

    Args:
        head_set: a HeadSet found with ``select="joint"`` (its provenance holds the curve).
        path: where to save a PNG (optional).

    Returns:
        The figure; ``fig.axes[0].lines[0]`` is the curve (x = sizes, y = metric means).

    Raises:
        DataError: the head set has no curve (another keep-rule, or made by hand).

    Example:
        >>> plot_selection_curve(HeadSet.load("head_set.json"), path="curve.png")  # doctest: +SKIP
    """
    prov = head_set.provenance
    curve, metric = prov.get("curve"), str(prov.get("metric", "choice_logprob"))
    if not curve:
        raise DataError(
            "this head set has no validation curve (it was not found with select='joint')"
        )
    sizes = np.array([r["size"] for r in curve])
    mean = np.array([r[metric] for r in curve])
    err = np.array([r.get("stderr", 0.0) for r in curve])
    fig = Figure(figsize=(6.5, 4.0))
    ax = fig.add_subplot()
    ax.plot(sizes, mean, "o-", ms=3, color="tab:blue", label=f"validation {metric}")
    ax.fill_between(sizes, mean - err, mean + err, color="tab:blue", alpha=0.15, lw=0)
    ax.axhline(mean[0], color="tab:gray", ls="--", lw=1, label="no heads (baseline)")
    chosen = int(prov.get("selected_size", 0))
    ax.axvline(chosen, color="tab:green", lw=1.5, label=f"chosen size {chosen}")
    ax.set_xlabel("heads applied together (in order of single-head gain)")
    ax.set_ylabel(f"mean {metric} (validation)")
    n = (prov.get("validation_set") or {}).get("n", "?")
    ax.set_title(f"joint selection on {n} validation prompts")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_halving_rounds(head_set: HeadSet, *, path: PathLike | None = None) -> Figure:
    """Successive halving: heads still in the race and prompts seen, per round.

    Args:
        head_set: a HeadSet searched with ``schedule="halving"``.
        path: where to save a PNG (optional).

    Raises:
        DataError: the head set has no rounds.

    Example:
        >>> plot_halving_rounds(HeadSet.load("head_set.json"))   # doctest: +SKIP
    """
    rounds = head_set.provenance.get("rounds")
    if not rounds:
        raise DataError("this head set has no halving rounds (searched with schedule='exhaustive')")
    x = np.arange(1, len(rounds) + 1)
    fig = Figure(figsize=(6.0, 3.8))
    ax = fig.add_subplot()
    ax.bar(x, [r["heads_in"] for r in rounds], 0.6, color="tab:blue", label="heads evaluated")
    ax.set_xlabel("round")
    ax.set_ylabel("heads evaluated", color="tab:blue")
    ax.set_xticks(x)
    ax2 = ax.twinx()
    ax2.plot(x, [r["prompts_seen"] for r in rounds], "o-", color="tab:orange")
    ax2.set_ylabel("prompts seen by the survivors", color="tab:orange")
    total = sum(r["evaluations"] for r in rounds)
    full = head_set.provenance.get("exhaustive_evaluations", total)
    ax.set_title(
        f"successive halving: {total} head-prompt evaluations ({full / max(total, 1):.1f}x fewer)"
    )
    return _finish(fig, path)


def plot_eval_comparison(
    rows: Sequence[Mapping[str, Any]],
    *,
    path: PathLike | None = None,
    treated_label: str = "ACT",
) -> Figure:
    """Baseline vs ACT accuracy per task, and the paired delta with its interval.

    Args:
        rows: one mapping per task with ``task``, ``baseline`` and ``treated`` (accuracies as
            fractions), ``interval`` (lo, hi) of the delta and ``p_value``.
        path: where to save a PNG (optional).

    Returns:
        The figure: panel 0 accuracies (%), panel 1 deltas (points) with interval error bars.

    Example:
        >>> c = paired_comparison(base, act)                                   # doctest: +SKIP
        >>> plot_eval_comparison([{"task": "sst2", "baseline": c.baseline_accuracy,
        ...     "treated": c.treated_accuracy, "interval": c.interval, "p_value": c.p_value}])
    """
    if not rows:
        raise ConfigError("plot_eval_comparison needs at least one row")
    need = ("task", "baseline", "treated", "interval", "p_value")
    for r in rows:
        missing = [k for k in need if k not in r]
        if missing:
            raise DataError(
                f"comparison row {dict(r)!r} lacks {missing}; each row needs {list(need)}"
            )
    tasks = [str(r["task"]) for r in rows]
    base = np.array([100.0 * float(r["baseline"]) for r in rows])
    treated = np.array([100.0 * float(r["treated"]) for r in rows])
    delta = treated - base
    lo = np.array([100.0 * float(r["interval"][0]) for r in rows])
    hi = np.array([100.0 * float(r["interval"][1]) for r in rows])
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(6.0, 1.4 * len(rows) + 3.0), 7.0))
    ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    ax.bar(x - 0.2, base, 0.4, label="baseline", color="tab:gray")
    ax.bar(x + 0.2, treated, 0.4, label=treated_label, color="tab:blue")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    # Legend in the title row, so it never covers a bar.
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, frameon=False)
    ax.set_title(f"baseline vs {treated_label}", loc="left")
    colors = ["tab:green" if d >= 0 else "tab:red" for d in delta]
    ax2.bar(x, delta, 0.5, color=colors, yerr=np.stack([delta - lo, hi - delta]), capsize=4)
    ax2.axhline(0.0, color="black", lw=0.8)
    for xi, top, r in zip(x, np.maximum(hi, 0.0), rows, strict=True):
        ax2.annotate(
            f"p={float(r['p_value']):.2g}",
            (xi, top),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=7,
        )
    ax2.set_ylabel(f"{treated_label} - baseline (points)")
    ax2.set_xticks(x, tasks, rotation=30, ha="right")
    ax2.margins(y=0.2)
    return _finish(fig, path)


def save_census_figures(census: SinkCensus, out_dir: PathLike, *, prefix: str = "") -> list[Path]:
    """Write the census figures as PNGs with stable names.

    ``{prefix}attention_map.png`` (a middle layer) and ``{prefix}attention_grid.png`` are
    skipped when the census kept no example prompt; ``{prefix}sink_frequency.png``,
    ``{prefix}token_classes.png`` and ``{prefix}mass_by_layer.png`` are always written.

    Args:
        census: a SinkCensus.
        out_dir: directory (created if needed).
        prefix: prepended to every file name.

    Returns:
        The paths written, in the order above.

    Example:
        >>> save_census_figures(SinkCensus.load("census.json"), "figs", prefix="smollm2_")  # doctest: +SKIP
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, Any]] = []
    if census.example.get("tokens"):
        middle = census.layers[len(census.layers) // 2]
        jobs += [
            ("attention_map", lambda p: plot_attention_map(census, middle, path=p)),
            ("attention_grid", lambda p: plot_attention_grid(census, path=p)),
        ]
    jobs += [
        ("sink_frequency", lambda p: plot_sink_frequency(census, path=p)),
        ("token_classes", lambda p: plot_token_classes(census, path=p)),
        ("mass_by_layer", lambda p: plot_mass_by_layer(census, path=p)),
    ]
    paths = []
    for name, make in jobs:
        p = out / f"{prefix}{name}.png"
        make(p)
        paths.append(p)
    return paths


def _sink_columns(census: SinkCensus, layer: int) -> tuple[list[int], list[int]]:
    """Example-prompt positions that are a sink in any head of ``layer``: (first, hidden)."""
    li = _layer_index(census.layers, layer)
    sinks = np.asarray(census.example["sinks"][li], dtype=bool)  # [head, pos]
    cols = np.flatnonzero(sinks.any(0)).tolist()
    return [c for c in cols if c == 0], [c for c in cols if c > 0]


def _draw_map(ax: Axes, census: SinkCensus, layer: int) -> Any:
    li = _layer_index(census.layers, layer)
    pattern = np.asarray(census.example["head_mean_patterns"][li], dtype=float)
    n = pattern.shape[0]
    # Blank the causal upper triangle, and use a square-root colour scale: the sinks take
    # most of the mass, and on a linear scale every other entry would be the same colour.
    masked = np.ma.masked_where(np.triu(np.ones((n, n), dtype=bool), k=1), pattern)
    vmax = float(pattern.max()) if pattern.size and pattern.max() > 0 else 1.0
    im = ax.imshow(
        masked, cmap="viridis", norm=PowerNorm(0.5, vmin=0.0, vmax=vmax), interpolation="nearest"
    )
    first, hidden = _sink_columns(census, layer)
    # Markers sit just above the map: x in data coordinates, y in axes coordinates.
    trans = ax.get_xaxis_transform()
    ax.scatter(
        first,
        [1.02] * len(first),
        marker="v",
        s=30,
        color=FIRST_COLOR,
        transform=trans,
        clip_on=False,
        label="first-token sink",
        gid="first_sinks",
    )
    ax.scatter(
        hidden,
        [1.02] * len(hidden),
        marker="v",
        s=30,
        color=HIDDEN_COLOR,
        transform=trans,
        clip_on=False,
        label="hidden sink",
        gid="hidden_sinks",
    )
    return im


def _example_tokens(census: SinkCensus) -> list[str]:
    ex = census.example
    if not ex.get("tokens") or "head_mean_patterns" not in ex or "sinks" not in ex:
        raise DataError(
            "this SinkCensus kept no example prompt; run sink_census with example_index set "
            "(e.g. example_index=0) to plot attention maps"
        )
    return list(ex["tokens"])


def _layer_index(layers: Sequence[int], layer: int) -> int:
    if layer not in layers:
        raise ConfigError(f"layer {layer} was not recorded; recorded layers: {list(layers)}")
    return list(layers).index(layer)


def _layer_head_axes(ax: Axes, layers: Sequence[int], heads: Sequence[int]) -> None:
    # Label at most ~16 ticks per axis so deep models stay readable.
    ys = range(0, len(layers), max(1, math.ceil(len(layers) / 16)))
    xs = range(0, len(heads), max(1, math.ceil(len(heads) / 16)))
    ax.set_yticks(list(ys), [str(layers[i]) for i in ys])
    ax.set_xticks(list(xs), [str(heads[i]) for i in xs])
    ax.set_ylabel("layer")
    ax.set_xlabel("head")


def _token_label(text: str) -> str:
    return text.replace("\n", "\\n").replace("\t", "\\t") or "''"


def _finish(fig: Figure, path: PathLike | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return fig
