"""ACT head search (the paper's procedure) with optional attribution screening and checkpoints.

Each candidate head is calibrated alone on a calibration set; a head is kept when its
calibration raises the calibration metric by more than ``margin`` (and, with ``min_z``, by more
than ``min_z`` standard errors). The keep-rule is recorded in the HeadSet's provenance.
"""

import hashlib
import io
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from act_lens.ablation import ScoredPrompts, head_effects
from act_lens.act import ActConfig
from act_lens.arch import layer_windows
from act_lens.batching import make_batches, pad_id_of
from act_lens.check import require_pattern_editable
from act_lens.core.calibrate import calibrate_pattern
from act_lens.core.sinks import detect_sinks
from act_lens.effects import METRICS, HeadEffects, metric_values
from act_lens.errors import ConfigError, DataError
from act_lens.headset import HeadSet, model_identity, provenance_now
from act_lens.hooknames import pattern_hook
from act_lens.io import atomic_write_bytes
from act_lens.scoring import keep_last_positions, last_token_logprobs
from act_lens.tasks import Prompt, get_task


def default_layers(n_layers: int) -> list[int]:
    """The paper's candidate layers: all but the first two and the last."""
    return list(range(2, max(n_layers - 1, 2)))


def calibration_mix(
    tasks: "Mapping[str, int | float] | Sequence[str]",
    n: int,
    *,
    data: Any = None,
    split: str | None = None,
    seed: int = 0,
    shots: int = 0,
) -> list[Prompt]:
    """A calibration set mixing several tasks' training prompts (zero-shot by default).

    Args:
        tasks: task names, or ``{name: weight}`` (weights need not sum to 1).
        n: total number of prompts.
        data: data directory (the built-in task needs none).
        split: split to draw from (default: each task's train split).
        seed: sampling seed (examples and demonstrations).
        shots: demonstrations per prompt, from the same split.

    Example:
        >>> prompts = calibration_mix({"sst2": 1, "agnews": 1}, 200, data="../shared/data")  # doctest: +SKIP
    """
    weights = dict(tasks) if isinstance(tasks, Mapping) else {t: 1.0 for t in tasks}
    if not weights or n < 1 or any(w <= 0 for w in weights.values()):
        raise ConfigError("calibration_mix needs tasks with positive weights and n >= 1")
    total = sum(weights.values())
    counts = {t: int(n * w / total) for t, w in weights.items()}
    for t in list(weights)[: n - sum(counts.values())]:
        counts[t] += 1
    rng = random.Random(seed)
    prompts: list[Prompt] = []
    for name, k in counts.items():
        task = get_task(name)
        split_name = split or task.train_split
        if split_name is None:
            raise DataError(f"task {name!r} has no train split here; pass split= explicitly")
        pool = task.load(data, split_name)
        chosen = rng.sample(pool, min(k, len(pool)))
        for ex in chosen:
            demos = (
                task.sample_demos(pool, shots, rng.randrange(1 << 30), exclude_uid=ex.uid)
                if shots
                else []
            )
            prompts.append(task.build(ex, demos))
    rng.shuffle(prompts)
    return prompts


def screen_heads(
    model: Any,
    prompts: Sequence[Prompt],
    *,
    layers: Sequence[int],
    beta: float = 0.4,
    threshold: float = 0.1,
    rule: str = "mean",
    redistribute: str = "all",
    metric: str = "gold_logprob",
    batch_size: int = 8,
) -> Tensor:
    """First-order estimate of every head's ACT effect: ``sum(grad_pattern * (calibrated - pattern))``.

    One forward and one backward per batch (attribution patching). Returns ``[layer, head]``
    estimates of the mean metric change. ``accuracy`` is not differentiable, so it is screened
    by ``gold_logprob``.
    """
    grad_metric = "gold_logprob" if metric == "accuracy" else metric
    data = ScoredPrompts.from_prompts(model, prompts)
    n_heads = int(model.cfg.n_heads)
    est = torch.zeros(len(layers), n_heads)
    windows = layer_windows(model)
    device = model.cfg.device
    for batch in make_batches(data.tokens, batch_size, pad_id_of(model.tokenizer)):
        tokens, mask = batch.tokens.to(device), batch.attention_mask.to(device)
        store: dict[int, Tensor] = {}

        def leaf(x: Tensor, hook: Any) -> Tensor:
            return x.detach().requires_grad_(True)

        def keep(p: Tensor, hook: Any, store: dict[int, Tensor] = store) -> Tensor:
            store[int(hook.name.split(".")[1])] = p
            return p

        hooks = [
            ("hook_embed", leaf),
            *[(pattern_hook(la), keep) for la in layers],
            keep_last_positions(1),
        ]
        with torch.enable_grad():
            logits = model.run_with_hooks(tokens, attention_mask=mask, fwd_hooks=hooks)
            lp = torch.log_softmax(logits[:, -1].float(), dim=-1)
            values = metric_values(lp, *data.choice_tensor(list(batch.index)))[grad_metric]
            grads = torch.autograd.grad(values.sum(), [store[la] for la in layers])
        for li, (la, g) in enumerate(zip(layers, grads, strict=True)):
            p = store[la].detach()
            sinks = detect_sinks(
                p,
                threshold=threshold,
                rule=rule,  # type: ignore[arg-type]
                attention_mask=mask,
                window=windows.get(la),
            )
            calibrated = calibrate_pattern(
                p,
                sinks,
                beta=beta,
                attention_mask=mask,
                redistribute=redistribute,  # type: ignore[arg-type]
            )
            delta = calibrated - p
            est[li] += (g * delta).sum(dim=(0, 2, 3)).cpu()
    return est / len(data.uids)


