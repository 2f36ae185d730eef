"""ACT head search: single-head effects on a calibration set, then a head set that adds up.

1. Every candidate head is calibrated alone on the search part of the calibration set (the
   exact engine, optionally after screening by attribution patching, exhaustively or under
   successive halving) and scored by the search metric, by default ``choice_logprob``: the
   gold choice's log-prob after a log-softmax over the task's choices only, the quantity the
   paper's scoring compares.
2. A keep-rule turns the single-head gains into a set (:mod:`act_lens.analysis.selection`):
   ``"joint"`` (default; the size with the best validation metric when the heads are applied
   together), ``"threshold"`` or ``"top_k"``.

Everything that decided the set is recorded in the HeadSet's provenance; an interrupted search
resumes from its per-layer checkpoint.
"""

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from act_lens.analysis.calibration_set import (
    calibration_mix,
    calibration_split,
    describe_calibration,
    split_calibration,
)
from act_lens.analysis.effects import HeadEffects
from act_lens.analysis.halving import Halving, halving_effects
from act_lens.analysis.screening import screen_heads
from act_lens.analysis.search_config import SearchConfig
from act_lens.analysis.selection import (
    Selection,
    decision,
    head_scores,
    heads_from_effects,
    joint_curve,
    pick_size,
    ranked_candidates,
    size_grid,
    validate_head_set,
)
from act_lens.analysis.units import job_key, unit_effects
from act_lens.core.settings import SinkSettings, resolve_settings
from act_lens.errors import ConfigError
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.arch import fill_windows
from act_lens.hooks.check import require_pattern_editable
from act_lens.hooks.headset import HeadSet, model_identity, provenance_now
from act_lens.runtime.checkpoint import Checkpoint
from act_lens.runtime.pool import WorkerPool, use_pool, weights_digest
from act_lens.runtime.precision import precision_context, resolve_precision

__all__ = [
    "Halving",
    "SearchConfig",
    "Selection",
    "calibration_mix",
    "calibration_split",
    "default_layers",
    "heads_from_effects",
    "joint_curve",
    "pick_size",
    "screen_heads",
    "search_heads",
    "size_grid",
    "validate_head_set",
]


def default_layers(n_layers: int) -> list[int]:
    """The paper's candidate layers: all but the first two and the last."""
    return list(range(2, max(n_layers - 1, 2)))


# The loose keywords of earlier releases, and the object each one belongs to.
_SELECTION_KW = ("select", "top_k", "margin", "min_z", "max_heads")
_CONFIG_KW = ("metric", "screen", "schedule", "batch_size", "progress")
_SETTINGS_KW = ("beta", "threshold")


