"""Figures of the sink census (attention maps with sinks marked, frequencies, token classes,
masses by layer) and the helpers every figure uses; search and evaluation figures are in
:mod:`act_lens.app.result_figures`.

Every function takes result objects (never a model), builds a ``matplotlib.figure.Figure``
directly (no pyplot, so no backend is chosen and nothing global changes) and returns it; a
``plot_*`` function given ``path=`` also saves it there as a PNG.
"""

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

from act_lens.analysis.census import SinkCensus
from act_lens.errors import ConfigError, DataError

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
    return finish(fig, path)


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
    return finish(fig, path)


def plot_sink_frequency(census: SinkCensus, *, path: PathLike | None = None) -> Figure:
    """Layer x head heatmap of how often each head has a hidden sink.


    Returns:
        The figure; ``fig.axes[0].images[0]`` holds ``census.hidden_sink_freq``.
    """
    freq = census.hidden_sink_freq.detach().cpu().numpy()
    fig = Figure(figsize=(min(max(3.0 + 0.22 * freq.shape[1], 5.0), 12.0), 5.0))
    ax = fig.add_subplot()
    im = ax.imshow(freq, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    layer_head_axes(ax, census.layers, range(freq.shape[1]))
    ax.set_title(f"{census.model}: hidden-sink frequency ({census.n_prompts} prompts)")
    fig.colorbar(im, ax=ax, label="fraction of prompts with a hidden sink")
    return finish(fig, path)


def plot_token_classes(census: SinkCensus, *, path: PathLike | None = None) -> Figure:
    """Hidden-sink counts per token class and, when recorded, the most frequent sink tokens.


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
    return finish(fig, path)


def plot_mass_by_layer(census: SinkCensus, *, path: PathLike | None = None) -> Figure:
    """Mean (over heads) attention on the first token and on hidden sinks, per layer.


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
    return finish(fig, path)


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
    for cols, color, label, gid in (
        (first, FIRST_COLOR, "first-token sink", "first_sinks"),
        (hidden, HIDDEN_COLOR, "hidden sink", "hidden_sinks"),
    ):
        ax.scatter(
            cols, [1.02] * len(cols), marker="v", s=30, color=color, transform=trans,
            clip_on=False, label=label, gid=gid,
        )  # fmt: skip
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


def layer_head_axes(ax: Axes, layers: Sequence[int], heads: Sequence[int]) -> None:
    """Label a layer x head heatmap's axes."""
    # Label at most ~16 ticks per axis so deep models stay readable.
    ys = range(0, len(layers), max(1, math.ceil(len(layers) / 16)))
    xs = range(0, len(heads), max(1, math.ceil(len(heads) / 16)))
    ax.set_yticks(list(ys), [str(layers[i]) for i in ys])
    ax.set_xticks(list(xs), [str(heads[i]) for i in xs])
    ax.set_ylabel("layer")
    ax.set_xlabel("head")


def _token_label(text: str) -> str:
    return text.replace("\n", "\\n").replace("\t", "\\t") or "''"


def finish(fig: Figure, path: PathLike | None) -> Figure:
    """Save ``fig`` as a PNG at ``path`` (folders created) when given; return it."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return fig