def _settings_key(model: Any, prompts: Sequence[Prompt], settings: dict[str, Any]) -> str:
    digest = hashlib.sha256(repr(sorted(settings.items())).encode())
    digest.update(model_identity(model)["weights_sha256"].encode())
    for p in prompts:
        digest.update(p.uid.encode())
        digest.update(p.text.encode())
    return digest.hexdigest()[:24]


def _load_checkpoint(path: Path, key: str) -> dict[int, dict[str, Tensor]]:
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


def search_heads(
    model: Any,
    calibration: Sequence[Prompt],
    *,
    layers: Sequence[int] | None = None,
    metric: str = "gold_logprob",
    margin: float = 0.0,
    min_z: float | None = None,
    max_heads: int | None = None,
    beta: float = 0.4,
    threshold: float = 0.1,
    rule: str = "mean",
    redistribute: str = "all",
    screen: int | None = None,
    validation: Sequence[Prompt] | None = None,
    checkpoint: "str | Path | None" = None,
    batch_size: int = 8,
    progress: bool = True,
    effects_out: list[HeadEffects] | None = None,
) -> HeadSet:
    """Find the heads whose calibration alone improves the calibration metric.

    Args:
        model: a TransformerBridge.
        calibration: calibration prompts (e.g. ``calibration_mix``).
        layers: candidate layers (default: all but the first two and the last).
        metric: ``"gold_logprob"`` (default: sensitive on small models), ``"margin"`` or ``"accuracy"``.
        margin: keep heads whose mean metric gain exceeds this.
        min_z: also require gain > ``min_z`` x its standard error.
        max_heads: keep at most this many heads (the largest gains among those passing).
        beta, threshold, rule, redistribute: ACT settings.
        screen: evaluate exactly only the ``screen`` heads with the best first-order estimate.
        validation: held-out prompts; the chosen set's joint effect there is recorded.
        checkpoint: file for per-layer progress; an interrupted search resumes from it.
        batch_size: prompts per batch.
        effects_out: if a list is given, the HeadEffects of the search is appended to it.

    Returns:
        The HeadSet, with the keep-rule, settings and per-head scores in its provenance.

    Example:
        >>> hs = search_heads(model, calibration_mix(["reviews"], 64), margin=0.01)  # doctest: +SKIP
    """
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {METRICS}, got {metric!r}")
    require_pattern_editable(model)
    layers = default_layers(int(model.cfg.n_layers)) if layers is None else sorted(set(layers))
    if not layers:
        raise ConfigError(
            f"no candidate layers: the default skips the first two and the last layer, which leaves "
            f"none of this model's {model.cfg.n_layers}; pass layers= explicitly"
        )
    settings = {
        "beta": beta,
        "threshold": threshold,
        "rule": rule,
        "redistribute": redistribute,
        "layers": tuple(layers),
        "screen": screen,
    }
    heads_by_layer: dict[int, list[int]] | None = None
    screening = None
    if screen is not None:
        est = screen_heads(
            model,
            calibration,
            layers=layers,
            beta=beta,
            threshold=threshold,
            rule=rule,
            redistribute=redistribute,
            metric=metric,
            batch_size=batch_size,
        )
        order = torch.argsort(est.flatten(), descending=True)[:screen].tolist()
        n_heads = est.shape[1]
        heads_by_layer = {}
        for i in order:
            heads_by_layer.setdefault(layers[i // n_heads], []).append(i % n_heads)
        screening = {
            f"{layers[i // n_heads]}.{i % n_heads}": float(est.flatten()[i]) for i in order
        }
    key = _settings_key(model, calibration, settings)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    done = _load_checkpoint(ckpt, key) if ckpt is not None else {}

    def save_layer(layer: int, values: dict[str, Tensor]) -> None:
        done[layer] = values
        if ckpt is not None:
            buf = io.BytesIO()
            torch.save({"key": key, "layers": {str(k): v for k, v in done.items()}}, buf)
            atomic_write_bytes(ckpt, buf.getvalue())

    effects = head_effects(
        model,
        calibration,
        strategy="act",
        layers=layers,
        beta=beta,
        threshold=threshold,
        rule=rule,
        redistribute=redistribute,
        batch_size=batch_size,
        progress=progress,
        on_layer_done=save_layer,
        skip_layers=done,
        heads_by_layer=heads_by_layer,
    )
    if effects_out is not None:
        effects_out.append(effects)
    eff, err = effects.effects[metric], effects.stderr[metric]
    keep = []
    scores = {}
    for li, layer in enumerate(effects.layers):
        for hi, head in enumerate(effects.heads):
            e = float(eff[li, hi])
            if e != e:  # NaN: not evaluated (screened out)
                continue
            scores[f"{layer}.{head}"] = {"effect": e, "stderr": float(err[li, hi])}
            if e > margin and (min_z is None or e > min_z * float(err[li, hi])):
                keep.append((layer, head))
    if max_heads is not None and len(keep) > max_heads:
        keep = sorted(keep, key=lambda lh: -scores[f"{lh[0]}.{lh[1]}"]["effect"])[:max_heads]
    rule_text = (
        f"keep head if mean {metric} gain > {margin}"
        + (f" and gain > {min_z} x stderr" if min_z is not None else "")
        + (f"; at most {max_heads} heads, largest gains first" if max_heads is not None else "")
    )
    provenance: dict[str, Any] = {
        **provenance_now(),
        "model": model_identity(model),
        "method": "act_lens.search_heads",
        "keep_rule": rule_text,
        "metric": metric,
        "margin": margin,
        "min_z": min_z,
        "max_heads": max_heads,
        "beta": beta,
        "threshold": threshold,
        "rule": rule,
        "redistribute": redistribute,
        "candidate_layers": list(layers),
        "calibration": _describe(calibration),
        "per_head": scores,
        "screening": screening,
    }
    head_set = HeadSet(keep, provenance)
    if validation:
        provenance["validation"] = validate_head_set(
            model,
            head_set,
            validation,
            beta=beta,
            threshold=threshold,
            rule=rule,
            redistribute=redistribute,
            batch_size=batch_size,
        )
        head_set = HeadSet(keep, provenance)
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)  # finished: the head set is the result
    return head_set


def validate_head_set(
    model: Any,
    head_set: HeadSet,
    prompts: Sequence[Prompt],
    *,
    beta: float = 0.4,
    threshold: float = 0.1,
    rule: str = "mean",
    redistribute: str = "all",
    batch_size: int = 8,
) -> dict[str, Any]:
    """Mean metrics on ``prompts`` without and with ACT on the whole head set."""
    data = ScoredPrompts.from_prompts(model, prompts)
    choice = data.choice_tensor(list(range(len(data.uids))))
    act = ActConfig(head_set, beta, threshold, rule, redistribute, layer_windows(model))  # type: ignore[arg-type]
    out: dict[str, Any] = {"n": len(data.uids)}
    for name, hooks in (("baseline", None), ("calibrated", act)):
        lp = last_token_logprobs(model, data.tokens, hooks=hooks, batch_size=batch_size)
        values = metric_values(lp, *choice)
        out[name] = {m: float(v.mean()) for m, v in values.items()}
    return out


def _describe(prompts: Sequence[Prompt]) -> dict[str, Any]:
    tasks: dict[str, int] = {}
    for p in prompts:
        tasks[p.uid.split(":")[0]] = tasks.get(p.uid.split(":")[0], 0) + 1
    return {"n": len(prompts), "tasks": tasks}
