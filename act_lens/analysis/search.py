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
resumes from its checkpoint (``SearchConfig.checkpoint``). The result is a
:class:`~act_lens.analysis.search_result.SearchResult`.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
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
from act_lens.analysis.screening import pick_screened, screen_heads
from act_lens.analysis.search_config import SearchConfig
from act_lens.analysis.search_result import SearchResult
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
from act_lens.core.settings import SinkSettings, settings_from
from act_lens.errors import ConfigError, object_from, warn_deprecated
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.arch import fill_windows
from act_lens.hooks.check import require_pattern_editable
from act_lens.hooks.headset import HeadSet, model_identity, provenance_now
from act_lens.runtime.checkpoint import Checkpoint
from act_lens.runtime.options import RunOptions
from act_lens.runtime.pool import use_pool, weights_digest
from act_lens.runtime.precision import resolve_precision

__all__ = [
    "Halving",
    "SearchConfig",
    "SearchResult",
    "Selection",
    "calibration_mix",
    "calibration_split",
    "default_layers",
    "heads_from_effects",
    "joint_curve",
    "pick_size",
    "screen_candidates",
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
_CONFIG_KW = ("metric", "screen", "schedule", "batch_size", "progress", "checkpoint")
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
    **deprecated: Any,
) -> SearchResult:
    """Find the heads whose calibration improves the task, as a set, or say that none does.

    Args:
        model: a TransformerBridge (from ``load_model`` for parallel workers).
        calibration: labelled prompts (``calibration_mix`` / ``calibration_split``; plain
            texts have no gold label to rank by). With ``validation`` given they all rank
            heads; otherwise the joint rule splits off ``selection.val_fraction`` of them.
        layers: candidate layers (default: all but the first two and the last).
        settings: sink settings (default: method.md's).
        selection: the keep-rule (default ``Selection()``: joint, accuracy with a lower bound).
        config: how the search runs (metric, screening, schedule, workers, precision,
            checkpoint: an interrupted search resumes from ``config.checkpoint``).
        validation: prompts that choose the set size (joint rule), e.g. drawn with the task's
            natural label frequencies by ``calibration_split``.
        **deprecated: the keywords of earlier releases, still applied with a
            DeprecationWarning: ``metric``, ``screen``, ``schedule`` (a string or a
            ``Halving``), ``batch_size``, ``progress``, ``checkpoint`` (-> ``config``),
            ``select`` (a rule or a Selection), ``top_k``, ``margin``, ``min_z``,
            ``max_heads`` (-> ``selection``), ``beta``, ``threshold`` (-> ``settings``), and
            ``effects_out`` (a list the HeadEffects is appended to: ``result.effects``).
            Giving one together with its object is a ConfigError.

    Returns:
        A :class:`SearchResult`: ``head_set`` (possibly empty; its provenance holds the
        keep-rule, settings, per-head scores, the validation curve and ``decision``: the
        chosen size, its validation gain with the lower bound, and the reason, also when no
        heads were chosen), ``effects``, ``curve`` and ``timings``.

    Raises:
        ConfigError: a bad metric, rule, layers or keyword, or plain texts as prompts.

    Example:
        >>> calib = calibration_mix(["reviews"], 48)                             # doctest: +SKIP
        >>> result = search_heads(model, calib, config=SearchConfig(screen=48))  # doctest: +SKIP
        >>> result.head_set.provenance["decision"]["reason"]                     # doctest: +SKIP
    """
    start = time.perf_counter()
    effects_out = deprecated.pop("effects_out", None)
    if effects_out is not None:
        warn_deprecated("search_heads(effects_out=[...])", "search_heads(...).effects")
    loose = {k: deprecated.pop(k) for k in _SETTINGS_KW if k in deprecated}
    settings = settings_from(settings, loose=loose, where="search_heads")
    selection, config = _objects(selection, config, deprecated)
    job = _Job.build(model, calibration, validation, layers, settings, selection, config)
    timings: dict[str, float] = {}
    ckpt = Checkpoint(config.checkpoint, job.key())
    t0 = time.perf_counter()
    with use_pool(model, job.n_workers, ray_address=config.ray_address) as pool:
        if pool is not None:  # Ray and the actors' model loads, apart from the screen's time
            pool.wait_ready()
            timings["workers"] = time.perf_counter() - t0
        run = config.run_options(model, pool, ckpt)
        effects, screening, rounds = _single_head_effects(job, run, timings)
        keep, provenance, curve = _select(job, effects, rounds, run, timings)
    provenance.update(screening=screening, workers=job.n_workers)
    timings["total"] = time.perf_counter() - start
    provenance["timings"] = {f"{k}_s": round(v, 2) for k, v in timings.items()}
    ckpt.finish()  # finished: the result is saved by the caller
    if effects_out is not None:
        effects_out.append(effects)
    return SearchResult(HeadSet(keep, provenance), effects, curve, timings)