def search_heads(
    model: Any,
    calibration: Sequence[Prompt | str],
    *,
    layers: Sequence[int] | None = None,
    settings: SinkSettings | None = None,
    selection: Selection | None = None,
    config: SearchConfig | None = None,
    validation: Sequence[Prompt] | None = None,
    checkpoint: "str | Path | None" = None,
    effects_out: list[HeadEffects] | None = None,
    **keywords: Any,
) -> HeadSet:
    """Find the heads whose calibration improves the task, as a set, or say that none does.

    Args:
        model: a TransformerBridge (from ``load_model`` for parallel workers).
        calibration: labelled prompts (``calibration_mix`` / ``calibration_split``; plain
            texts have no gold label to rank by). With ``validation`` given they all rank
            heads; otherwise the joint rule splits off ``selection.val_fraction`` of them.
        layers: candidate layers (default: all but the first two and the last).
        settings: sink settings (default: method.md's).
        selection: the keep-rule (default ``Selection()``: joint, accuracy with a lower bound).
        config: how the search runs (metric, screening, schedule, workers, precision).
        validation: prompts that choose the set size (joint rule), e.g. drawn with the task's
            natural label frequencies by ``calibration_split``.
        checkpoint: file of finished work units; an interrupted search resumes from it.
        effects_out: if a list is given, the search's HeadEffects is appended to it.
        **keywords: the loose keywords of earlier releases, still accepted: ``metric``,
            ``screen``, ``schedule`` (a string or a ``Halving``), ``batch_size``, ``progress``
            (-> ``config``), ``select`` (a rule or a Selection), ``top_k``, ``margin``,
            ``min_z``, ``max_heads`` (-> ``selection``), ``beta``, ``threshold``
            (-> ``settings``). Giving one together with its object is a ConfigError.

    Returns:
        The HeadSet, possibly empty; its provenance holds the keep-rule, settings, per-head
        scores, the validation curve and ``decision`` (the chosen size, its validation gain
        with the lower bound, and the reason, also when no heads were chosen).

    Raises:
        ConfigError: a bad metric, rule, layers or keyword, or plain texts as prompts.

    Example:
        >>> calib = calibration_mix(["reviews"], 48)                     # doctest: +SKIP
        >>> hs = search_heads(model, calib, config=SearchConfig(screen=48))  # doctest: +SKIP
        >>> hs.provenance["decision"]["reason"]                           # doctest: +SKIP
    """
    settings, selection, config = _objects(settings, selection, config, keywords)
    if any(isinstance(p, str) for p in list(calibration) + list(validation or [])):
        raise ConfigError(
            "search_heads ranks heads by the gold label, so it needs labelled prompts, not plain "
            "texts: build them with calibration_mix(...) or Task.build(example)"
        )
    settings = fill_windows(settings, model)
    require_pattern_editable(model)
    layers = default_layers(int(model.cfg.n_layers)) if layers is None else sorted(set(layers))
    if not layers:
        raise ConfigError(
            f"no candidate layers: the default skips the first two and the last layer, which leaves "
            f"none of this model's {model.cfg.n_layers}; pass layers= explicitly"
        )
    search_part: list[Prompt] = list(calibration)  # type: ignore[arg-type]  # checked above
    val_part: list[Prompt] = list(validation or [])  # type: ignore[arg-type]
    if selection.rule == "joint" and not val_part:
        search_part, val_part = split_calibration(search_part, selection.val_fraction)
    n_workers = config.workers_for(model, layers, len(search_part))
    if n_workers > 1 and config.schedule == "halving":
        raise ConfigError("schedule='halving' runs in-process: use workers=1 or 'exhaustive'")
    timings: dict[str, float] = {}
    with use_pool(model, n_workers, ray_address=config.ray_address) as pool:
        effects, screening, rounds = _single_head_effects(
            model, search_part, layers, settings, config, selection.margin, checkpoint, pool,
            timings,
        )  # fmt: skip
        if effects_out is not None:
            effects_out.append(effects)
        scores = head_scores(effects, config.metric)
        finalists = scores
        if rounds is not None:  # heads eliminated by halving are clearly behind: not candidates
            seen = rounds[-1]["prompts_seen"]
            finalists = {lh: s for lh, s in scores.items() if s["n"] == seen}
        ranked = ranked_candidates(finalists, selection)
        provenance = _provenance(model, selection, config, settings, layers, search_part, scores)
        provenance.update(screening=screening, workers=n_workers)
        if rounds is not None:
            provenance["rounds"] = rounds
            provenance["exhaustive_evaluations"] = len(scores) and rounds[0]["heads_in"] * len(
                search_part
            )
        t0 = time.perf_counter()
        if selection.rule == "joint":
            order = ranked[: selection.max_heads] if selection.max_heads else ranked
            curve = joint_curve(
                model, order, val_part, settings=settings, metric=config.metric,
                batch_size=config.batch_size, confidence=selection.confidence,
                workers=pool, precision=config.precision,
            )  # fmt: skip
            chosen = decision(curve, config.metric, selection.confidence)
            keep = order[: chosen["selected_size"]]
            provenance.update(
                validation_set=describe_calibration(val_part),
                candidate_order=[f"{la}.{h}" for la, h in order],
                curve=curve,
                selected_size=chosen["selected_size"],
                decision=chosen,
            )
        elif selection.rule == "top_k":
            keep = ranked[: selection.top_k]
        else:
            keep = ranked[: selection.max_heads] if selection.max_heads else ranked
        if val_part and selection.rule != "joint":
            provenance["validation"] = validate_head_set(
                model, HeadSet(keep), val_part, settings=settings, batch_size=config.batch_size
            )
        timings["validation_s"] = time.perf_counter() - t0
    provenance["timings"] = {k: round(v, 2) for k, v in timings.items()}
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)  # finished: the head set is the result
    return HeadSet(keep, provenance)


def _objects(
    settings: SinkSettings | None,
    selection: Selection | None,
    config: SearchConfig | None,
    keywords: dict[str, Any],
) -> tuple[SinkSettings, Selection, SearchConfig]:
    """The three objects, the loose keywords of earlier releases folded in (never both)."""
    known = {*_SELECTION_KW, *_CONFIG_KW, *_SETTINGS_KW}
    unknown = sorted(set(keywords) - known)
    if unknown:
        raise ConfigError(
            f"search_heads got unknown keywords {unknown}; the options live in "
            "SearchConfig (config=), Selection (selection=) and SinkSettings (settings=)"
        )
    for group, obj, name in ((_SELECTION_KW, selection, "selection"),
                             (_CONFIG_KW, config, "config"), (_SETTINGS_KW, settings, "settings")):  # fmt: skip
        both = [k for k in group if k in keywords]
        if obj is not None and both:
            raise ConfigError(f"pass {', '.join(both)} inside {name}=, not beside it")
    select = keywords.get("select", "joint")
    if isinstance(select, Selection):
        extra = [k for k in _SELECTION_KW[1:] if k in keywords]
        if extra:
            raise ConfigError(f"select= is a Selection: set {', '.join(extra)} inside it")
        selection = select
    elif selection is None:
        selection = Selection(select, keywords.get("margin", 0.0), keywords.get("min_z"),
                              keywords.get("max_heads"), keywords.get("top_k"))  # fmt: skip
    if config is None:  # the defaults, with any keyword of earlier releases
        kw: dict[str, Any] = {
            k: keywords[k] for k in ("metric", "screen", "batch_size", "progress") if k in keywords
        }
        schedule = keywords.get("schedule", "exhaustive")
        if isinstance(schedule, Halving):
            kw.update(schedule="halving", halving=schedule)
        else:
            kw["schedule"] = schedule
        config = SearchConfig(**kw)
    settings = resolve_settings(
        settings, beta=keywords.get("beta"), threshold=keywords.get("threshold")
    )
    return settings, selection, config


