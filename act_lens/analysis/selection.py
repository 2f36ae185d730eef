"""How single-head gains become a head set: the keep-rules of the ACT head search.

* ``"joint"`` (default): heads with a positive gain, in order of gain, are added one size at a
  time, and each prefix is applied *together* to a validation part split off the calibration
  set (never the evaluation split); the size with the best validation metric wins, 0 (no
  heads) included. The union of individually helpful heads can over-correct; this curve shows
  where (``provenance["curve"]``, drawn by ``result_figures.plot_selection_curve``).
* ``"threshold"``: every head whose gain exceeds ``margin`` (and ``min_z`` standard errors), at
  most ``max_heads`` of the largest.
* ``"top_k"``: the ``top_k`` heads with the largest gains.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from act_lens.analysis.ablation import ScoredPrompts
from act_lens.analysis.effects import DEFAULT_METRIC, HeadEffects, check_metric, metric_values
from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError
from act_lens.evaluation.scoring import last_token_logprobs
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.act import ActConfig
from act_lens.hooks.arch import fill_windows
from act_lens.hooks.headset import HeadSet

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
    """

    rule: SelectRule = "joint"
    margin: float = 0.0
    min_z: float | None = None
    max_heads: int | None = None
    top_k: int | None = None
    val_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.rule not in ("joint", "threshold", "top_k"):
            raise ConfigError(f"select must be 'joint', 'threshold' or 'top_k', got {self.rule!r}")
        if self.rule == "top_k" and (self.top_k is None or self.top_k < 1):
            raise ConfigError("select='top_k' needs top_k >= 1")
        if self.max_heads is not None and self.max_heads < 1:
            raise ConfigError(f"max_heads must be >= 1, got {self.max_heads}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")

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
            f"heads with {gain} in order of gain; the prefix size with the best mean {metric} "
            "on the validation prompts, applied jointly (0 = no heads)"
        )


def size_grid(n: int) -> list[int]:
    """Set sizes tried by the joint selection: every size to 12, then sparser, up to ``n``.

    Example:
        >>> size_grid(30)
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 20, 22, 24, 28, 30]
    """
    sizes, k = [], 1
    while k < n:
        sizes.append(k)
        k += 1 if k < 12 else 2 if k < 24 else 4 if k < 48 else 8 if k < 96 else 32
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
    """The set size with the best validation ``metric``; ties go to the smaller set, and 0
    (no heads) wins when no size beats the baseline.

    Example:
        >>> pick_size([{"size": 0, "m": -0.5}, {"size": 1, "m": -0.3}, {"size": 2, "m": -0.4}], "m")
        1
    """
    return int(max(curve, key=lambda row: (row[metric], -row["size"]))["size"])


def joint_curve(
    model: Any,
    order: Sequence[tuple[int, int]],
    prompts: Sequence[Prompt],
    *,
    settings: SinkSettings,
    metric: str = DEFAULT_METRIC,
    sizes: Sequence[int] | None = None,
    batch_size: int = 8,
) -> list[dict[str, Any]]:
    """The validation metrics of each prefix of ``order`` applied together.

    Returns one row per size (0 = no heads, then ``size_grid(len(order))``): the mean of
    every metric over ``prompts`` and the standard error of ``metric``.
    """
    if not prompts:
        raise ConfigError("the joint selection needs validation prompts")
    data = ScoredPrompts.from_prompts(model, prompts)
    choice = data.choice_tensor(list(range(len(data.uids))))
    rows = []
    for k in [0, *(size_grid(len(order)) if sizes is None else sizes)]:
        hooks = ActConfig.from_settings(HeadSet(order[:k]), settings) if k else None
        lp = last_token_logprobs(model, data.tokens, hooks=hooks, batch_size=batch_size)
        values = metric_values(lp, *choice)
        row: dict[str, Any] = {"size": k}
        row.update({m: float(v.mean()) for m, v in values.items()})
        n = len(data.uids)
        row["stderr"] = float(values[metric].std(correction=1) / n**0.5) if n > 1 else 0.0
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
        model, list(head_set), prompts, settings=settings, sizes=sizes, batch_size=batch_size
    )
    base, calibrated = (
        {m: v for m, v in r.items() if m not in ("size", "stderr")} for r in (curve[0], curve[-1])
    )
    return {"n": len(prompts), "baseline": base, "calibrated": calibrated}
