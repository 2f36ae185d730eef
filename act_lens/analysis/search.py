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

import hashlib
import io
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import torch

from act_lens.analysis.ablation import head_effects
from act_lens.analysis.calibration_set import (
    calibration_mix,
    describe_calibration,
    split_calibration,
)
from act_lens.analysis.effects import DEFAULT_METRIC, HeadEffects, check_metric
from act_lens.analysis.halving import Halving, halving_effects
from act_lens.analysis.screening import screen_heads
from act_lens.analysis.selection import (
    Selection,
    SelectRule,
    head_scores,
    heads_from_effects,
    joint_curve,
    pick_size,
    ranked_candidates,
    size_grid,
    validate_head_set,
)
from act_lens.core.settings import SinkSettings, resolve_settings
from act_lens.errors import ConfigError, DataError
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.arch import fill_windows
from act_lens.hooks.check import require_pattern_editable
from act_lens.hooks.headset import HeadSet, model_identity, provenance_now
from act_lens.io import atomic_write_bytes

__all__ = [
    "Halving",
    "Selection",
    "calibration_mix",
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


def search_heads(
    model: Any,
    calibration: Sequence[Prompt],
    *,
    layers: Sequence[int] | None = None,
    metric: str = DEFAULT_METRIC,
    select: "SelectRule | Selection" = "joint",
    top_k: int | None = None,
    margin: float = 0.0,
    min_z: float | None = None,
    max_heads: int | None = None,
    settings: SinkSettings | None = None,
    beta: float | None = None,
    threshold: float | None = None,
    screen: int | None = None,
    schedule: "Literal['exhaustive', 'halving'] | Halving" = "exhaustive",
    validation: Sequence[Prompt] | None = None,
    checkpoint: "str | Path | None" = None,
    batch_size: int = 8,
    progress: bool = True,
    effects_out: list[HeadEffects] | None = None,
) -> HeadSet:
    """Find the heads whose calibration improves the calibration metric, as a set.

    Args:
        model: a TransformerBridge.
        calibration: calibration prompts (``calibration_mix``; class-balanced by default).
        layers: candidate layers (default: all but the first two and the last).
        metric: ``"choice_logprob"`` (default), ``"vocab_logprob"``, ``"margin"`` or
            ``"accuracy"`` (``act_lens.analysis.metrics.METRIC_HELP``).
        select: ``"joint"`` (default), ``"threshold"``, ``"top_k"``, or a Selection; the
            keyword conveniences ``top_k``, ``margin``, ``min_z``, ``max_heads`` fill it.
        settings: sink settings (default: method.md's); ``beta``/``threshold`` override them.
        screen: evaluate exactly only the ``screen`` heads with the best first-order estimate.
        schedule: ``"exhaustive"`` (default: every candidate on every search prompt) or
            ``"halving"`` / a ``Halving``: successive halving over heads and prompts
            (``act_lens.analysis.halving``; rounds in ``provenance["rounds"]``).
        validation: prompts for the joint selection (default: split off ``calibration``).
        checkpoint: file for per-layer progress; an interrupted search resumes from it.
        batch_size: prompts per batch.
        effects_out: if a list is given, the HeadEffects of the search is appended to it.

    Returns:
        The HeadSet, with the keep-rule, settings, per-head scores and (joint) the validation
        curve in its provenance.

    Raises:
        ConfigError: a bad metric (old names are refused with the new ones), rule or layers.

    Example:
        >>> calib = calibration_mix(["reviews"], 48)                     # doctest: +SKIP
        >>> hs = search_heads(model, calib)                              # doctest: +SKIP
        >>> hs.provenance["selected_size"], hs.provenance["curve"][:2]    # doctest: +SKIP
    """
    check_metric(metric)
    if isinstance(select, Selection):
        selection = select
    else:
        selection = Selection(select, margin, min_z, max_heads, top_k)
    settings = fill_windows(resolve_settings(settings, beta=beta, threshold=threshold), model)
    require_pattern_editable(model)
    layers = default_layers(int(model.cfg.n_layers)) if layers is None else sorted(set(layers))
    if not layers:
        raise ConfigError(
            f"no candidate layers: the default skips the first two and the last layer, which leaves "
            f"none of this model's {model.cfg.n_layers}; pass layers= explicitly"
        )
    search_part, val_part = list(calibration), list(validation or [])
    if selection.rule == "joint" and not val_part:
        search_part, val_part = split_calibration(calibration, selection.val_fraction)
    if schedule == "halving":
        schedule = Halving()
    elif schedule != "exhaustive" and not isinstance(schedule, Halving):
        raise ConfigError(
            f"schedule must be 'exhaustive', 'halving' or a Halving, got {schedule!r}"
        )
    effects, screening, rounds = _single_head_effects(
        model, search_part, layers, settings, metric, screen, schedule, selection.margin,
        checkpoint, batch_size, progress,
    )  # fmt: skip
    if effects_out is not None:
        effects_out.append(effects)
    scores = head_scores(effects, metric)
    finalists = scores
    if rounds is not None:  # heads eliminated by halving are clearly behind: not candidates
        seen = rounds[-1]["prompts_seen"]
        finalists = {lh: s for lh, s in scores.items() if s["n"] == seen}
    ranked = ranked_candidates(finalists, selection)
    provenance: dict[str, Any] = {
        **provenance_now(),
        "model": model_identity(model),
        "method": "act_lens.search_heads",
        "keep_rule": selection.describe(metric),
        "selection": asdict(selection),
        "metric": metric,
        **{k: v for k, v in settings.to_dict().items() if k != "windows"},
        "candidate_layers": list(layers),
        "calibration": describe_calibration(search_part),
        "per_head": {f"{la}.{h}": s for (la, h), s in scores.items()},
        "screening": screening,
        "schedule": "exhaustive" if rounds is None else {"halving": asdict(schedule)},  # type: ignore[arg-type]
        "evaluations": sum(s["n"] for s in scores.values()),
    }
    if rounds is not None:
        provenance["rounds"] = rounds
        provenance["exhaustive_evaluations"] = len(scores) and rounds[0]["heads_in"] * len(
            search_part
        )
    if selection.rule == "joint":
        order = ranked[: selection.max_heads] if selection.max_heads else ranked
        curve = joint_curve(
            model, order, val_part, settings=settings, metric=metric, batch_size=batch_size
        )
        size = pick_size(curve, metric)
        keep = order[:size]
        provenance.update(
            validation_set=describe_calibration(val_part),
            candidate_order=[f"{la}.{h}" for la, h in order],
            curve=curve,
            selected_size=size,
        )
    elif selection.rule == "top_k":
        keep = ranked[: selection.top_k]
    else:
        keep = ranked[: selection.max_heads] if selection.max_heads else ranked
    head_set = HeadSet(keep, provenance)
    if val_part and selection.rule != "joint":
        provenance["validation"] = validate_head_set(
            model, head_set, val_part, settings=settings, batch_size=batch_size
        )
        head_set = HeadSet(keep, provenance)
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)  # finished: the head set is the result
    return head_set


