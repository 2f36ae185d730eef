"""ACT head search: single-head effects on a calibration set, then a head set that adds up.

1. Every candidate head is calibrated alone on the search part of the calibration set (the
   exact engine, optionally after screening by attribution patching) and scored by the
   search metric, by default ``choice_logprob``: the gold choice's log-prob after a
   log-softmax over the task's choices only, the quantity the paper's scoring compares.
2. A keep-rule turns the single-head gains into a set:

   * ``"joint"`` (default): heads with a positive gain, in order of gain, are added one size
     at a time, and each prefix is applied *together* to a validation part split off the
     calibration set (never the evaluation split); the size with the best validation metric
     wins, 0 (no heads) included. The union of individually helpful heads can over-correct;
     this curve shows where (``provenance["curve"]``, drawn by ``figures.plot_selection_curve``).
   * ``"threshold"``: every head whose gain exceeds ``margin`` (and ``min_z`` standard
     errors), at most ``max_heads`` of the largest.
   * ``"top_k"``: the ``top_k`` heads with the largest gains.

Everything that decided the set is recorded in the HeadSet's provenance.
"""

import hashlib
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from act_lens.analysis.ablation import ScoredPrompts, head_effects
from act_lens.analysis.calibration_set import (
    calibration_mix,
    describe_calibration,
    split_calibration,
)
from act_lens.analysis.effects import DEFAULT_METRIC, HeadEffects, check_metric, metric_values
from act_lens.analysis.halving import Halving, halving_effects
from act_lens.analysis.screening import screen_heads
from act_lens.core.settings import SinkSettings, resolve_settings
from act_lens.errors import ConfigError, DataError
from act_lens.evaluation.scoring import last_token_logprobs
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.act import ActConfig
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


def default_layers(n_layers: int) -> list[int]:
    """The paper's candidate layers: all but the first two and the last."""
    return list(range(2, max(n_layers - 1, 2)))


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
    scores = _scores(effects, metric)
    finalists = scores
    if rounds is not None:  # heads eliminated by halving are clearly behind: not candidates
        seen = rounds[-1]["prompts_seen"]
        finalists = {lh: s for lh, s in scores.items() if s["n"] == seen}
    ranked = _candidates(finalists, selection)
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
    ranked = _candidates(_scores(effects, metric), selection)
    size = selection.top_k if selection.rule == "top_k" else selection.max_heads
    keep = ranked[:size] if size else ranked
    return HeadSet(keep, {"keep_rule": selection.describe(metric), "metric": metric})


def _scores(effects: HeadEffects, metric: str) -> dict[tuple[int, int], dict[str, float]]:
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


def _candidates(
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
