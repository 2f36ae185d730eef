"""Screening heads by attribution patching: a first-order estimate of each head's ACT effect.

One forward and one backward per batch give ``sum(grad_pattern * (ACT(pattern) - pattern))``
for every head at once; the exact engine (``head_effects``) then only needs to run on the
heads the screen ranks best.
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from act_lens.analysis.ablation import ScoredPrompts
from act_lens.analysis.effects import DEFAULT_METRIC, check_metric, metric_values
from act_lens.analysis.units import PROMPTS_PER_UNIT
from act_lens.core.calibrate import calibrate_pattern
from act_lens.core.settings import SinkSettings, resolve_settings
from act_lens.core.sinks import detect_sinks
from act_lens.evaluation.batching import make_batches, pad_id_of
from act_lens.evaluation.scoring import keep_last_positions
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.arch import fill_windows
from act_lens.hooks.names import pattern_hook
from act_lens.runtime.pool import WorkerPool, map_units, use_pool
from act_lens.runtime.precision import precision_context


def screen_heads(
    model: Any,
    prompts: Sequence[Prompt],
    *,
    layers: Sequence[int],
    settings: SinkSettings | None = None,
    beta: float | None = None,
    threshold: float | None = None,
    metric: str = DEFAULT_METRIC,
    batch_size: int = 8,
    workers: "int | WorkerPool | None" = None,
    precision: str = "fp32",
) -> Tensor:
    """First-order estimate of every head's ACT effect on the mean of ``metric``.

    Args:
        model: a TransformerBridge.
        prompts: scored prompts (label words or option letters).
        layers: candidate layers.
        settings: sink settings (default: method.md's); ``beta``/``threshold`` override them.
        metric: as in ``search_heads``; ``accuracy`` is not differentiable and is screened by
            ``choice_logprob``.
        batch_size: prompts per batch.
        workers: an int > 1 or a ``WorkerPool``: chunks of prompts on Ray actors, averaged.
        precision: ``"fp32"`` or ``"bf16"`` (``act_lens.runtime.precision``).

    Returns:
        ``[layer, head]`` estimates of the mean metric change.

    Example:
        >>> est = screen_heads(model, calib, layers=range(2, 28))   # doctest: +SKIP
    """
    check_metric(metric)
    settings = fill_windows(resolve_settings(settings, beta=beta, threshold=threshold), model)
    if isinstance(workers, WorkerPool) or (workers is not None and workers > 1):
        chunks = [list(prompts[a : a + PROMPTS_PER_UNIT])
                  for a in range(0, len(prompts), PROMPTS_PER_UNIT)]  # fmt: skip
        jobs = [dict(prompts=c, layers=list(layers), settings=settings, metric=metric,
                     batch_size=batch_size) for c in chunks]  # fmt: skip
        with use_pool(model, workers) as pool:
            parts = map_units(
                model, "act_lens.analysis.screening:screen_heads", jobs, pool=pool,
                precision=precision,
            )  # fmt: skip
        return sum(p * len(c) for p, c in zip(parts, chunks, strict=True)) / len(prompts)

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

    with precision_context(precision, model):
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
            est[li] += (g * delta(p, mask, la)).sum(dim=(0, 2, 3)).cpu()
    return est / len(data.uids)
