"""Score continuations of prompts with a model: batched, left-padded, any hooks active.

Only the positions that are scored go through the final norm and unembedding (a hook slices
the residual stream before ``ln_final``), which saves a quarter of the forward on small models.
"""

import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from act_lens.errors import ConfigError
from act_lens.evaluation.batching import make_batches, pad_id_of
from act_lens.hooks.names import final_norm_in_hook
from act_lens.hooks.spec import HookSpec, resolve_hooks


def keep_last_positions(n: int) -> tuple[str, Any]:
    """Hook that keeps only the last ``n`` positions before the final norm and unembedding."""

    def slice_fn(resid: Tensor, hook: Any) -> Tensor:
        return resid[:, -n:]

    return (final_norm_in_hook(), slice_fn)


def first_token_ids(tokenizer: Any, choices: Sequence[str]) -> list[int]:
    """First token id of each choice; warns when two choices share it (they cannot be told apart)."""
    ids = []
    for choice in choices:
        toks = tokenizer(choice, add_special_tokens=False).input_ids
        if not toks:
            raise ConfigError(f"choice {choice!r} tokenizes to nothing")
        ids.append(int(toks[0]))
    if len(set(ids)) < len(ids):
        warnings.warn(
            f"choices {list(choices)} share a first token ({ids}); first-token scoring cannot "
            "separate them: use scoring='full'",
            stacklevel=3,
        )
    return ids


def last_token_logprobs(
    model: Any,
    token_lists: Sequence[Sequence[int]],
    *,
    hooks: "HookSpec | None" = None,
    batch_size: int = 8,
    progress: Any = None,
) -> Tensor:
    """Log-probabilities of the next token after each prompt, ``[n_prompts, d_vocab]`` (float32, CPU)."""
    out: list[Tensor | None] = [None] * len(token_lists)
    device = model.cfg.device
    for batch in make_batches(token_lists, batch_size, pad_id_of(model.tokenizer)):
        mask = batch.attention_mask.to(device)
        fwd = [*resolve_hooks(hooks, mask), keep_last_positions(1)]
        with torch.inference_mode():
            logits = model.run_with_hooks(
                batch.tokens.to(device), attention_mask=mask, fwd_hooks=fwd
            )
        logprobs = torch.log_softmax(logits[:, -1].float(), dim=-1).cpu()
        for row, i in enumerate(batch.index):
            out[i] = logprobs[row]
        if progress is not None:
            progress.update(len(batch.index))
    return torch.stack(out)  # type: ignore[arg-type]


class ContinuationScores(NamedTuple):
    """Per continuation: summed log-probability ``[n]`` (float32) and whether every token of it
    is the argmax of the model's next-token distribution ``[n]`` (bool), both on the CPU."""

    logprobs: Tensor
    greedy: Tensor


def continuation_scores(
    model: Any,
    contexts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    *,
    hooks: "HookSpec | None" = None,
    batch_size: int = 8,
    progress: Any = None,
) -> ContinuationScores:
    """Log-likelihood of each continuation given its context, and whether it is the greedy one.

    One forward per batch of ``context + continuation`` sequences (left-padded, sorted by
    length); only the last positions go through the final norm and unembedding.

    Args:
        model: a TransformerBridge (``run_with_hooks``, ``tokenizer``, ``cfg.device``).
        contexts: token ids of each context (with the BOS the caller wants).
        continuations: token ids of each continuation (at least one token each).
        hooks: a hook list, or a factory ``mask -> hooks`` called with each batch's mask.
        batch_size: sequences per forward.
        progress: optional tqdm-like bar, advanced by the batch size.

    Returns:
        ``ContinuationScores(logprobs, greedy)``, in input order.

    Raises:
        ConfigError: lengths differ, or a continuation is empty.

    Example:
        >>> ctx = [model.tokenizer("The capital of France is").input_ids]     # doctest: +SKIP
        >>> cont = [model.tokenizer(" Paris", add_special_tokens=False).input_ids]
        >>> continuation_scores(model, ctx, cont).greedy                        # doctest: +SKIP
        tensor([True])
    """
    if len(contexts) != len(continuations):
        raise ConfigError("contexts and continuations must have the same length")
    if any(len(c) == 0 for c in continuations):
        raise ConfigError("every continuation needs at least one token")
    seqs = [list(c) + list(k) for c, k in zip(contexts, continuations, strict=True)]
    out = torch.zeros(len(seqs))
    greedy = torch.zeros(len(seqs), dtype=torch.bool)
    device = model.cfg.device
    for batch in make_batches(seqs, batch_size, pad_id_of(model.tokenizer)):
        n_keep = max(len(continuations[i]) for i in batch.index) + 1
        mask = batch.attention_mask.to(device)
        fwd = [*resolve_hooks(hooks, mask), keep_last_positions(n_keep)]
        with torch.inference_mode():
            logits = model.run_with_hooks(
                batch.tokens.to(device), attention_mask=mask, fwd_hooks=fwd
            )
        logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
        for row, i in enumerate(batch.index):
            cont = torch.tensor(continuations[i])
            # Left padding aligns sequence ends: token -k is predicted at kept position -k-1.
            pred = logprobs[row, n_keep - 1 - len(cont) : n_keep - 1]
            out[i] = pred.gather(-1, cont[:, None]).sum()
            greedy[i] = bool((pred.argmax(-1) == cont).all())
        if progress is not None:
            progress.update(len(batch.index))
    return ContinuationScores(out, greedy)


def continuation_logprobs(
    model: Any,
    contexts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    **options: Any,
) -> Tensor:
    """Summed log-probability of each continuation given its context, ``[n]`` (float32, CPU).

    The log-probabilities of :func:`continuation_scores` (same forwards, same numbers), which
    takes the same ``options``: ``hooks``, ``batch_size``, ``progress``."""
    return continuation_scores(model, contexts, continuations, **options).logprobs