def _objects(
    selection: Selection | None, config: SearchConfig | None, keywords: dict[str, Any]
) -> tuple[Selection, SearchConfig]:
    """The selection and the config, the loose keywords of earlier releases folded in (with a
    DeprecationWarning; never beside their object)."""
    unknown = sorted(set(keywords) - {*_SELECTION_KW, *_CONFIG_KW})
    if unknown:
        raise ConfigError(
            f"search_heads got unknown keywords {unknown}; the options live in "
            "SearchConfig (config=), Selection (selection=) and SinkSettings (settings=)"
        )
    sel_kw = {k: keywords[k] for k in _SELECTION_KW if k in keywords}
    if isinstance(sel_kw.get("select"), Selection):
        extra = [k for k in sel_kw if k != "select"]
        if extra:
            raise ConfigError(f"select= is a Selection: set {', '.join(extra)} inside it")
        if selection is not None:
            raise ConfigError("pass the Selection once, as selection=")
        warn_deprecated(
            "search_heads(select=Selection(...))", "selection=Selection(...)", stacklevel=4
        )
        selection = sel_kw.pop("select")
    elif "select" in sel_kw:
        sel_kw["rule"] = sel_kw.pop("select")
    selection = object_from("search_heads", "selection", selection, sel_kw, Selection, stacklevel=5)
    cfg_kw = {k: keywords[k] for k in _CONFIG_KW if k in keywords}
    if isinstance(cfg_kw.get("schedule"), Halving):
        cfg_kw.update(schedule="halving", halving=cfg_kw["schedule"])
    config = object_from("search_heads", "config", config, cfg_kw, SearchConfig, stacklevel=5)
    return selection, config


@dataclass(frozen=True)
class _Job:
    """One search's inputs, checked: the model, the two prompt parts and the three objects."""

    model: Any
    layers: list[int]
    search_part: list[Prompt]
    val_part: list[Prompt]
    settings: SinkSettings
    selection: Selection
    config: SearchConfig
    n_workers: int

    @classmethod
    def build(
        cls,
        model: Any,
        calibration: Sequence[Prompt | str],
        validation: Sequence[Prompt] | None,
        layers: Sequence[int] | None,
        settings: SinkSettings,
        selection: Selection,
        config: SearchConfig,
    ) -> "_Job":
        if any(isinstance(p, str) for p in list(calibration) + list(validation or [])):
            raise ConfigError(
                "search_heads ranks heads by the gold label, so it needs labelled prompts, not "
                "plain texts: build them with calibration_mix(...) or Task.build(example)"
            )
        settings = fill_windows(settings, model)
        require_pattern_editable(model)
        chosen = candidate_layers(model, layers)
        search_part: list[Prompt] = list(calibration)  # type: ignore[arg-type]  # checked above
        val_part: list[Prompt] = list(validation or [])
        if selection.rule == "joint" and not val_part:
            search_part, val_part = split_calibration(search_part, selection.val_fraction)
        config = replace(config, schedule=config.schedule_for(len(search_part)))
        n_workers = config.workers_for(model, chosen, len(search_part))
        return cls(model, chosen, search_part, val_part, settings, selection, config, n_workers)

    def key(self) -> str:
        """The checkpoint's fingerprint: weights, ranking prompts and what decides results."""
        recorded = {**self.settings.to_dict(), "layers": tuple(self.layers),
                    **self.config.result_fields()}  # fmt: skip
        return job_key(weights_digest(self.model), self.search_part, recorded)


def candidate_layers(model: Any, layers: Sequence[int] | None) -> list[int]:
    """``layers`` sorted, or the default candidates; a ConfigError when there are none."""
    chosen = default_layers(int(model.cfg.n_layers)) if layers is None else sorted(set(layers))
    if not chosen:
        raise ConfigError(
            f"no candidate layers: the default skips the first two and the last layer, which "
            f"leaves none of this model's {model.cfg.n_layers}; pass layers= explicitly"
        )
    return chosen


