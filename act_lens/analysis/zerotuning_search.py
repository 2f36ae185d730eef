"""Choosing ZeroTuning's heads and gamma with act_lens's engine (the public code does it by hand).

1. **Profile.** Every candidate head is edited alone with the exact engine, once raising the
   first token's attention (``gamma_up``) and once lowering it (``gamma_down``), on the search
   part of the calibration set (optionally only the ``screen`` heads with the largest
   first-order derivative, ``screen_zerotuning``). A head whose metric rises when gamma rises
   is *up-effective*, when gamma falls *down-effective*.
2. **Dominant type.** The direction whose heads add up to the larger total gain; its heads
   with a gain above ``margin`` (largest first, at most ``max_heads``) form the set.
3. **Gamma.** The set is applied with every gamma of a grid in that direction (1 included: no
   change) on the validation part split off the calibration set; the best mean metric wins.

Supervised: the metric is the search metric (``choice_logprob``). Unsupervised
(``supervised=False``): labels are never read; the metric is ``neg_entropy`` (minus the
entropy over the choices: ZeroTuning's unsupervised criterion) and the validation split is
by position, not by label.
"""

from collections.abc import Sequence
from typing import Any

import torch

from act_lens.analysis.ablation import ScoredPrompts, head_effects
from act_lens.analysis.calibration_set import describe_calibration, split_calibration
from act_lens.analysis.effects import DEFAULT_METRIC, check_metric, metric_values
from act_lens.analysis.screening import screen_zerotuning
from act_lens.analysis.search import default_layers
from act_lens.errors import ConfigError
from act_lens.evaluation.scoring import last_token_logprobs
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.check import require_pattern_editable
from act_lens.hooks.headset import HeadSet, model_identity, provenance_now
from act_lens.hooks.zerotuning import ZeroTuningConfig, zerotuning_strategy
from act_lens.runtime.pool import WorkerPool, use_pool

GRID = {
    "down": (1.0, 0.85, 0.7, 0.55, 0.4, 0.25, 0.1, 0.0),
    "up": (1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0),
}


