"""Figures of searches and evaluations: per-head ablation effects, the joint selection's
validation curve, successive-halving rounds, and baseline vs treated accuracy per task.

Like :mod:`act_lens.app.figures`, every function takes result objects (never a model), builds
a ``matplotlib.figure.Figure`` directly (no pyplot) and optionally saves it as a PNG.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from act_lens.analysis.effects import RENAMED, HeadEffects
from act_lens.app.figures import PathLike, finish, layer_head_axes
from act_lens.errors import ConfigError, DataError
from act_lens.evaluation.task_result import TaskResult
from act_lens.hooks.headset import HeadSet


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
    layer_head_axes(ax, effects.layers, effects.heads)
    ax.set_title(f"ablating one head ({effects.strategy}): change in {metric}")
    fig.colorbar(im, ax=ax, label=f"{metric} (ablated - clean)")
    return finish(fig, path)


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
    if all("lower" in r for r in curve):  # what decides: the paired accuracy gain and its bound
        acc = ax.twinx()
        gain = np.array([100 * r["gain"] for r in curve])
        lower = np.array([100 * r["lower"] for r in curve])
        acc.plot(sizes, gain, "s-", ms=3, color="tab:orange", label="accuracy gain (points)")
        acc.plot(sizes, lower, ":", color="tab:orange", label="its lower bound")
        ok = np.array([bool(r["eligible"]) for r in curve])
        acc.plot(sizes[ok], gain[ok], "s", ms=6, mfc="none", color="tab:red", label="eligible")
        acc.axhline(0, color="tab:orange", lw=0.5)
        acc.set_ylabel("validation accuracy gain over no heads (points)")
        acc.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("heads applied together (in order of single-head gain)")
    ax.set_ylabel(f"mean {metric} (validation)")
    n = (prov.get("validation_set") or {}).get("n", "?")
    ax.set_title(f"joint selection on {n} validation prompts")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return finish(fig, path)


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
    return finish(fig, path)


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
    return finish(fig, path)


def plot_task_results(
    results: Mapping[str, TaskResult],
    *,
    path: PathLike | None = None,
    treated_label: str = "ACT",
) -> Figure:
    """:func:`plot_eval_comparison` of the tasks of a ``results.json`` that have a treated run.

    Example:
        >>> plot_task_results(load_results("runs/demo"), path="eval.png")   # doctest: +SKIP
    """
    rows = [
        {
            "task": key,
            "baseline": r.baseline.accuracy,
            "treated": r.treated.accuracy,
            "interval": r.comparison.interval,
            "p_value": r.comparison.p_value,
        }
        for key, r in results.items()
        if r.treated is not None and r.comparison is not None
    ]
    return plot_eval_comparison(rows, path=path, treated_label=treated_label)
