"""One per-head ablation engine: the effect of ablating each (layer, head) alone on a metric.

Exact and fast. The clean run is done once; its residual stream is then advanced block by
block, and at each candidate layer the run restarts from the clean residual (driving the
remaining blocks directly, with the rotary embeddings and mask the model itself passed to that
block), with all heads of the layer ablated in one pass (one batch replica per head) and
logits computed at the scored position only. A replica whose edit leaves its activation exactly
as it was (ACT on a head with no hidden sink in that prompt) is the clean run from there on: it
stops after the ablated layer and takes the clean values (effect exactly 0). Results equal the
naive loop (one full forward per head per prompt) up to float error; ``head_effects_naive`` is
that loop, for tests and benchmarks.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from act_lens.analysis.effects import METRICS, HeadEffects, metric_values
from act_lens.analysis.units import unit_effects
from act_lens.core.settings import SinkSettings, settings_from
from act_lens.errors import ConfigError, object_from, old_keywords, renamed_keyword
from act_lens.evaluation.batching import encode, make_batches, pad_id_of
from act_lens.evaluation.scoring import first_token_ids, keep_last_positions
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.arch import fill_windows
from act_lens.hooks.check import require_pattern_editable
from act_lens.hooks.names import pattern_hook, z_hook
from act_lens.hooks.strategies import AblationContext, Strategy, get_strategy
from act_lens.runtime.options import RunOptions
from act_lens.runtime.pool import use_pool
from act_lens.runtime.precision import precision_context

# Rows (prompts x heads) per ablated pass: bounds the memory of one pass for models with many
# heads and long prompts. (On the bundled model, 8 to 72 rows per pass ran at the same speed
# per row within noise, measured on one thread.)
MAX_ROWS = 128
_DROP_KWARGS = ("cache", "past_key_values", "past_key_value", "use_cache", "hidden_states")


@dataclass(frozen=True)
class ScoredPrompts:
    """Prompts ready for scoring: token ids, first-token ids of the choices, gold index."""

    uids: tuple[str, ...]
    tokens: tuple[tuple[int, ...], ...]
    choice_ids: tuple[tuple[int, ...], ...]
    labels: tuple[int, ...]

    @classmethod
    def from_prompts(cls, model: Any, prompts: Sequence[Prompt]) -> "ScoredPrompts":
        if not prompts:
            raise ConfigError("need at least one prompt")
        tok = model.tokenizer
        ids = encode(tok, [p.text for p in prompts])
        cache: dict[tuple[str, ...], list[int]] = {}
        choice_ids = []
        for p in prompts:
            if p.choices not in cache:
                cache[p.choices] = first_token_ids(tok, p.choices)
            choice_ids.append(tuple(cache[p.choices]))
        return cls(
            tuple(p.uid for p in prompts),
            tuple(tuple(t) for t in ids),
            tuple(choice_ids),
            tuple(p.label for p in prompts),
        )

    def choice_tensor(self, index: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
        """Padded choice ids ``[n, C]``, their validity mask, and the gold labels ``[n]``."""
        width = max(len(self.choice_ids[i]) for i in index)
        ids = torch.zeros(len(index), width, dtype=torch.long)
        valid = torch.zeros(len(index), width, dtype=torch.bool)
        for row, i in enumerate(index):
            c = self.choice_ids[i]
            ids[row, : len(c)] = torch.tensor(c)
            valid[row, : len(c)] = True
        return ids, valid, torch.tensor([self.labels[i] for i in index])


def _strategy_hook(
    strategy: Strategy, heads: Tensor, ctx: AblationContext, changed: list[Tensor] | None = None
) -> tuple[str, Callable]:
    """The strategy as a hook; with ``changed``, it also appends which rows it edited."""
    name = pattern_hook(ctx.layer) if strategy.point == "pattern" else z_hook(ctx.layer)

    def fn(x: Tensor, hook: Any) -> Tensor:
        out = strategy.fn(x, heads.to(x.device), ctx)
        if changed is not None:  # NaN != NaN: a row holding NaN counts as edited
            changed.append((out != x).flatten(1).any(1).cpu())
        return out

    return name, fn


def _select_kwargs(kwargs: dict[str, Any], batch: int, rows: Tensor) -> dict[str, Any]:
    """A block's kwargs for the batch rows ``rows`` (indices into the ``batch`` clean rows;
    a tensor of one row broadcasts and is left as it is)."""

    def take(v: Any) -> Any:
        if isinstance(v, Tensor) and v.ndim > 0 and v.shape[0] == batch and batch > 1:
            return v[rows.to(v.device)]
        if isinstance(v, tuple):
            return tuple(take(x) for x in v)
        return v

    return {k: take(v) for k, v in kwargs.items()}


def _run_blocks(
    model: Any, hidden: Tensor, kwargs: dict[int, dict[str, Any]], start: int, stop: int
) -> Tensor:
    for layer in range(start, stop):
        out = model.blocks[layer](hidden, **kwargs[layer])
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def _last_logprobs(model: Any, hidden: Tensor) -> Tensor:
    logits = model.unembed(model.ln_final(hidden[:, -1:]))
    return torch.log_softmax(logits[:, -1].float(), dim=-1)


@dataclass
class _CleanBatch:
    index: tuple[int, ...]
    mask: Tensor
    hidden: Tensor  # residual entering the current layer
    layer: int  # the layer ``hidden`` enters
    kwargs: dict[int, dict[str, Any]]
    logprobs: Tensor  # [batch, d_vocab] clean next-token log-probs (on the CPU)


def _clean_pass(model: Any, batch: Any, first_layer: int, z_sums: Tensor | None) -> _CleanBatch:
    device = model.cfg.device
    tokens, mask = batch.tokens.to(device), batch.attention_mask.to(device)
    captured: dict[int, tuple[tuple, dict]] = {}
    handles = []
    for layer in range(first_layer, model.cfg.n_layers):

        def pre(mod: Any, args: tuple, kwargs: dict, layer: int = layer) -> None:
            captured[layer] = (args, dict(kwargs))

        handles.append(model.blocks[layer].register_forward_pre_hook(pre, with_kwargs=True))
    hooks = [keep_last_positions(1)]
    if z_sums is not None:
        real = mask.to(torch.float32)

        def add_z(z: Tensor, hook: Any) -> Tensor:
            layer = int(hook.name.split(".")[1])
            z_sums[layer] += torch.einsum("bphd,bp->hd", z.float(), real).cpu()
            return z

        hooks += [(z_hook(layer), add_z) for layer in range(model.cfg.n_layers)]
    try:
        with torch.inference_mode():
            logits = model.run_with_hooks(tokens, attention_mask=mask, fwd_hooks=hooks)
    finally:
        for h in handles:
            h.remove()
    args, kw = captured[first_layer]
    hidden = args[0] if args else kw["hidden_states"]
    kwargs = {
        layer: {k: v for k, v in captured[layer][1].items() if k not in _DROP_KWARGS}
        for layer in captured
    }
    lp = torch.log_softmax(logits[:, -1].float(), dim=-1).cpu()
    return _CleanBatch(batch.index, mask, hidden.detach().clone(), first_layer, kwargs, lp)


# Keywords of earlier releases: where each now lives.
_RUN_KW = ("batch_size", "progress", "workers")
_SETTINGS_KW = ("beta", "threshold")
_REMOVED_KW = ("on_layer_done", "skip_layers")


def head_effects(
    model: Any,
    prompts: Sequence[Prompt],
    *,
    strategy: "str | Strategy" = "act",
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | Mapping[int, Sequence[int]] | None = None,
    settings: SinkSettings | None = None,
    run: RunOptions | None = None,
    **deprecated: Any,
) -> HeadEffects:
    """Effect of ablating each (layer, head) alone on every metric, over ``prompts``.

    Args:
        model: a TransformerBridge.
        prompts: task prompts (``Task.build``), scored by the first token of each choice.
        strategy: ``"act"``, ``"zero_sinks"``, ``"head_off"``, ``"mean_head"`` or a Strategy.
        layers: layers to ablate (default: all).
        heads: heads to ablate: a list (the same heads in every layer; default: all), or
            ``{layer: heads}`` (e.g. screened candidates; not together with ``layers``), whose
            other entries are NaN in the result.
        settings: sink settings of ``act``/``zero_sinks`` (default: method.md's).
        run: batches, progress bars, workers, precision and checkpoint
            (:class:`~act_lens.runtime.options.RunOptions`). With workers or a checkpoint the
            work is split into units (a few layers x a chunk of prompts,
            :mod:`act_lens.analysis.units`), run on Ray actors or in-process and merged in a
            fixed order (equal to the serial run up to float error); finished units go to the
            checkpoint and are reused from it.
        **deprecated: the keywords of earlier releases, still applied with a
            DeprecationWarning: ``beta``, ``threshold`` (-> ``settings``), ``batch_size``,
            ``progress``, ``workers`` (-> ``run``), ``heads_by_layer`` (-> ``heads``).

    Returns:
        HeadEffects with, per metric, the mean change and its standard error per head.

    Raises:
        ConfigError: layers or heads the model lacks, ``{layer: heads}`` together with
            ``layers``, or a deprecated keyword beside the object it belongs to.

    Example:
        >>> eff = head_effects(model, prompts, strategy="act", layers=range(2, 28))   # doctest: +SKIP
        >>> eff.top(5, metric="choice_logprob")                                       # doctest: +SKIP
    """
    old = old_keywords(
        "head_effects", deprecated, (*_RUN_KW, *_SETTINGS_KW, *_REMOVED_KW, "heads_by_layer")
    )
    removed = [k for k in _REMOVED_KW if k in old]
    if removed:
        raise ConfigError(
            f"head_effects: {', '.join(removed)} were replaced by a checkpoint: pass "
            "run=RunOptions(checkpoint=Checkpoint(path, key=...)) and finished work is saved "
            "and reused"
        )
    loose = {k: old[k] for k in _SETTINGS_KW if k in old}
    settings = settings_from(settings, loose=loose, where="head_effects")
    run = object_from("head_effects", "run", run, {k: old.get(k) for k in _RUN_KW}, RunOptions)
    heads = renamed_keyword("head_effects", "heads", heads, old, "heads_by_layer")  # type: ignore[assignment]
    strat = get_strategy(strategy)
    if strat.point == "pattern":
        require_pattern_editable(model)
    settings = fill_windows(settings, model)
    layers, result_heads, by_layer = _chosen_heads(model, layers, heads)
    if run.parallel or run.checkpoint is not None:
        if by_layer is None:
            by_layer = {la: result_heads for la in layers}
        with use_pool(model, run.workers) as pool:
            return unit_effects(
                model, prompts, strategy=strategy, heads=by_layer, settings=settings,
                run=replace(run, workers=pool, precision=run.precision_for(model)),
            )  # fmt: skip
    with precision_context(run.precision or "fp32", model):
        return _in_process(model, prompts, strat, settings, layers, (result_heads, by_layer), run)


def _chosen_heads(
    model: Any, layers: Sequence[int] | None, heads: Any
) -> tuple[list[int], list[int], dict[int, list[int]] | None]:
    """The sorted layers, the heads of the result, and ``{layer: heads}`` unless every head of
    the result is ablated in every layer."""
    n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
    if isinstance(heads, Mapping):
        if layers is not None:
            raise ConfigError(
                "head_effects: pass layers= or heads={layer: heads} (heads_by_layer), not both: "
                "the mapping already says which layers"
            )
        by_layer = {int(la): sorted({int(h) for h in hs}) for la, hs in heads.items()}
        result_heads = list(range(n_heads))
    else:
        chosen = sorted(set(range(n_layers) if layers is None else layers))
        result_heads = sorted(set(range(n_heads) if heads is None else heads))
        by_layer = {la: result_heads for la in chosen}
    flat = [h for hs in by_layer.values() for h in hs] or result_heads
    if (
        not by_layer
        or min(by_layer) < 0
        or max(by_layer) >= n_layers
        or not flat
        or min(flat) < 0
        or max(flat) >= n_heads
    ):
        raise ConfigError(f"layers must be in [0, {n_layers}) and heads in [0, {n_heads})")
    return sorted(by_layer), result_heads, by_layer if isinstance(heads, Mapping) else None


def _in_process(
    model: Any,
    prompts: Sequence[Prompt],
    strat: Strategy,
    settings: SinkSettings,
    layers: list[int],
    heads: tuple[list[int], dict[int, list[int]] | None],
    run: RunOptions,
) -> HeadEffects:
    """The engine in this process: one clean pass per batch, then layer by layer
    (``heads``: the result's heads and, if not all of them everywhere, ``{layer: heads}``)."""
    heads_t = torch.tensor(heads[0], dtype=torch.long)
    by_layer = heads[1]
    data = ScoredPrompts.from_prompts(model, prompts)
    batches, base, head_means = _clean_batches(model, data, strat, layers[0], run.batch_size)
    n = len(data.uids)
    per_example = {m: torch.full((len(layers), len(heads_t), n), float("nan")) for m in METRICS}
    bar = tqdm(
        total=len(layers) * len(batches),
        desc=f"head effects ({strat.name})",
        disable=not run.progress,
        leave=False,
    )
    for li, layer in enumerate(layers):
        layer_heads = (
            heads_t if by_layer is None else torch.tensor(by_layer[layer], dtype=torch.long)
        )
        for clean in batches:
            with torch.inference_mode():
                clean.hidden = _run_blocks(model, clean.hidden, clean.kwargs, clean.layer, layer)
            clean.layer = layer
            if len(layer_heads):
                _ablate_batch(model, strat, settings, clean, layer_heads, heads_t, head_means,
                              data, {m: v[li] for m, v in per_example.items()})  # fmt: skip
            bar.update(1)
    bar.close()
    return HeadEffects.from_per_example(
        strategy=strat.name,
        layers=tuple(layers),
        heads=tuple(int(h) for h in heads_t),
        uids=data.uids,
        baseline=base,
        per_example=per_example,
        settings=_recorded(settings),
    )


def _clean_batches(
    model: Any, data: ScoredPrompts, strat: Strategy, first: int, batch_size: int
) -> tuple[list[_CleanBatch], dict[str, Tensor], Tensor | None]:
    """The clean pass of every batch: residuals entering ``first``, the clean metrics, and the
    heads' mean outputs when the strategy needs them."""
    n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
    n = len(data.uids)
    z_sums = (
        torch.zeros(n_layers, n_heads, int(model.cfg.d_head)) if strat.needs_head_means else None
    )
    batches, clean_lp = [], torch.zeros(n, int(model.cfg.d_vocab))
    for batch in make_batches(data.tokens, batch_size, pad_id_of(model.tokenizer)):
        clean = _clean_pass(model, batch, first, z_sums)
        batches.append(clean)
        clean_lp[list(batch.index)] = clean.logprobs
    base = metric_values(clean_lp, *data.choice_tensor(list(range(n))))
    head_means = None
    if z_sums is not None:
        head_means = z_sums / float(sum(len(t) for t in data.tokens))
    return batches, base, head_means


def _ablate_batch(
    model: Any,
    strat: Strategy,
    settings: SinkSettings,
    clean: _CleanBatch,
    layer_heads: Tensor,
    heads_t: Tensor,
    head_means: Tensor | None,
    data: ScoredPrompts,
    out: dict[str, Tensor],
) -> None:
    """Ablate each of ``layer_heads`` alone on one clean batch; values into ``out[m][head, ex]``."""
    b = clean.hidden.shape[0]
    per_pass = max(1, MAX_ROWS // b)
    rows = torch.tensor(clean.index)[None, :]
    for start in range(0, len(layer_heads), per_pass):
        chunk = layer_heads[start : start + per_pass]
        values = _ablated_pass(model, strat, settings, clean, chunk, head_means, data)
        slots = torch.tensor([int((heads_t == h).nonzero()) for h in chunk.tolist()])
        for m in METRICS:
            out[m][slots[:, None], rows] = values[m].view(len(chunk), b)


def _ablated_pass(
    model: Any,
    strat: Strategy,
    settings: SinkSettings,
    clean: _CleanBatch,
    heads: Tensor,
    head_means: Tensor | None,
    data: ScoredPrompts,
) -> dict[str, Tensor]:
    """Metrics of one clean batch with each of ``heads`` ablated alone (one replica per head).

    The ablated layer runs on every replica; the layers above it only on the replicas whose
    activation the strategy changed. The others are the clean run from there on (causal
    attention, the same inputs): they take the clean log-probs, an effect of exactly 0.
    """
    layer, times, b = clean.layer, len(heads), clean.hidden.shape[0]
    row_heads = heads.repeat_interleave(b)  # rows head-major: replica r ablates heads[r // b]
    prompt_of = torch.arange(b).repeat(times)  # replica r runs prompt r % b
    ctx = AblationContext(
        layer,
        clean.mask.repeat(times, 1),
        settings,
        None if head_means is None else head_means[layer].to(clean.hidden.device),
    )
    changed: list[Tensor] = []
    hook = _strategy_hook(strat, row_heads, ctx, changed)
    n_layers = int(model.cfg.n_layers)
    lp = clean.logprobs[prompt_of].clone()
    with torch.inference_mode(), model.hooks(fwd_hooks=[hook]):
        kw = {layer: _select_kwargs(clean.kwargs[layer], b, prompt_of)}
        hidden = _run_blocks(model, clean.hidden[prompt_of.to(clean.hidden.device)], kw,
                             layer, layer + 1)  # fmt: skip
    edited = changed[0].nonzero().flatten() if changed else torch.arange(len(prompt_of))
    if len(edited):
        rows = prompt_of[edited]
        kwargs = {
            layer2: _select_kwargs(kw, b, rows)
            for layer2, kw in clean.kwargs.items()
            if layer2 > layer
        }
        with torch.inference_mode():
            hidden = _run_blocks(
                model, hidden[edited.to(hidden.device)], kwargs, layer + 1, n_layers
            )
            lp[edited] = _last_logprobs(model, hidden).cpu()
    return metric_values(lp, *data.choice_tensor(list(clean.index) * times))


def _recorded(settings: SinkSettings) -> dict[str, Any]:
    return {k: v for k, v in settings.to_dict().items() if k != "windows"}


def head_effects_naive(
    model: Any,
    prompts: Sequence[Prompt],
    *,
    strategy: "str | Strategy" = "act",
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    settings: SinkSettings | None = None,
    progress: bool = True,
    **deprecated: Any,
) -> HeadEffects:
    """The reference loop: one full forward per head per prompt (batch 1, no padding).

    ``beta=``/``threshold=`` of earlier releases still apply, with a DeprecationWarning
    (write ``settings=SinkSettings(...)``).
    """
    loose = old_keywords("head_effects_naive", deprecated, _SETTINGS_KW)
    settings = settings_from(settings, loose=loose, where="head_effects_naive")
    strat = get_strategy(strategy)
    settings = fill_windows(settings, model)
    n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
    layers = sorted(set(range(n_layers) if layers is None else layers))
    heads_l = sorted(set(range(n_heads) if heads is None else heads))
    data = ScoredPrompts.from_prompts(model, prompts)
    n = len(data.uids)
    device = model.cfg.device
    z_sums = torch.zeros(n_layers, n_heads, int(model.cfg.d_head))
    clean_lp = torch.zeros(n, int(model.cfg.d_vocab))
    for i, toks in enumerate(data.tokens):
        hooks = []
        if strat.needs_head_means:

            def add_z(z: Tensor, hook: Any) -> Tensor:
                z_sums[int(hook.name.split(".")[1])] += z[0].float().sum(0).cpu()
                return z

            hooks = [(z_hook(layer), add_z) for layer in range(n_layers)]
        with torch.inference_mode():
            logits = model.run_with_hooks(torch.tensor([toks], device=device), fwd_hooks=hooks)
        clean_lp[i] = torch.log_softmax(logits[0, -1].float(), -1).cpu()
    head_means = z_sums / float(sum(len(t) for t in data.tokens))
    base = metric_values(clean_lp, *data.choice_tensor(list(range(n))))
    per_example = {m: torch.zeros(len(layers), len(heads_l), n) for m in METRICS}
    bar = tqdm(
        total=len(layers) * len(heads_l) * n, desc="naive loop", disable=not progress, leave=False
    )
    for li, layer in enumerate(layers):
        for hi, head in enumerate(heads_l):
            ctx = AblationContext(layer, None, settings, head_means[layer])
            hook = _strategy_hook(strat, torch.tensor([head]), ctx)
            for i, toks in enumerate(data.tokens):
                with torch.inference_mode():
                    logits = model.run_with_hooks(
                        torch.tensor([toks], device=device), fwd_hooks=[hook]
                    )
                lp = torch.log_softmax(logits[:, -1].float(), -1).cpu()
                values = metric_values(lp, *data.choice_tensor([i]))
                for m in METRICS:
                    per_example[m][li, hi, i] = values[m][0]
                bar.update(1)
    bar.close()
    return HeadEffects.from_per_example(
        strategy=strat.name,
        layers=tuple(layers),
        heads=tuple(heads_l),
        uids=data.uids,
        baseline=base,
        per_example=per_example,
        settings=_recorded(settings),
    )