def _single_head_effects(
    model: Any,
    prompts: Sequence[Prompt],
    layers: Sequence[int],
    settings: SinkSettings,
    metric: str,
    screen: int | None,
    schedule: "str | Halving",
    margin: float,
    checkpoint: "str | Path | None",
    batch_size: int,
    progress: bool,
) -> tuple[HeadEffects, dict[str, float] | None, list[dict[str, Any]] | None]:
    """Every candidate head calibrated alone (exact engine), after optional screening,
    on every prompt or under successive halving. Returns the effects, the screening
    estimates and the halving rounds (None: exhaustive)."""
    heads_by_layer: dict[int, list[int]] | None = None
    screening = None
    if screen is not None:
        est = screen_heads(
            model, prompts, layers=layers, settings=settings, metric=metric, batch_size=batch_size
        )
        order = torch.argsort(est.flatten(), descending=True)[:screen].tolist()
        n_heads = est.shape[1]
        heads_by_layer = {}
        for i in order:
            heads_by_layer.setdefault(layers[i // n_heads], []).append(i % n_heads)
        screening = {
            f"{layers[i // n_heads]}.{i % n_heads}": float(est.flatten()[i]) for i in order
        }
    recorded = asdict(schedule) if isinstance(schedule, Halving) else schedule
    key = _settings_key(
        model,
        prompts,
        {
            **settings.to_dict(),
            "layers": tuple(layers),
            "screen": screen,
            "schedule": repr(recorded),
        },
    )
    if isinstance(schedule, Halving):
        n_heads = int(model.cfg.n_heads)
        candidates = (
            [(la, h) for la, hs in sorted(heads_by_layer.items()) for h in sorted(hs)]
            if heads_by_layer is not None
            else [(la, h) for la in layers for h in range(n_heads)]
        )
        effects, rounds = halving_effects(
            model, prompts, candidates=candidates, settings=settings, metric=metric,
            schedule=schedule, margin=margin, checkpoint=checkpoint, key=key,
            batch_size=batch_size, progress=progress,
        )  # fmt: skip
        return effects, screening, rounds
    ckpt = Path(checkpoint) if checkpoint is not None else None
    done = _load_checkpoint(ckpt, key) if ckpt is not None else {}

    def save_layer(layer: int, values: dict[str, torch.Tensor]) -> None:
        done[layer] = values
        if ckpt is not None:
            buf = io.BytesIO()
            torch.save({"key": key, "layers": {str(k): v for k, v in done.items()}}, buf)
            atomic_write_bytes(ckpt, buf.getvalue())

    effects = head_effects(
        model,
        prompts,
        strategy="act",
        layers=layers,
        settings=settings,
        batch_size=batch_size,
        progress=progress,
        on_layer_done=save_layer,
        skip_layers=done,
        heads_by_layer=heads_by_layer,
    )
    return effects, screening, None


def _settings_key(model: Any, prompts: Sequence[Prompt], settings: dict[str, Any]) -> str:
    digest = hashlib.sha256(repr(sorted(settings.items())).encode())
    digest.update(model_identity(model)["weights_sha256"].encode())
    for p in prompts:
        digest.update(p.uid.encode())
        digest.update(p.text.encode())
    return digest.hexdigest()[:24]


def _load_checkpoint(path: Path, key: str) -> dict[int, dict[str, torch.Tensor]]:
    if not path.exists():
        return {}
    try:
        state = torch.load(path, weights_only=True)
    except Exception as err:  # noqa: BLE001 - a damaged checkpoint is reported, not used
        raise DataError(
            f"checkpoint {path} cannot be read ({err}); delete it to start over"
        ) from err
    if state.get("key") != key:
        raise ConfigError(
            f"checkpoint {path} belongs to a search with other settings, model or calibration "
            "prompts; delete it or choose another checkpoint path"
        )
    return {int(k): v for k, v in state["layers"].items()}
