"""Calibration sets for the head search: training prompts of one or several tasks.

Class-balanced by default: within each task the same number of prompts is drawn for every
gold label (as far as the pool allows), because on a set dominated by one label the heads
that push every prediction toward that label look helpful. The validation part that picks the
size of the head set is split off the calibration set, never the evaluation split.
"""

import random
import warnings
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from act_lens.errors import ActLensWarning, ConfigError, DataError
from act_lens.evaluation.tasks import Example, Prompt, Task, get_task
from act_lens.evaluation.tasks.holdout import calibration_pool

TaskRef = str | Task


def calibration_mix(
    tasks: "Mapping[TaskRef, int | float] | Sequence[TaskRef]",
    n: int,
    *,
    data: Any = None,
    split: str | None = None,
    seed: int = 0,
    shots: int = 0,
    balance: bool = True,
    prompts: str = "plain",
) -> list[Prompt]:
    """A calibration set mixing several tasks' training prompts (zero-shot by default).

    Args:
        tasks: task names or Task objects, or ``{task: weight}`` (weights need not sum to 1).
        n: total number of prompts (split between tasks by weight).
        data: data directory, file or ``SplitFile`` (built-in tasks need none).
        split: split to draw from (default: each task's train split), without any example
            whose text is also in the task's eval split.
        seed: sampling seed (examples and demonstrations).
        shots: demonstrations per prompt, from the same split.
        balance: draw equal counts per gold label within each task (a label with too few
            examples gives all it has, the others fill up); False: a plain random sample.
        prompts: prompt set for task names (``"plain"`` or ``"paper"``).

    Returns:
        Shuffled prompts; their labels show the balance (``describe_calibration``).

    Raises:
        ConfigError: no task, a weight <= 0 or n < 1. DataError: a task without that split.

    Warns:
        ActLensWarning: a task's share of ``n`` is larger than its pool (the pool is used).

    Example:
        >>> calib = calibration_mix(["reviews"], 48)            # 24 negative, 24 positive
        >>> mixed = calibration_mix({"sst2": 1, "agnews": 1}, 200, data="../shared/data")  # doctest: +SKIP
    """
    return _mix(tasks, n, data, split, seed, shots, balance, prompts, ())


def _mix(
    tasks: "Mapping[TaskRef, int | float] | Sequence[TaskRef]",
    n: int,
    data: Any,
    split: str | None,
    seed: int,
    shots: int,
    balance: bool,
    prompts: str,
    exclude: Collection[str],
) -> list[Prompt]:
    """``calibration_mix`` never drawing the ``exclude`` example uids and prompt texts (the
    validation part of ``calibration_split`` never repeats a ranking prompt)."""
    items = list(tasks.items()) if isinstance(tasks, Mapping) else [(t, 1.0) for t in tasks]
    if not items or n < 1 or any(w <= 0 for _, w in items):
        raise ConfigError("calibration_mix needs tasks with positive weights and n >= 1")
    resolved = [(get_task(t, prompts) if isinstance(t, str) else t, float(w)) for t, w in items]
    total = sum(w for _, w in resolved)
    counts = [int(n * w / total) for _, w in resolved]
    for i in range(n - sum(counts)):
        counts[i % len(counts)] += 1
    rng = random.Random(seed)
    out: list[Prompt] = []
    for (task, _), k in zip(resolved, counts, strict=True):
        split_name = split or task.train_split
        if split_name is None:
            raise DataError(f"task {task.name!r} has no train split here; pass split= explicitly")
        # Never an example whose text is also in the eval split (see tasks.holdout), nor one
        # the caller excludes (calibration_split: the ranking prompts).
        pool = [e for e in calibration_pool(task, data, split_name) if e.uid not in exclude]
        if exclude:
            pool = [e for e in pool if task.build(e).text not in exclude]
        if k > len(pool):
            warnings.warn(
                f"calibration_mix: {k} prompts asked of task {task.name!r}, whose calibration "
                f"pool has {len(pool)}; using {len(pool)} (ask for fewer to silence this)",
                ActLensWarning,
                stacklevel=3,
            )
        chosen = balanced_sample(pool, k, rng) if balance else rng.sample(pool, min(k, len(pool)))
        for ex in chosen:
            demos = (
                task.sample_demos(pool, shots, rng.randrange(1 << 30), exclude_uid=ex.uid)
                if shots
                else []
            )
            out.append(task.build(ex, demos))
    rng.shuffle(out)
    return out


