"""How single-head gains become a head set: the keep-rules of the ACT head search.

* ``"joint"`` (default): heads with a positive gain, in order of gain, are added one size at a
  time, and each prefix is applied *together* to validation prompts kept apart from the
  ranking prompts (never the evaluation split). Each size is compared with no heads by the
  task's accuracy, paired per prompt; a size is eligible only if the one-sided lower
  confidence bound of that gain is above zero, and the eligible size with the best accuracy
  wins (the metric breaks ties). No eligible size: no heads, with the reason recorded. A
  log-prob criterion alone can rise while accuracy falls (moving probability from a dominant
  label to rare ones); the union of individually helpful heads can over-correct; the curve
  shows both (``provenance["curve"]``, drawn by ``result_figures.plot_selection_curve``).
* ``"threshold"``: every head whose gain exceeds ``margin`` (and ``min_z`` standard errors), at
  most ``max_heads`` of the largest.
* ``"top_k"``: the ``top_k`` heads with the largest gains.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor

from act_lens.analysis.ablation import ScoredPrompts
from act_lens.analysis.effects import (
    DEFAULT_METRIC,
    METRICS,
    HeadEffects,
    check_metric,
    metric_values,
)
from act_lens.analysis.units import job_key
from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError
from act_lens.evaluation.scoring import last_token_logprobs
from act_lens.evaluation.stats import paired_lower_bound
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.act import ActConfig
from act_lens.hooks.arch import fill_windows
from act_lens.hooks.headset import HeadSet
from act_lens.runtime.options import RunOptions
from act_lens.runtime.pool import WorkerPool, map_units

SelectRule = Literal["joint", "threshold", "top_k"]


@dataclass(frozen=True)
class Selection:
    """How single-head gains become a head set (see the module docstring).

    Attributes:
        rule: ``"joint"``, ``"threshold"`` or ``"top_k"``.
        margin: a head is a candidate when its gain exceeds this (all rules).
        min_z: also require gain > ``min_z`` standard errors.
        max_heads: at most this many heads (``joint``: the largest size tried).
        top_k: the size for ``rule="top_k"``.
        val_fraction: ``joint``: the share of the calibration set held out to choose the size
            (stratified by task and label), unless validation prompts are given.
        confidence: ``joint``: a size is eligible only if the one-sided lower bound of its
            paired accuracy gain over no heads, at this confidence, is above zero
            (:func:`act_lens.evaluation.stats.paired_lower_bound`).
    """

    rule: SelectRule = "joint"
    margin: float = 0.0
    min_z: float | None = None
    max_heads: int | None = None
    top_k: int | None = None
    val_fraction: float = 0.5
    confidence: float = 0.9

    def __post_init__(self) -> None:
        if self.rule not in ("joint", "threshold", "top_k"):
            raise ConfigError(f"select must be 'joint', 'threshold' or 'top_k', got {self.rule!r}")
        if self.rule == "top_k" and (self.top_k is None or self.top_k < 1):
            raise ConfigError("select='top_k' needs top_k >= 1")
        if self.max_heads is not None and self.max_heads < 1:
            raise ConfigError(f"max_heads must be >= 1, got {self.max_heads}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 0.5 < self.confidence < 1.0:
            raise ConfigError(f"confidence must be in (0.5, 1), got {self.confidence}")

    def describe(self, metric: str) -> str:
        gain = f"mean {metric} gain > {self.margin}" + (
            f" and > {self.min_z} x stderr" if self.min_z is not None else ""
        )
        if self.rule == "top_k":
            return f"the {self.top_k} heads with the largest {gain}"
        if self.rule == "threshold":
            cap = f"; at most {self.max_heads}, largest first" if self.max_heads else ""
            return f"keep head if {gain}{cap}"
        return (
            f"heads with {gain} in order of gain; applied jointly, each prefix size is compared "
            "with no heads on the validation prompts by accuracy (paired); eligible if the "
            f"one-sided {self.confidence:.0%} lower bound of its gain is above 0; the eligible "
            f"size with the best accuracy wins (ties: mean {metric}, then the smaller set); "
            "none eligible: no heads"
        )


def size_grid(n: int) -> list[int]:
    """Set sizes tried by the joint selection: 1 to 4, then about 1.5x apart, up to ``n``.

    Few sizes keep the validation cheap (each size is one pass over the validation prompts)
    and the choice among them honest (fewer chances to win by luck).

    Example:
        >>> size_grid(40)
        [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40]
    """
    sizes, k = [], 1
    while k < n:
        sizes.append(k)
        # 1, 2, 3, then powers of two and the midpoints between them (4, 6, 8, 12, 16, 24...)
        k = k + 1 if k < 4 else k * 3 // 2 if k & (k - 1) == 0 else k * 4 // 3
    return [*sizes, n] if n >= 1 else []


def heads_from_effects(
    effects: HeadEffects,
    *,
    metric: str = DEFAULT_METRIC,
    selection: Selection = Selection("threshold"),
) -> HeadSet:
    """A head set from saved single-head effects with a ``threshold`` or ``top_k`` rule.

    No model is run, so other keep-rules and metrics can be compared on the effects of one
    search (e.g. the pre-0.2 default: ``metric="vocab_logprob"``, every positive gain kept).

    Example:
        >>> old = heads_from_effects(HeadEffects.load("head_effects.pt"), metric="vocab_logprob")  # doctest: +SKIP
    """
    check_metric(metric)
    if selection.rule == "joint":
        raise ConfigError("the joint rule needs the model and validation prompts: use search_heads")
    ranked = ranked_candidates(head_scores(effects, metric), selection)
    size = selection.top_k if selection.rule == "top_k" else selection.max_heads
    keep = ranked[:size] if size else ranked
    return HeadSet(keep, {"keep_rule": selection.describe(metric), "metric": metric})


def head_scores(effects: HeadEffects, metric: str) -> dict[tuple[int, int], dict[str, float]]:
    eff, err, counts = effects.effects[metric], effects.stderr[metric], effects.counts(metric)
    out = {}
    for li, layer in enumerate(effects.layers):
        for hi, head in enumerate(effects.heads):
            e = float(eff[li, hi])
            if e == e:  # NaN: not evaluated (screened out)
                out[(layer, head)] = {
                    "effect": e,
                    "stderr": float(err[li, hi]),
                    "n": int(counts[li, hi]),
                }
    return out


def ranked_candidates(
    scores: dict[tuple[int, int], dict[str, float]], selection: Selection
) -> list[tuple[int, int]]:
    """Heads passing the gain rule, largest gain first (ties by layer, head)."""
    passing = [
        lh
        for lh, s in scores.items()
        if s["effect"] > selection.margin
        and (selection.min_z is None or s["effect"] > selection.min_z * s["stderr"])
    ]
    return sorted(passing, key=lambda lh: (-scores[lh]["effect"], lh))


def pick_size(curve: Sequence[dict[str, Any]], metric: str) -> int:
    """The eligible size with the best validation accuracy (ties: ``metric``, then the smaller
    set); 0 (no heads) when no size is eligible (``row["eligible"]``, see :func:`joint_curve`).

    Example:
        >>> rows = [{"size": 0, "accuracy": 0.5, "m": -0.7, "eligible": False},
        ...         {"size": 1, "accuracy": 0.7, "m": -0.5, "eligible": True},
        ...         {"size": 2, "accuracy": 0.8, "m": -0.4, "eligible": False}]
        >>> pick_size(rows, "m")          # size 2 is better but not significantly so
        1
    """
    eligible = [r for r in curve if r["size"] > 0 and r.get("eligible")]
    if not eligible:
        return 0
    return int(max(eligible, key=lambda r: (r["accuracy"], r[metric], -r["size"]))["size"])


def decision(curve: Sequence[dict[str, Any]], metric: str, confidence: float) -> dict[str, Any]:
    """What the joint selection decided and why, for provenance, reports and the CLI."""
    size = pick_size(curve, metric)
    tried = [r for r in curve if r["size"] > 0]
    row = next((r for r in curve if r["size"] == size), curve[0])
    # the size a reader would ask about: the largest validation gain (ties: the higher bound,
    # then the smaller set); a size that changed no prompt has bound 0 but shows nothing
    best = max(tried, key=lambda r: (r["gain"], r["lower"], -r["size"])) if tried else None
    out: dict[str, Any] = {
        "selected_size": size,
        "confidence": confidence,
        "n_validation": row.get("n", 0),
        "gain": row.get("gain", 0.0),
        "lower": row.get("lower", 0.0),
        "p_value": row.get("p_value", 1.0),
    }
    if size:
        out["reason"] = (
            f"{size} heads: validation accuracy {100 * row['gain']:+.1f} points over no heads "
            f"(one-sided {confidence:.0%} lower bound {100 * row['lower']:+.1f}, "
            f"p = {row['p_value']:.2g}, n = {row['n']})"
        )
    elif best is None:
        out["reason"] = "no candidate head had a positive single-head gain: no heads"
    else:
        out["best"] = {k: best[k] for k in ("size", "gain", "lower", "p_value")}
        out["reason"] = (
            f"no heads: no set size's validation gain is significant; the best, {best['size']} "
            f"heads, gains {100 * best['gain']:+.1f} points (one-sided {confidence:.0%} lower "
            f"bound {100 * best['lower']:+.1f}, p = {best['p_value']:.2g}, n = {best['n']})"
        )
    return out


def curve_values(
    model: Any,
    order: Sequence[tuple[int, int]],
    sizes: Sequence[int],
    prompts: Sequence[Prompt],
    *,
    settings: SinkSettings,
    batch_size: int = 8,
) -> list[dict[str, Any]]:
    """Per-example metrics of ``prompts`` with each prefix ``order[:k]`` (k in ``sizes``)
    applied together; one work unit of the joint curve."""
    applied = [ActConfig(HeadSet(order[:k]), settings) if k else None for k in sizes]
    return values_with(model, prompts, applied, batch_size=batch_size)


def values_with(
    model: Any, prompts: Sequence[Prompt], interventions: Sequence[Any], *, batch_size: int = 8
) -> list[dict[str, Tensor]]:
    """Per-example metrics of ``prompts`` under each intervention (None: the plain model): the
    loop of every validation curve (set sizes here, ZeroTuning's gammas)."""
    data = ScoredPrompts.from_prompts(model, prompts)
    choice = data.choice_tensor(list(range(len(data.uids))))
    out = []
    for intervention in interventions:
        lp = last_token_logprobs(model, data.tokens, hooks=intervention, batch_size=batch_size)
        out.append(metric_values(lp, *choice))
    return out


def curve_tag(
    order: Sequence[tuple[int, int]],
    prompts: Sequence[Prompt],
    settings: SinkSettings,
    batch_size: int,
) -> str:
    """The checkpoint prefix of one validation curve: what decides its values (the model and
    the precision are in the checkpoint's own key)."""
    recorded = {**settings.to_dict(), "order": tuple(order), "batch_size": batch_size}
    return "curve:" + job_key("", prompts, recorded)


def joint_curve(
    model: Any,
    order: Sequence[tuple[int, int]],
    prompts: Sequence[Prompt],
    *,
    settings: SinkSettings,
    metric: str = DEFAULT_METRIC,
    sizes: Sequence[int] | None = None,
    confidence: float = 0.9,
    run: RunOptions | None = None,
) -> list[dict[str, Any]]:
    """The validation metrics of each prefix of ``order`` applied together, against no heads.

    Returns one row per size (0 = no heads, then ``size_grid(len(order))``): the mean of every
    metric over ``prompts``, the standard error of ``metric``, and the paired accuracy
    comparison with no heads: ``gain``, ``gained``/``lost`` (examples fixed and broken), the
    one-sided exact ``lower`` bound at ``confidence`` and its ``p_value``, and ``eligible``
    (lower bound above zero). ``run``: batch size, precision, and ``workers`` (a
    WorkerPool evaluates the sizes in parallel), and ``checkpoint``: each finished size is
    saved there, keyed by the order, the prompts and the settings, and reused on resume.
    """
    if not prompts:
        raise ConfigError("the joint selection needs validation prompts")
    run = run or RunOptions()
    grid = [0, *(size_grid(len(order)) if sizes is None else sizes)]
    kw = {"order": list(order), "prompts": list(prompts), "settings": settings,
          "batch_size": run.batch_size}  # fmt: skip
    ckpt, tag = run.checkpoint, curve_tag(order, prompts, settings, run.batch_size)
    saved = {k: f"{tag}:{k}" for k in grid}
    by_size = {k: ckpt.get(u) for k, u in saved.items() if ckpt is not None and u in ckpt}
    todo = [k for k in grid if k not in by_size]
    pool = run.workers if isinstance(run.workers, WorkerPool) else None
    # one unit per size in-process (each one checkpointed); interleaved sizes on a pool
    n_units = len(todo) if pool is None else min(len(todo), 4 * pool.n)
    chunks = [todo[i::n_units] for i in range(n_units)]  # sizes interleaved: equal work

    def save(i: int, vals: list[dict[str, Tensor]]) -> None:
        for k, v in zip(chunks[i], vals, strict=True):
            by_size[k] = v
            if ckpt is not None:
                ckpt.put(saved[k], v)

    if chunks:
        map_units(
            model, "act_lens.analysis.selection:curve_values",
            [{**kw, "sizes": c} for c in chunks], pool=pool,
            precision=run.precision_for(model), on_result=save,
        )  # fmt: skip
    base_correct = by_size[0]["accuracy"].bool()
    n = len(prompts)
    rows = []
    for k in grid:
        values = by_size[k]
        row: dict[str, Any] = {"size": k, "n": n}
        row.update({m: float(v.mean()) for m, v in values.items()})
        row["stderr"] = float(values[metric].std(correction=1) / n**0.5) if n > 1 else 0.0
        correct = values["accuracy"].bool()
        gained, lost = int((correct & ~base_correct).sum()), int((~correct & base_correct).sum())
        lower, p = paired_lower_bound(gained, lost, n, confidence=confidence)
        row.update(gain=(gained - lost) / n, gained=gained, lost=lost, lower=lower, p_value=p)
        row["eligible"] = bool(k > 0 and lower > 0)
        rows.append(row)
    return rows


def validate_head_set(
    model: Any,
    head_set: HeadSet,
    prompts: Sequence[Prompt],
    *,
    settings: SinkSettings | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Mean metrics on ``prompts`` without and with ACT on the whole head set."""
    settings = fill_windows(settings or SinkSettings(), model)
    sizes = [len(head_set)] if len(head_set) else []
    curve = joint_curve(
        model, list(head_set), prompts, settings=settings, sizes=sizes,
        run=RunOptions(batch_size=batch_size),
    )  # fmt: skip
    base, calibrated = ({m: r[m] for m in METRICS} for r in (curve[0], curve[-1]))
    return {"n": len(prompts), "baseline": base, "calibrated": calibrated}