def _provenance(
    model: Any,
    selection: Selection,
    config: SearchConfig,
    settings: SinkSettings,
    layers: Sequence[int],
    search_part: Sequence[Prompt],
    scores: dict[tuple[int, int], dict[str, float]],
) -> dict[str, Any]:
    return {
        **provenance_now(),
        "model": model_identity(model),
        "method": "act_lens.search_heads",
        "keep_rule": selection.describe(config.metric),
        "selection": asdict(selection),
        "search": config.to_dict(),
        "precision": resolve_precision(config.precision, model.cfg.device),
        "metric": config.metric,
        **{k: v for k, v in settings.to_dict().items() if k != "windows"},
        "candidate_layers": list(layers),
        "calibration": describe_calibration(search_part),
        "per_head": {f"{la}.{h}": s for (la, h), s in scores.items()},
        "schedule": "exhaustive"
        if config.schedule == "exhaustive"
        else {"halving": asdict(config.halving)},  # fmt: skip
        "evaluations": sum(s["n"] for s in scores.values()),
    }


def _single_head_effects(
    model: Any,
    prompts: Sequence[Prompt],
    layers: Sequence[int],
    settings: SinkSettings,
    config: SearchConfig,
    margin: float,
    checkpoint: "str | Path | None",
    pool: WorkerPool | None,
    timings: dict[str, float],
) -> tuple[HeadEffects, dict[str, float] | None, list[dict[str, Any]] | None]:
    """Every candidate head calibrated alone (exact engine), after optional screening, on
    every prompt (work units, in-process or on workers) or under successive halving.
    Returns the effects, the screening estimates and the halving rounds (None: exhaustive)."""
    recorded = {**settings.to_dict(), "layers": tuple(layers), **config.to_dict()}
    for k in ("workers", "ray_address", "progress"):  # how it runs, not what it computes
        recorded.pop(k)
    key = job_key(weights_digest(model), prompts, recorded)
    if config.schedule == "halving":
        heads_by_layer, screening = _screen(
            model, prompts, layers, settings, config, None, None, timings
        )
        n_heads = int(model.cfg.n_heads)
        candidates = (
            [(la, h) for la, hs in sorted(heads_by_layer.items()) for h in sorted(hs)]
            if heads_by_layer is not None
            else [(la, h) for la in layers for h in range(n_heads)]
        )
        t0 = time.perf_counter()
        with precision_context(config.precision, model):
            effects, rounds = halving_effects(
                model, prompts, candidates=candidates, settings=settings, metric=config.metric,
                schedule=config.halving, margin=margin, checkpoint=checkpoint, key=key,
                batch_size=config.batch_size, progress=config.progress,
            )  # fmt: skip
        timings["effects_s"] = time.perf_counter() - t0
        return effects, screening, rounds
    ckpt = Checkpoint(checkpoint, key)
    heads_by_layer, screening = _screen(
        model, prompts, layers, settings, config, pool, ckpt, timings
    )
    t0 = time.perf_counter()
    effects = unit_effects(
        model, prompts, strategy="act", layers=layers, settings=settings,
        heads_by_layer=heads_by_layer, batch_size=config.batch_size, pool=pool,
        precision=config.precision, checkpoint=ckpt,
    )  # fmt: skip
    timings["effects_s"] = time.perf_counter() - t0
    return effects, screening, None


def _screen(
    model: Any,
    prompts: Sequence[Prompt],
    layers: Sequence[int],
    settings: SinkSettings,
    config: SearchConfig,
    pool: WorkerPool | None,
    ckpt: Checkpoint | None,
    timings: dict[str, float],
) -> tuple[dict[int, list[int]] | None, dict[str, float] | None]:
    """The ``config.screen`` heads with the best first-order estimate (checkpointed: a resumed
    search evaluates the very heads it screened before)."""
    if config.screen is None or config.screen >= len(layers) * int(model.cfg.n_heads):
        return None, None  # nothing to leave out
    t0 = time.perf_counter()
    if ckpt is not None and "screen" in ckpt:
        est = ckpt.get("screen")
    else:
        est = screen_heads(
            model, prompts, layers=layers, settings=settings, metric=config.metric,
            batch_size=config.batch_size, workers=pool, precision=config.precision,
        )  # fmt: skip
        if ckpt is not None:
            ckpt.put("screen", est)
    timings["screen_s"] = time.perf_counter() - t0
    order = torch.argsort(est.flatten(), descending=True)[: config.screen].tolist()
    n_heads = est.shape[1]
    heads_by_layer: dict[int, list[int]] = {}
    for i in order:
        heads_by_layer.setdefault(layers[i // n_heads], []).append(i % n_heads)
    screening = {f"{layers[i // n_heads]}.{i % n_heads}": float(est.flatten()[i]) for i in order}
    return heads_by_layer, screening