def zerotuning_search(
    model: Any,
    calibration: Sequence[Prompt],
    *,
    supervised: bool = True,
    metric: str = DEFAULT_METRIC,
    layers: Sequence[int] | None = None,
    gamma_up: float = 2.0,
    gamma_down: float = 0.5,
    margin: float = 0.0,
    max_heads: int | None = None,
    screen: int | None = None,
    val_fraction: float = 0.5,
    gammas: Sequence[float] | None = None,
    batch_size: int = 8,
    progress: bool = True,
    workers: "int | WorkerPool | None" = None,
) -> HeadSet:
    """A ZeroTuning head set (``method="zerotuning"``, gamma in ``params``) for ``model``.

    Args:
        model: a TransformerBridge.
        calibration: calibration prompts (``calibration_mix``; for ``supervised=False`` draw
            them with ``balance=False``, which does not look at labels).
        supervised: choose by ``metric`` (labels) or by ``neg_entropy`` (no labels).
        metric: the supervised metric.
        layers: candidate layers (default: all but the first two and the last).
        gamma_up: the profile's probe above 1 (a stronger first token).
        gamma_down: its probe below 1 (a weaker first token).
        margin: a head joins the set when its gain in the dominant direction exceeds this.
        max_heads: at most this many heads.
        screen: profile exactly only the heads with the largest first-order |d metric / d gamma|.
        val_fraction: share of the calibration set that chooses gamma.
        gammas: the grid (default: ``GRID`` of the dominant direction).
        batch_size: prompts per batch.
        workers: an int > 1 or a ``WorkerPool``: the two profiles run as work units on Ray
            actors (as ``head_effects(workers=...)``).

    Returns:
        The HeadSet; ``provenance`` holds the profile, the dominant type and the gamma curve.

    Example:
        >>> zt = zerotuning_search(model, calibration_mix(["sst2"], 48, data=D))  # doctest: +SKIP
        >>> evaluate(model, "sst2", data=D, intervention=ZeroTuningConfig(zt))    # doctest: +SKIP
    """
    metric = check_metric(metric) if supervised else "neg_entropy"
    if not (gamma_down < 1.0 < gamma_up):
        raise ConfigError(f"need gamma_down < 1 < gamma_up, got {gamma_down}, {gamma_up}")
    require_pattern_editable(model)
    layers = default_layers(int(model.cfg.n_layers)) if layers is None else sorted(set(layers))
    if supervised:
        search_part, val_part = split_calibration(calibration, val_fraction)
    else:  # by position: an unsupervised method never reads a label
        cut = len(calibration) - max(1, round(val_fraction * len(calibration)))
        search_part, val_part = list(calibration[:cut]), list(calibration[cut:])
        if not search_part:
            raise ConfigError("too few calibration prompts to split; use more")
    heads_by_layer: dict[int, list[int]] | None = None
    screening = None
    if screen is not None:
        est = screen_zerotuning(
            model, search_part, layers=layers, metric=metric, batch_size=batch_size
        )
        order = torch.argsort(est.abs().flatten(), descending=True)[:screen].tolist()
        n_heads = est.shape[1]
        heads_by_layer = {}
        for i in order:
            heads_by_layer.setdefault(layers[i // n_heads], []).append(i % n_heads)
        screening = {
            f"{layers[i // n_heads]}.{i % n_heads}": float(est.flatten()[i]) for i in order
        }
    profile = {}
    with use_pool(model, workers) as pool:
        effects = {
            direction: head_effects(
                model, search_part, strategy=zerotuning_strategy(gamma), layers=layers,
                heads_by_layer=heads_by_layer, batch_size=batch_size, progress=progress,
                workers=pool,
            )
            for direction, gamma in (("up", gamma_up), ("down", gamma_down))
        }  # fmt: skip
    for direction, eff in effects.items():
        values, errs = eff.effects[metric], eff.stderr[metric]
        profile[direction] = {
            (la, h): (float(values[li, hi]), float(errs[li, hi]))
            for li, la in enumerate(eff.layers)
            for hi, h in enumerate(eff.heads)
            if values[li, hi] == values[li, hi]  # NaN: not profiled (screened out)
        }
    totals = {d: sum(max(g, 0.0) for g, _ in p.values()) for d, p in profile.items()}
    dominant = max(totals, key=lambda d: (totals[d], d == "down"))
    gains = profile[dominant]
    chosen = sorted(
        (lh for lh, (g, _) in gains.items() if g > margin), key=lambda lh: (-gains[lh][0], lh)
    )
    if max_heads is not None:
        chosen = chosen[:max_heads]
    curve = _gamma_curve(model, chosen, val_part, gammas or GRID[dominant], metric, batch_size)
    best = max(curve, key=lambda row: (row[metric], -abs(row["gamma"] - 1.0)))
    provenance: dict[str, Any] = {
        **provenance_now(),
        "model": model_identity(model),
        "method": "act_lens.zerotuning_search",
        "supervised": supervised,
        "metric": metric,
        "probes": {"up": gamma_up, "down": gamma_down},
        "dominant": dominant,
        "total_gain": totals,
        "keep_rule": f"heads whose {metric} rises by > {margin} when gamma goes {dominant}; gamma "
        f"with the best mean {metric} on the validation prompts (1 = no change)",
        "candidate_layers": list(layers),
        "calibration": describe_calibration(search_part) if supervised else {"n": len(search_part)},
        "validation_set": describe_calibration(val_part) if supervised else {"n": len(val_part)},
        "profile": {
            d: {f"{la}.{h}": {"effect": g, "stderr": e} for (la, h), (g, e) in p.items()}
            for d, p in profile.items()
        },  # fmt: skip
        "screening": screening,
        "gamma_curve": curve,
    }
    return HeadSet(chosen, provenance, method="zerotuning",
                   params={"gamma": best["gamma"], "direction": dominant})  # fmt: skip


def _gamma_curve(
    model: Any,
    heads: Sequence[tuple[int, int]],
    prompts: Sequence[Prompt],
    grid: Sequence[float],
    metric: str,
    batch_size: int,
) -> list[dict[str, float]]:
    """Mean metrics on ``prompts`` with ZeroTuning on ``heads`` at each gamma of ``grid``."""
    data = ScoredPrompts.from_prompts(model, prompts)
    choice = data.choice_tensor(list(range(len(data.uids))))
    rows = []
    for gamma in grid:
        hooks = None
        if heads and gamma != 1.0:
            hooks = ZeroTuningConfig(HeadSet(heads), gamma=gamma).for_model(model)
        lp = last_token_logprobs(model, data.tokens, hooks=hooks, batch_size=batch_size)
        values = metric_values(lp, *choice)
        row = {"gamma": float(gamma)}
        row.update({m: float(v.mean()) for m, v in values.items()})
        rows.append(row)
    return rows