def calibration_split(
    tasks: "Mapping[TaskRef, int | float] | Sequence[TaskRef]",
    n: int,
    *,
    val_fraction: float = 0.5,
    data: Any = None,
    seed: int = 0,
    shots: int = 0,
    balance: bool = True,
    prompts: str = "plain",
) -> tuple[list[Prompt], list[Prompt]]:
    """Ranking prompts (class-balanced) and validation prompts (the task's own label mix).

    Heads are ranked on balanced prompts, where a head that pushes every answer toward one
    label cannot look helpful; set sizes are validated on prompts drawn at random from the
    rest of the training split, with its natural label frequencies, so the validation
    accuracy estimates the accuracy the evaluation split will show. The two parts never
    share an example or a prompt text.

    Args:
        tasks, data, seed, shots, prompts: as in :func:`calibration_mix`.
        n: ranking plus validation prompts. val_fraction: the validation share.
        balance: draw the ranking part balanced (validation is always natural).

    Returns:
        ``(ranking, validation)``.

    Raises:
        ConfigError: ``n`` too small to give both parts at least 2 prompts, or a bad fraction.

    Example:
        >>> rank, val = calibration_split(["reviews"], 48)
        >>> len(rank), len(val)
        (24, 24)
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = round(val_fraction * n)
    if n_val < 2 or n - n_val < 2:
        raise ConfigError(
            f"{n} calibration prompts cannot give at least 2 ranking and 2 validation prompts "
            f"with val_fraction {val_fraction}; use at least {max(4, int(2 / min(val_fraction, 1 - val_fraction)) + 1)}"
        )
    ranking = _mix(tasks, n - n_val, data, None, seed, shots, balance, prompts, ())
    used = {p.uid for p in ranking} | {p.text for p in ranking}
    validation = _mix(tasks, n_val, data, None, seed + 1, shots, False, prompts, used)
    return ranking, validation


def balanced_sample(pool: Sequence[Example], k: int, rng: random.Random) -> list[Example]:
    """``k`` examples with equal counts per label, as far as the pool allows.

    Labels are filled in rounds: each round gives every label that still has examples one
    more, so a short label gives all it has and the rest is shared by the others.

    Example:
        >>> pool = [Example(f"t:s:{i}", {}, i % 2) for i in range(10)]
        >>> sorted(e.label for e in balanced_sample(pool, 6, random.Random(0)))
        [0, 0, 0, 1, 1, 1]
    """
    by_label: dict[int, list[Example]] = {}
    for ex in pool:
        by_label.setdefault(ex.label, []).append(ex)
    queues = {label: rng.sample(exs, len(exs)) for label, exs in sorted(by_label.items())}
    chosen: list[Example] = []
    while len(chosen) < min(k, len(pool)):
        for label in list(queues):
            if len(chosen) == k:
                break
            if queues[label]:
                chosen.append(queues[label].pop())
            else:
                del queues[label]
    return chosen


def split_calibration(
    prompts: Sequence[Prompt], fraction: float
) -> tuple[list[Prompt], list[Prompt]]:
    """Split a calibration set into a search part and a validation part, per task and label.

    ``round(fraction * n)`` prompts validate; each ``(task, label)`` group gives its share
    (largest remainders first, so small groups still add up), taking its last prompts in the
    given order, so both parts keep the set's balance.

    Raises:
        ConfigError: ``fraction`` outside (0, 1), or a part that would be empty.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction}")
    groups: dict[tuple[str, int], list[Prompt]] = {}
    for p in prompts:
        groups.setdefault((task_of(p), p.label), []).append(p)
    target = min(max(round(fraction * len(prompts)), 1), len(prompts) - 1)
    share = {g: fraction * len(ps) for g, ps in groups.items()}
    take = {g: int(v) for g, v in share.items()}
    by_remainder = sorted(groups, key=lambda g: -(share[g] - take[g]))
    for g in by_remainder[: max(target - sum(take.values()), 0)]:
        take[g] += 1
    val_ids = {id(p) for g, ps in groups.items() for p in ps[len(ps) - take[g] :]}
    search = [p for p in prompts if id(p) not in val_ids]
    validation = [p for p in prompts if id(p) in val_ids]
    if len(prompts) < 2 or not search or not validation:
        raise ConfigError(
            f"cannot split {len(prompts)} calibration prompts with fraction {fraction} into a "
            "search part and a validation part; use more calibration prompts"
        )
    return search, validation


def task_of(prompt: Prompt) -> str:
    """The task name of a prompt (the first field of its uid ``task:split:index``)."""
    return prompt.uid.split(":")[0]


def describe_calibration(prompts: Sequence[Prompt]) -> dict[str, Any]:
    """``{"n", "tasks": {task: count}, "labels": {task: {label: count}}}`` for provenance."""
    tasks: dict[str, int] = {}
    labels: dict[str, dict[str, int]] = {}
    for p in prompts:
        t = task_of(p)
        tasks[t] = tasks.get(t, 0) + 1
        per = labels.setdefault(t, {})
        per[str(p.label)] = per.get(str(p.label), 0) + 1
    return {
        "n": len(prompts),
        "tasks": tasks,
        "labels": {t: dict(sorted(v.items())) for t, v in labels.items()},
    }
