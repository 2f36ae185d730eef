"""Screening heads by attribution patching: a first-order estimate of each head's ACT effect.

One forward and one backward per batch give ``sum(grad_pattern * (ACT(pattern) - pattern))``
for every head at once; the exact engine (``head_effects``) then only needs to run on the
heads the screen ranks best.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from act_lens.analysis.ablation import ScoredPrompts
from act_lens.analysis.effects import DEFAULT_METRIC, check_metric, metric_values
from act_lens.core.calibrate import calibrate_pattern
from act_lens.core.settings import SinkSettings, settings_from
from act_lens.core.sinks import detect_sinks
from act_lens.errors import object_from, old_keywords
from act_lens.evaluation.batching import make_batches, pad_id_of
from act_lens.evaluation.scoring import keep_last_positions
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.arch import fill_windows
from act_lens.hooks.names import pattern_hook
from act_lens.runtime.options import RunOptions
from act_lens.runtime.pool import map_units, use_pool
from act_lens.runtime.precision import precision_context

# Keywords of earlier releases: where each now lives.
_SETTINGS_KW = ("beta", "threshold")
_RUN_KW = ("batch_size", "workers", "precision")
# The checkpoint entry of the screen's estimates.
CHECKPOINT_UNIT = "screen"


def screen_heads(
    model: Any,
    prompts: Sequence[Prompt],
    *,
    layers: Sequence[int],
    settings: SinkSettings | None = None,
    metric: str = DEFAULT_METRIC,
    run: RunOptions | None = None,
    **deprecated: Any,
) -> Tensor:
    """First-order estimate of every head's ACT effect on the mean of ``metric``.

    Args:
        model: a TransformerBridge.
        prompts: scored prompts (label words or option letters).
        layers: candidate layers.
        settings: sink settings (default: method.md's).
        metric: as in ``search_heads``; ``accuracy`` is not differentiable and is screened by
            ``choice_logprob``.
        run: batch size, workers (chunks of prompts on Ray actors, averaged), precision, and
            a checkpoint that keeps the estimates (a resumed search screens the same heads).
        **deprecated: ``beta``, ``threshold`` (-> ``settings``), ``batch_size``, ``workers``,
            ``precision`` (-> ``run``) of earlier releases, applied with a DeprecationWarning.

    Returns:
        ``[layer, head]`` estimates of the mean metric change.

    Example:
        >>> est = screen_heads(model, calib, layers=range(2, 28))   # doctest: +SKIP
    """
    old = old_keywords("screen_heads", deprecated, (*_SETTINGS_KW, *_RUN_KW))
    loose = {k: old[k] for k in _SETTINGS_KW if k in old}
    settings = settings_from(settings, loose=loose, where="screen_heads")
    run = object_from("screen_heads", "run", run, {k: old.get(k) for k in _RUN_KW}, RunOptions)
    check_metric(metric)
    settings = fill_windows(settings, model)
    ckpt = run.checkpoint
    if ckpt is not None and CHECKPOINT_UNIT in ckpt:
        return ckpt.get(CHECKPOINT_UNIT)
    if run.parallel:
        chunks = [list(prompts[a:b]) for a, b in screen_chunks(len(prompts))]
        unit_run = RunOptions(batch_size=run.batch_size, progress=False)
        jobs = [dict(prompts=c, layers=list(layers), settings=settings, metric=metric,
                     run=unit_run) for c in chunks]  # fmt: skip
        with use_pool(model, run.workers) as pool:
            parts = map_units(
                model, "act_lens.analysis.screening:screen_heads", jobs, pool=pool,
                precision=run.precision_for(model),
            )  # fmt: skip
        est = sum(p * len(c) for p, c in zip(parts, chunks, strict=True)) / len(prompts)
    else:
        with precision_context(run.precision or "fp32", model):
            est = _act_first_order(model, prompts, layers, settings, metric, run.batch_size)
    if ckpt is not None:
        ckpt.put(CHECKPOINT_UNIT, est)
    return est


# Prompts per screening unit at most: one batch. A screen has no per-unit clean pass to repeat,
# so small units cost nothing and share out evenly (24 prompts in one unit kept one of two
# workers idle for the whole screen).
SCREEN_PROMPTS_PER_UNIT = 8


def screen_chunks(n_prompts: int) -> list[tuple[int, int]]:
    """The screen's units: an even number of near-equal chunks of at most
    ``SCREEN_PROMPTS_PER_UNIT`` prompts (depends on ``n_prompts`` only, never on the workers).

    Example:
        >>> screen_chunks(24)
        [(0, 6), (6, 12), (12, 18), (18, 24)]
        >>> screen_chunks(3)
        [(0, 2), (2, 3)]
    """
    per = 2 * SCREEN_PROMPTS_PER_UNIT
    n_chunks = min(n_prompts, 2 * -(-n_prompts // per))
    bounds = [round(i * n_prompts / n_chunks) for i in range(n_chunks + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def pick_screened(
    est: Tensor, layers: Sequence[int], k: int, *, magnitude: bool = False
) -> tuple[dict[int, list[int]], dict[str, float]]:
    """The ``k`` heads with the largest estimates (``magnitude``: largest ``|estimate|``), as
    ``{layer: heads}`` for the exact engine and ``{"layer.head": estimate}`` for provenance.

    Example:
        >>> pick_screened(torch.tensor([[0.5, -0.75], [0.25, 0.0]]), [4, 5], 2)
        ({4: [0], 5: [0]}, {'4.0': 0.5, '5.0': 0.25})
    """
    flat = est.flatten()
    order = torch.argsort(flat.abs() if magnitude else flat, descending=True)[:k].tolist()
    n_heads = est.shape[1]
    heads_by_layer: dict[int, list[int]] = {}
    for i in order:
        heads_by_layer.setdefault(layers[i // n_heads], []).append(i % n_heads)
    screening = {f"{layers[i // n_heads]}.{i % n_heads}": float(flat[i]) for i in order}
    return heads_by_layer, screening


def _act_first_order(
    model: Any,
    prompts: Sequence[Prompt],
    layers: Sequence[int],
    settings: SinkSettings,
    metric: str,
    batch_size: int,
) -> Tensor:
    """The screen in this process: the first-order change along each head's ACT edit."""

    def act_delta(p: Tensor, mask: Tensor, layer: int) -> Tensor:
        sinks = detect_sinks(
            p,
            threshold=settings.threshold,
            rule=settings.rule,
            attention_mask=mask,
            window=settings.window(layer),
        )
        calibrated = calibrate_pattern(
            p,
            sinks,
            beta=settings.beta,
            attention_mask=mask,
            redistribute=settings.redistribute,
            validate=False,  # the model's own pattern (bf16 rounds rows off 1 by ~4e-3)
        )
        return calibrated - p

    return first_order(model, prompts, layers, metric, act_delta, batch_size)


def screen_zerotuning(
    model: Any,
    prompts: Sequence[Prompt],
    *,
    layers: Sequence[int],
    metric: str = DEFAULT_METRIC,
    batch_size: int = 8,
) -> Tensor:
    """Derivative of the mean ``metric`` with respect to each head's ZeroTuning gamma at 1.

    Positive: raising the first token's attention helps (an up-effective head); negative:
    lowering it helps. ``dA/dgamma`` at 1 is ``a (1 - a)`` on the first real token and
    ``-a A[k]`` elsewhere, ``a`` the row's first-token attention.

    Example:
        >>> d = screen_zerotuning(model, calib, layers=range(2, 28))   # doctest: +SKIP
    """
    check_metric(metric)

    def zt_delta(p: Tensor, mask: Tensor, layer: int) -> Tensor:
        valid = mask.bool()
        first = valid & (valid.cumsum(-1) == 1)  # the first real token of each row
        a = (p * first[:, None, None, :]).sum(-1, keepdim=True)
        # Pad rows need no mask: nothing downstream reads them, so their gradient is 0.
        return torch.where(first[:, None, None, :], a * (1 - a), -a * p)

    return first_order(model, prompts, layers, metric, zt_delta, batch_size)


# The backward pass keeps every layer's [rows, heads, pos, pos] pattern and what it was made
# from: a screen batch holds at most this many rows x positions^2 (8 prompts of 128 tokens).
# 8 BoolQ prompts of about 300 tokens in one batch took about 10 GB per worker.
SCREEN_MAX_CELLS = 8 * 128 * 128


def _bounded_batches(
    token_lists: Sequence[Sequence[int]], batch_size: int, pad_id: int
) -> Iterator[Any]:
    """``make_batches``, with a batch of long prompts split so that rows x positions^2 stays
    within ``SCREEN_MAX_CELLS`` (prompts of up to 128 tokens keep ``batch_size``)."""
    for batch in make_batches(token_lists, batch_size, pad_id):
        rows = max(1, SCREEN_MAX_CELLS // int(batch.tokens.shape[1]) ** 2)
        if rows >= len(batch.index):
            yield batch
            continue
        part = [token_lists[i] for i in batch.index]
        for sub in make_batches(part, rows, pad_id, sort=False):
            yield replace(sub, index=tuple(batch.index[j] for j in sub.index))


def first_order(
    model: Any,
    prompts: Sequence[Prompt],
    layers: Sequence[int],
    metric: str,
    delta: Callable[[Tensor, Tensor, int], Tensor],
    batch_size: int = 8,
) -> Tensor:
    """``[layer, head]`` mean of ``sum(grad_pattern * delta(pattern))``: the first-order change
    of ``metric`` along each head's edit direction (attribution patching)."""
    grad_metric = DEFAULT_METRIC if metric == "accuracy" else metric
    data = ScoredPrompts.from_prompts(model, prompts)
    est = torch.zeros(len(layers), int(model.cfg.n_heads))
    device = model.cfg.device
    for batch in _bounded_batches(data.tokens, batch_size, pad_id_of(model.tokenizer)):
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
            est[li] += (g * delta(p, mask, la)).sum(dim=(0, 2, 3)).cpu()
    return est / len(data.uids)