def _select(
    job: _Job,
    effects: HeadEffects,
    rounds: list[dict[str, Any]] | None,
    run: RunOptions,
    timings: dict[str, float],
) -> tuple[list[tuple[int, int]], dict[str, Any], list[dict[str, Any]]]:
    """The keep-rule applied to the single-head scores: the heads, the provenance, the curve."""
    model, selection, config = job.model, job.selection, job.config
    scores = head_scores(effects, config.metric)
    finalists = scores
    if rounds is not None:  # heads eliminated by halving are clearly behind: not candidates
        seen = rounds[-1]["prompts_seen"]
        finalists = {lh: s for lh, s in scores.items() if s["n"] == seen}
    ranked = ranked_candidates(finalists, selection)
    provenance = _provenance(job, scores)
    if rounds is not None:
        provenance["rounds"] = rounds
        provenance["exhaustive_evaluations"] = len(scores) and rounds[0]["heads_in"] * len(
            job.search_part
        )
    t0 = time.perf_counter()
    curve: list[dict[str, Any]] = []
    if selection.rule == "joint":
        order = ranked[: selection.max_heads] if selection.max_heads else ranked
        curve = joint_curve(
            model, order, job.val_part, settings=job.settings, metric=config.metric,
            confidence=selection.confidence, run=run,
        )  # fmt: skip
        chosen = decision(curve, config.metric, selection.confidence)
        keep = order[: chosen["selected_size"]]
        provenance.update(
            validation_set=describe_calibration(job.val_part),
            candidate_order=[f"{la}.{h}" for la, h in order],
            curve=curve,
            selected_size=chosen["selected_size"],
            decision=chosen,
        )
    elif selection.rule == "top_k":
        keep = ranked[: selection.top_k]
    else:
        keep = ranked[: selection.max_heads] if selection.max_heads else ranked
    if job.val_part and selection.rule != "joint":
        provenance["validation"] = validate_head_set(
            model, HeadSet(keep), job.val_part, settings=job.settings, batch_size=config.batch_size
        )
    timings["curve"] = time.perf_counter() - t0
    return keep, provenance, curve


def _provenance(job: _Job, scores: dict[tuple[int, int], dict[str, float]]) -> dict[str, Any]:
    config = job.config
    return {
        **provenance_now(),
        "model": model_identity(job.model),
        "method": "act_lens.search_heads",
        "keep_rule": job.selection.describe(config.metric),
        "selection": asdict(job.selection),
        "search": config.to_dict(),
        "precision": resolve_precision(config.precision, job.model.cfg.device),
        "metric": config.metric,
        **{k: v for k, v in job.settings.to_dict().items() if k != "windows"},
        "candidate_layers": list(job.layers),
        "calibration": describe_calibration(job.search_part),
        "per_head": {f"{la}.{h}": s for (la, h), s in scores.items()},
        "schedule": "exhaustive"
        if config.schedule == "exhaustive"
        else {"halving": asdict(config.halving)},  # fmt: skip
        "evaluations": sum(s["n"] for s in scores.values()),
    }


def _single_head_effects(
    job: _Job, run: RunOptions, timings: dict[str, float]
) -> tuple[HeadEffects, dict[str, float] | None, list[dict[str, Any]] | None]:
    """Every candidate head calibrated alone (exact engine), after optional screening, on
    every prompt (work units, in-process or on workers) or under successive halving.
    Returns the effects, the screening estimates and the halving rounds (None: exhaustive)."""
    model, prompts, config = job.model, job.search_part, job.config
    t0 = time.perf_counter()
    heads_by_layer, screening = screen_candidates(
        model, job.layers, config.screen,
        lambda: screen_heads(model, prompts, layers=job.layers, settings=job.settings,
                             metric=config.metric, run=run),
    )  # fmt: skip
    timings["screen"] = time.perf_counter() - t0
    if heads_by_layer is None:
        heads_by_layer = {la: list(range(int(model.cfg.n_heads))) for la in job.layers}
    t0 = time.perf_counter()
    rounds = None
    if config.schedule == "halving":
        candidates = [(la, h) for la, hs in sorted(heads_by_layer.items()) for h in sorted(hs)]
        effects, rounds = halving_effects(
            model, prompts, candidates=candidates, settings=job.settings, metric=config.metric,
            schedule=config.halving, margin=job.selection.margin, run=run,
        )  # fmt: skip
    else:
        effects = unit_effects(
            model, prompts, strategy="act", heads=heads_by_layer, settings=job.settings, run=run
        )
    timings["effects"] = time.perf_counter() - t0
    return effects, screening, rounds


def screen_candidates(
    model: Any,
    layers: Sequence[int],
    screen: int | None,
    estimate: Callable[[], torch.Tensor],
    *,
    magnitude: bool = False,
) -> tuple[dict[int, list[int]] | None, dict[str, float] | None]:
    """The ``screen`` heads of ``layers`` with the best first-order ``estimate()`` (a
    ``[layer, head]`` tensor; ``magnitude``: the largest ``|estimate|``), as ``{layer: heads}``
    and their estimates for provenance; ``(None, None)`` when nothing would be left out.

    Example:
        >>> screen_candidates(model, [2, 3], 48, lambda: screen_heads(model, p, layers=[2, 3]))  # doctest: +SKIP
    """
    if screen is None or screen >= len(layers) * int(model.cfg.n_heads):
        return None, None  # nothing to leave out
    return pick_screened(estimate(), layers, screen, magnitude=magnitude)
