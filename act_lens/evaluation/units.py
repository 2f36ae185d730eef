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


def _in_order(
    model: Any,
    pool: WorkerPool,
    fn: str,
    lengths: Sequence[int],
    fields: dict[str, Sequence[Sequence[int]]],
    intervention: Any,
    batch_size: int,
) -> list[Any]:
    """``fn`` over units of whole serial batches (each unit gets its rows of every field),
    on ``pool`` in the caller's precision; one result per row, in input order."""
    groups = unit_order(lengths, batch_size)
    units = [
        {**{k: [list(v[i]) for i in g] for k, v in fields.items()},
         "intervention": intervention, "batch_size": batch_size}
        for g in groups
    ]  # fmt: skip
    results = map_units(
        model, f"act_lens.evaluation.units:{fn}", units, pool=pool,
        precision=current_precision(model.cfg.device),
    )  # fmt: skip
    out: list[Any] = [None] * len(lengths)
    for g, values in zip(groups, results, strict=True):
        for i, v in zip(g, values, strict=True):
            out[i] = v
    return out


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
    fields = {"token_lists": token_lists, "columns": columns}
    lengths = [len(t) for t in token_lists]
    return _in_order(model, pool, "_first_token_unit", lengths, fields, intervention, batch_size)


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
    fields = {"contexts": contexts, "continuations": continuations}
    lengths = [len(c) + len(k) for c, k in zip(contexts, continuations, strict=True)]
    return _in_order(model, pool, "_continuation_unit", lengths, fields, intervention, batch_size)
