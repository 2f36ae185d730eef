"""An evaluation split into work units for Ray workers, with the serial run's batches.

The serial scorer sorts every sequence by length (longest first) and cuts batches of
``batch_size`` in that order. Here the same order is cut into units of ``BATCHES_PER_UNIT``
whole batches, so every batch a worker runs is a batch of the serial run (same rows, same
padding): a parallel evaluation equals the serial one up to the float error of a different
thread count. Each worker applies the intervention to its own model copy; units come back in
order (:func:`act_lens.runtime.pool.map_units`).
"""

from collections.abc import Sequence
from typing import Any

from act_lens.evaluation.scoring import continuation_logprobs, last_token_logprobs
from act_lens.hooks.interventions import as_intervention
from act_lens.runtime.pool import WorkerPool, map_units
from act_lens.runtime.precision import current_precision

# Batches per unit: enough work per unit to hide the dispatch (a few ms), small enough that
# two workers finish together (a 300-example evaluation is about 10 units at batch 8).
BATCHES_PER_UNIT = 4

__all__ = ["BATCHES_PER_UNIT", "unit_order", "parallel_first_token", "parallel_continuations"]


def unit_order(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices of the sequences of each unit, in the serial scorer's batch order.

    Example:
        >>> unit_order([3, 5, 4, 1, 2], batch_size=1)[0]
        [1, 2, 0, 4]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # as make_batches (stable)
    step = batch_size * BATCHES_PER_UNIT
    return [order[a : a + step] for a in range(0, len(order), step)]


def _first_token_unit(
    model: Any,
    token_lists: list[list[int]],
    columns: list[list[int]],
    intervention: Any,
    batch_size: int,
) -> list[list[float]]:
    hooks = as_intervention(intervention).for_model(model)
    lp = last_token_logprobs(model, token_lists, hooks=hooks, batch_size=batch_size)
    return [[float(lp[i, t]) for t in cols] for i, cols in enumerate(columns)]


def _continuation_unit(
    model: Any,
    contexts: list[list[int]],
    continuations: list[list[int]],
    intervention: Any,
    batch_size: int,
) -> list[float]:
    hooks = as_intervention(intervention).for_model(model)
    return continuation_logprobs(
        model, contexts, continuations, hooks=hooks, batch_size=batch_size
    ).tolist()


def _run(model: Any, pool: WorkerPool, fn: str, units: list[dict[str, Any]]) -> list[Any]:
    return map_units(
        model, f"act_lens.evaluation.units:{fn}", units, pool=pool,
        precision=current_precision(model.cfg.device),
    )  # fmt: skip


def parallel_first_token(
    model: Any,
    pool: WorkerPool,
    token_lists: Sequence[Sequence[int]],
    columns: Sequence[Sequence[int]],
    intervention: Any,
    batch_size: int,
) -> list[list[float]]:
    """Per prompt, the next-token log-probabilities at ``columns`` (the choices' first tokens),
    scored on ``pool`` with ``intervention`` and the caller's precision; in input order."""
    groups = unit_order([len(t) for t in token_lists], batch_size)
    units = [
        dict(token_lists=[list(token_lists[i]) for i in g], columns=[list(columns[i]) for i in g],
             intervention=intervention, batch_size=batch_size)
        for g in groups
    ]  # fmt: skip
    out: list[list[float]] = [[] for _ in token_lists]
    for g, rows in zip(groups, _run(model, pool, "_first_token_unit", units), strict=True):
        for i, row in zip(g, rows, strict=True):
            out[i] = row
    return out


def parallel_continuations(
    model: Any,
    pool: WorkerPool,
    contexts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    intervention: Any,
    batch_size: int,
) -> list[float]:
    """Summed log-probability of each continuation given its context, scored on ``pool``
    (as :func:`~act_lens.evaluation.scoring.continuation_logprobs`); in input order."""
    lengths = [len(c) + len(k) for c, k in zip(contexts, continuations, strict=True)]
    groups = unit_order(lengths, batch_size)
    units = [
        dict(contexts=[list(contexts[i]) for i in g],
             continuations=[list(continuations[i]) for i in g],
             intervention=intervention, batch_size=batch_size)
        for g in groups
    ]  # fmt: skip
    out = [0.0] * len(contexts)
    for g, values in zip(groups, _run(model, pool, "_continuation_unit", units), strict=True):
        for i, v in zip(g, values, strict=True):
            out[i] = v
    return out
