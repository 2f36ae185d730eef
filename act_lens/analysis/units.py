"""The per-head engine's work split into units: (a few layers, a chunk of prompts).

A unit is one call of ``head_effects`` on its layers and prompts; units run in-process or on
Ray actors (:mod:`act_lens.runtime.pool`) and their per-example values are merged in a fixed
order, so the result does not depend on the number of workers. The plan depends only on the
layers and the number of prompts, never on the workers, so a serial run and a parallel run
compute the very same batches. Finished units go to a :class:`Checkpoint` as they land.
"""

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from act_lens.analysis.effects import METRICS, HeadEffects
from act_lens.core.settings import SinkSettings
from act_lens.evaluation.tasks import Prompt
from act_lens.runtime.options import RunOptions
from act_lens.runtime.pool import WorkerPool, map_units

# Layers per unit: each unit repeats one clean forward of its prompts, so a few layers per unit
# keep that overhead near 5% of the ablated passes while leaving enough units to share.
LAYERS_PER_UNIT = 3
# Prompts per unit: bounds a unit's memory and the work lost to an interrupt.
PROMPTS_PER_UNIT = 32

Unit = tuple[tuple[int, ...], tuple[int, int]]


def plan_units(layers: Sequence[int], n_prompts: int) -> list[Unit]:
    """Units in the order they should start: the costliest (earliest layers) first.

    Example:
        >>> plan_units([2, 3, 4, 5], 40)
        [((2, 3, 4), (0, 32)), ((2, 3, 4), (32, 40)), ((5,), (0, 32)), ((5,), (32, 40))]
    """
    layers = sorted(layers)
    groups = [
        tuple(layers[i : i + LAYERS_PER_UNIT]) for i in range(0, len(layers), LAYERS_PER_UNIT)
    ]
    chunks = [
        (a, min(a + PROMPTS_PER_UNIT, n_prompts)) for a in range(0, n_prompts, PROMPTS_PER_UNIT)
    ]
    return [(g, c) for g in groups for c in chunks]


def unit_name(unit: Unit) -> str:
    (layers, (a, b)) = unit
    return f"L{'-'.join(map(str, layers))}:P{a}-{b}"


def job_key(model_digest: str, prompts: Sequence[Prompt], recorded: Mapping[str, Any]) -> str:
    """Fingerprint of a job: the model's weights, the prompts and every setting."""
    digest = hashlib.sha256(repr(sorted(recorded.items())).encode())
    digest.update(model_digest.encode())
    for p in prompts:
        digest.update(p.uid.encode())
        digest.update(p.text.encode())
    return digest.hexdigest()[:24]


def unit_effects(
    model: Any,
    prompts: Sequence[Prompt],
    *,
    strategy: Any,
    heads: Mapping[int, Sequence[int]],
    settings: SinkSettings,
    run: RunOptions,
) -> HeadEffects:
    """``head_effects`` of ``heads`` (``{layer: heads}``) over ``prompts``, unit by unit (see
    the module): on ``run.workers`` (a ``WorkerPool`` or None), in ``run.precision``, with
    finished units saved to and reused from ``run.checkpoint``."""
    n_heads = int(model.cfg.n_heads)
    layers = sorted(la for la in heads if heads[la])
    plan = plan_units(layers, len(prompts))
    checkpoint = run.checkpoint
    todo = [u for u in plan if checkpoint is None or unit_name(u) not in checkpoint]
    unit_run = RunOptions(batch_size=run.batch_size, progress=False)
    jobs = [
        dict(prompts=list(prompts[a:b]), strategy=strategy, settings=settings, run=unit_run,
             heads={la: list(heads[la]) for la in group})
        for group, (a, b) in todo
    ]  # fmt: skip

    def keep(i: int, eff: HeadEffects) -> None:
        if checkpoint is not None:
            checkpoint.put(unit_name(todo[i]), _compact(eff))

    pool = run.workers if isinstance(run.workers, WorkerPool) else None
    results = map_units(
        model, "act_lens.analysis.ablation:head_effects", jobs, pool=pool,
        precision=run.precision_for(model), on_result=keep,
    )  # fmt: skip
    finished = {unit_name(u): _compact(r) for u, r in zip(todo, results, strict=True)}
    if checkpoint is not None:  # the file may also hold other steps' entries (the screen)
        saved = [unit_name(u) for u in plan if unit_name(u) in checkpoint]
        finished = {**{n: checkpoint.get(n) for n in saved}, **finished}
    return _merge(plan, finished, layers, n_heads, prompts, settings, strategy)


def _compact(eff: HeadEffects) -> dict[str, Any]:
    return {
        "layers": list(eff.layers),
        "heads": list(eff.heads),
        "per_example": {m: eff.per_example[m] for m in METRICS},
        "baseline": {m: eff.baseline[m] for m in METRICS},
        "strategy": eff.strategy,
        "settings": dict(eff.settings),
    }


def _merge(
    plan: Sequence[Unit],
    finished: Mapping[str, dict[str, Any]],
    layers: Sequence[int],
    n_heads: int,
    prompts: Sequence[Prompt],
    settings: SinkSettings,
    strategy: Any,
) -> HeadEffects:
    n = len(prompts)
    per_example = {m: torch.full((len(layers), n_heads, n), float("nan")) for m in METRICS}
    baseline: dict[str, Tensor] = {m: torch.zeros(n) for m in METRICS}
    first = None
    for unit in plan:  # fixed order: the result never depends on which unit finished first
        part = finished[unit_name(unit)]
        first = first or part
        (_, (a, b)) = unit
        for li, layer in enumerate(part["layers"]):
            gi = layers.index(layer)
            for hi, head in enumerate(part["heads"]):
                for m in METRICS:
                    per_example[m][gi, head, a:b] = part["per_example"][m][li, hi]
        for m in METRICS:
            baseline[m][a:b] = part["baseline"][m]
    assert first is not None, "no units"
    return HeadEffects.from_per_example(
        strategy=first["strategy"],
        layers=tuple(layers),
        heads=tuple(range(n_heads)),
        uids=tuple(p.uid for p in prompts),
        baseline=baseline,
        per_example=per_example,
        settings=first["settings"],
    )
