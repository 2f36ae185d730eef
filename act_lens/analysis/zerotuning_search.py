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

The screen, the engine and the validation loop are the ACT search's
(:func:`~act_lens.analysis.search.screen_candidates`, ``head_effects``,
:func:`~act_lens.analysis.selection.values_with`), run by the same ``SearchConfig`` and
``Selection`` objects.

Supervised: the metric is the search metric (``choice_logprob``). Unsupervised
(``supervised=False``): labels are never read; the metric is ``neg_entropy`` (minus the
entropy over the choices: ZeroTuning's unsupervised criterion) and the validation split is
by position, not by label.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from act_lens.analysis.ablation import head_effects
from act_lens.analysis.calibration_set import describe_calibration, split_calibration
from act_lens.analysis.effects import DEFAULT_METRIC, HeadEffects
from act_lens.analysis.screening import screen_zerotuning
from act_lens.analysis.search import candidate_layers, screen_candidates
from act_lens.analysis.search_config import SearchConfig
from act_lens.analysis.selection import Selection, ranked_candidates, values_with
from act_lens.analysis.units import job_key
from act_lens.errors import ConfigError, object_from, old_keywords
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.check import require_pattern_editable
from act_lens.hooks.headset import HeadSet, model_identity, provenance_now
from act_lens.hooks.zerotuning import ZeroTuningConfig, zerotuning_strategy
from act_lens.runtime.checkpoint import Checkpoint
from act_lens.runtime.options import RunOptions
from act_lens.runtime.pool import use_pool, weights_digest
from act_lens.runtime.precision import precision_context

GRID = {
    "down": (1.0, 0.85, 0.7, 0.55, 0.4, 0.25, 0.1, 0.0),
    "up": (1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0),
}
Head = tuple[int, int]


@dataclass(frozen=True)
class Gammas:
    """ZeroTuning's gammas: the profile's two probes and the grid the set is tried with.

    Attributes:
        up: the probe above 1 (a stronger first token).
        down: the probe below 1 (a weaker first token).
        grid: the gammas tried on the validation prompts (None: ``GRID`` of the dominant
            direction).

    Example:
        >>> Gammas(up=3.0).grid_for("up")
        (1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0)
    """

    up: float = 2.0
    down: float = 0.5
    grid: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not (self.down < 1.0 < self.up):
            raise ConfigError(f"need gamma_down < 1 < gamma_up, got {self.down}, {self.up}")

    def grid_for(self, direction: str) -> tuple[float, ...]:
        return self.grid if self.grid else GRID[direction]


# The loose keywords of earlier releases, and the object each one belongs to.
_SELECTION_KW = ("margin", "max_heads", "val_fraction")
_CONFIG_KW = ("metric", "screen", "batch_size", "progress", "workers")
_GAMMA_KW = {"gamma_up": "up", "gamma_down": "down"}


def _default_config(**given: Any) -> SearchConfig:
    # Without config=, as before: every candidate head, in-process, in the caller's fp32.
    return SearchConfig(**{"screen": None, "workers": 1, "precision": "fp32", **given})


def zerotuning_search(
    model: Any,
    calibration: Sequence[Prompt],
    *,
    supervised: bool = True,
    layers: Sequence[int] | None = None,
    selection: Selection | None = None,
    config: SearchConfig | None = None,
    gammas: Gammas | None = None,
    **deprecated: Any,
) -> HeadSet:
    """A ZeroTuning head set (``method="zerotuning"``, gamma in ``params``) for ``model``.

    Args:
        model: a TransformerBridge.
        calibration: calibration prompts (``calibration_mix``; for ``supervised=False`` draw
            them with ``balance=False``, which does not look at labels).
        supervised: choose by ``config.metric`` (labels) or by ``neg_entropy`` (no labels).
        layers: candidate layers (default: all but the first two and the last).
        selection: ``margin`` (a head joins when its gain in the dominant direction exceeds
            it), ``min_z``, ``max_heads`` (or ``top_k`` with ``rule="top_k"``) and
            ``val_fraction`` (the share of the calibration set that chooses gamma).
        config: metric, ``screen`` (profile exactly only the heads with the largest
            first-order |d metric / d gamma|), workers (the two profiles run as work units),
            precision, batch size, progress, checkpoint (the screen and each finished work
            unit of the two profiles are saved there; an interrupted search resumes from it).
            Default: ``SearchConfig(screen=None, workers=1, precision="fp32")``. No halving
            schedule.
        gammas: the probes and the grid (:class:`Gammas`).
        **deprecated: the keywords of earlier releases, still applied with a
            DeprecationWarning: ``metric``, ``screen``, ``batch_size``, ``progress``,
            ``workers`` (-> ``config``), ``margin``, ``max_heads``, ``val_fraction``
            (-> ``selection``), ``gamma_up``, ``gamma_down`` (-> ``gammas``); ``gammas`` as a
            list (-> ``Gammas(grid=...)``).

    Returns:
        The HeadSet; ``provenance`` holds the profile, the dominant type and the gamma curve.

    Raises:
        ConfigError: a deprecated keyword beside its object, a halving schedule, a checkpoint
            written by a search with other prompts, settings or weights.

    Example:
        >>> zt = zerotuning_search(model, calibration_mix(["sst2"], 48, data=D))  # doctest: +SKIP
        >>> evaluate(model, "sst2", data=D, intervention=ZeroTuningConfig(zt))    # doctest: +SKIP
    """
    old = old_keywords("zerotuning_search", deprecated, (*_SELECTION_KW, *_CONFIG_KW, *_GAMMA_KW))
    sel_kw = {k: old.get(k) for k in _SELECTION_KW}
    selection = object_from("zerotuning_search", "selection", selection, sel_kw, Selection)
    cfg_kw = {k: old.get(k) for k in _CONFIG_KW}
    config = object_from(
        "zerotuning_search", "config", config, cfg_kw, _default_config, shown_as="SearchConfig"
    )
    gamma_kw = {new: old.get(k) for k, new in _GAMMA_KW.items()}
    if gammas is not None and not isinstance(gammas, Gammas):  # a grid, as before
        gamma_kw["grid"], gammas = tuple(float(g) for g in gammas), None
    gammas = object_from("zerotuning_search", "gammas", gammas, gamma_kw, Gammas)
    return _search(model, calibration, supervised, layers, selection, config, gammas)


def _search(
    model: Any,
    calibration: Sequence[Prompt],
    supervised: bool,
    layers: Sequence[int] | None,
    selection: Selection,
    config: SearchConfig,
    gammas: Gammas,
) -> HeadSet:
    """The search itself, on the resolved objects (see ``zerotuning_search``)."""
    metric = _metric(config, supervised)
    require_pattern_editable(model)
    layers = candidate_layers(model, layers)
    search_part, val_part = _parts(calibration, supervised, selection.val_fraction)
    n_workers = config.workers_for(model, layers, len(search_part), passes=2)
    recorded = {**config.result_fields(), "layers": tuple(layers), "supervised": supervised,
                "probes": (gammas.up, gammas.down)}  # fmt: skip
    ckpt = Checkpoint(config.checkpoint, job_key(weights_digest(model), search_part, recorded))
    with (
        precision_context(config.precision, model),
        use_pool(
            model,
            n_workers,
            ray_address=config.ray_address,
        ) as pool,
    ):
        # without a file, the profiles run as before (in one pass unless on workers)
        run = config.run_options(model, pool, ckpt if config.checkpoint is not None else None)

        def screen() -> torch.Tensor:
            if SCREEN_UNIT not in ckpt:
                ckpt.put(SCREEN_UNIT, screen_zerotuning(
                    model, search_part, layers=layers, metric=metric, batch_size=run.batch_size
                ))  # fmt: skip
            return ckpt.get(SCREEN_UNIT)

        heads_by_layer, screening = screen_candidates(
            model, layers, config.screen, screen, magnitude=True
        )
        profile = _profile(model, search_part, layers, heads_by_layer, gammas, metric, run)
        dominant, chosen, totals = _choose(profile, selection)
        curve = _gamma_curve(model, chosen, val_part, gammas.grid_for(dominant), metric, run)
    best = max(curve, key=lambda row: (row[metric], -abs(row["gamma"] - 1.0)))
    provenance: dict[str, Any] = {
        **provenance_now(),
        "model": model_identity(model),
        "method": "act_lens.zerotuning_search",
        "supervised": supervised,
        "metric": metric,
        "probes": {"up": gammas.up, "down": gammas.down},
        "dominant": dominant,
        "total_gain": totals,
        "keep_rule": f"heads whose {metric} rises by > {selection.margin} when gamma goes "
        f"{dominant}; gamma with the best mean {metric} on the validation prompts (1 = no change)",
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
    ckpt.finish()  # finished: the result is saved by the caller
    return HeadSet(chosen, provenance, method="zerotuning",
                   params={"gamma": best["gamma"], "direction": dominant})  # fmt: skip


# The checkpoint entry of the screen's estimates; each profile's units are named
# ``<direction>:<unit>``.
SCREEN_UNIT = "zt_screen"


def _metric(config: SearchConfig, supervised: bool) -> str:
    """The metric heads and gammas are chosen by; refuses what the ZeroTuning search lacks."""
    if config.schedule == "halving":
        raise ConfigError("zerotuning_search profiles every candidate: use schedule='exhaustive'")
    if supervised:
        return config.metric
    if config.metric not in (DEFAULT_METRIC, "neg_entropy"):
        raise ConfigError(
            f"supervised=False chooses by neg_entropy (no labels), not {config.metric!r}"
        )
    return "neg_entropy"


def _parts(
    calibration: Sequence[Prompt], supervised: bool, val_fraction: float
) -> tuple[list[Prompt], list[Prompt]]:
    """The profiling part and the part that chooses gamma."""
    if supervised:
        return split_calibration(calibration, val_fraction)
    # by position: an unsupervised method never reads a label
    cut = len(calibration) - max(1, round(val_fraction * len(calibration)))
    if cut < 1:
        raise ConfigError("too few calibration prompts to split; use more")
    return list(calibration[:cut]), list(calibration[cut:])


def _profile(
    model: Any,
    prompts: Sequence[Prompt],
    layers: list[int],
    heads_by_layer: dict[int, list[int]] | None,
    gammas: Gammas,
    metric: str,
    run: RunOptions,
) -> dict[str, dict[Head, tuple[float, float]]]:
    """Each candidate's gain and its standard error with gamma raised and lowered."""
    profile = {}
    for direction, gamma in (("up", gammas.up), ("down", gammas.down)):
        ckpt = run.checkpoint.scoped(f"{direction}:") if run.checkpoint is not None else None
        eff: HeadEffects = head_effects(
            model, prompts, strategy=zerotuning_strategy(gamma),
            layers=None if heads_by_layer else layers, heads=heads_by_layer,
            run=replace(run, checkpoint=ckpt),
        )  # fmt: skip
        values, errs = eff.effects[metric], eff.stderr[metric]
        profile[direction] = {
            (la, h): (float(values[li, hi]), float(errs[li, hi]))
            for li, la in enumerate(eff.layers)
            for hi, h in enumerate(eff.heads)
            if values[li, hi] == values[li, hi]  # NaN: not profiled (screened out)
        }
    return profile


def _choose(
    profile: dict[str, dict[Head, tuple[float, float]]], selection: Selection
) -> tuple[str, list[Head], dict[str, float]]:
    """The dominant direction, its heads (largest gain first), and both directions' totals."""
    totals = {d: sum(max(g, 0.0) for g, _ in p.values()) for d, p in profile.items()}
    dominant = max(totals, key=lambda d: (totals[d], d == "down"))
    scores = {lh: {"effect": g, "stderr": e} for lh, (g, e) in profile[dominant].items()}
    chosen = ranked_candidates(scores, selection)
    size = selection.top_k if selection.rule == "top_k" else selection.max_heads
    return dominant, chosen[:size] if size else chosen, totals


def _gamma_curve(
    model: Any,
    heads: Sequence[Head],
    prompts: Sequence[Prompt],
    grid: Sequence[float],
    metric: str,
    run: RunOptions,
) -> list[dict[str, float]]:
    """Mean metrics on ``prompts`` with ZeroTuning on ``heads`` at each gamma of ``grid``."""
    applied = [
        ZeroTuningConfig(HeadSet(heads), gamma=g).for_model(model) if heads and g != 1.0 else None
        for g in grid
    ]
    rows = []
    for gamma, values in zip(
        grid, values_with(model, prompts, applied, batch_size=run.batch_size), strict=True
    ):
        rows.append({"gamma": float(gamma), **{m: float(v.mean()) for m, v in values.items()}})
    return rows
