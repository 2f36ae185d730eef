"""Keep calibration and evaluation examples apart, by their content.

Uids cannot show that two examples are the same: the same row read as the train split and as
the eval split gets ``task:train:i`` and ``task:eval:j``. Examples are therefore compared by
:func:`content_key`, a hash of their text fields and options (case and runs of whitespace
ignored; the label is left out, since the same text under two labels leaks just the same).

* :class:`SplitFile`: one raw file cut into a calibration part (the task's train split) and an
  eval part by the content hash, so the same file gives disjoint parts in every process and
  duplicate rows always land in the same part.
* :func:`calibration_pool`: the split that calibration prompts and demonstrations are drawn
  from, without any example whose text is also in the eval split (the data of some tasks
  share a few rows between their train and eval files: TREC 10, SST-5 1, MMLU 1).
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from act_lens.errors import ConfigError, DataError

# Examples, records and tasks are typed Any here: base.py imports this module (for SplitFile),
# so this one must not import base.py. An "example" is anything with ``fields`` and ``options``.

# Share of a split file's distinct texts that go to the eval part.
EVAL_FRACTION = 0.5


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def content_key(example: Any) -> str:
    """A hash of an example's text fields and options: equal for the same text, whatever its uid.

    Example:
        >>> a = Example("sst2:train:3", {"sentence": "Fine ."}, 1)
        >>> b = Example("sst2:eval:0", {"sentence": "fine  ."}, 0)
        >>> content_key(a) == content_key(b)
        True
    """
    fields = [[k, _norm(v)] for k, v in sorted(example.fields.items())]
    options = [_norm(o) for o in example.options]
    return hashlib.sha256(json.dumps([fields, options]).encode()).hexdigest()


def without_overlap(pool: Sequence[Any], held_out: Iterable[Any]) -> list[Any]:
    """``pool`` without the examples whose content is also in ``held_out`` (order kept)."""
    taken = {content_key(e) for e in held_out}
    return [e for e in pool if content_key(e) not in taken]


def shared_examples(a: Iterable[Any], b: Iterable[Any]) -> list[Any]:
    """The examples of ``a`` whose content is also in ``b``."""
    keys = {content_key(e) for e in b}
    return [e for e in a if content_key(e) in keys]


@dataclass(frozen=True)
class SplitFile:
    """One raw data file, cut by content hash into a calibration part and an eval part.

    Loading the task's train split from it gives the calibration part, its eval split (or
    any other split name) the eval part; a task without a train split reads every row as
    eval. Rows with the same text hash alike, so they always land in the same part, and the
    parts are the same on every machine and in every process.

    Attributes:
        path: the file, in the task's raw format.
        eval_fraction: share of the texts that go to the eval part (about; the cut is by hash).

    Example:
        >>> data = SplitFile("my_sst2.txt")
        >>> calib = get_task("sst2").load(data, "train")    # doctest: +SKIP
        >>> held_out = get_task("sst2").load(data, "eval")  # disjoint from calib by content
    """

    path: Path
    eval_fraction: float = EVAL_FRACTION

    def __init__(self, path: str | os.PathLike[str], eval_fraction: float = EVAL_FRACTION) -> None:
        if not 0.0 < eval_fraction < 1.0:
            raise ConfigError(f"SplitFile: eval_fraction must be in (0, 1), got {eval_fraction}")
        object.__setattr__(self, "path", Path(path))
        object.__setattr__(self, "eval_fraction", float(eval_fraction))

    def __str__(self) -> str:
        return str(self.path)

    def part_of(self, record: Any) -> str:
        """``"train"`` (calibration) or ``"eval"`` for one row, from its content hash."""
        unit = int(content_key(record)[:16], 16) / 16**16
        return "eval" if unit < self.eval_fraction else "train"

    def records(self, task: Any, split: str | None) -> tuple[str, list[Any]]:
        """The canonical split name and the rows of the part that ``split`` stands for."""
        name = task.resolve_split(split)
        if not self.path.is_file():
            raise DataError(f"data file {self.path} does not exist; check the path")
        rows = task.read_file(self.path)
        if task.train_split is None:
            return name, rows  # nothing calibrates on such a task: every row is evaluated
        part = "train" if name == task.train_split else "eval"
        return name, [r for r in rows if self.part_of(r) == part]

    def describe(self, task: Any, split: str | None) -> str:
        """Where ``split`` comes from, in words (for reports)."""
        name = task.resolve_split(split)
        if task.train_split is None:
            return f"{self.path} (every row)"
        if name == task.train_split:
            return (
                f"{self.path}, calibration part: the rows whose content hash falls outside "
                f"the eval share ({1 - self.eval_fraction:.0%} of texts)"
            )
        return (
            f"{self.path}, eval part: the rows whose content hash falls in the eval share "
            f"({self.eval_fraction:.0%} of texts)"
        )


def calibration_pool(
    task: Any, data: Any, split: str | None = None, *, held_out: str | None = None
) -> list[Any]:
    """The examples calibration prompts and demonstrations may be drawn from.

    ``split`` (default: the task's train split) without every example whose text is also in
    the ``held_out`` split (default: the task's eval split). When ``split`` is the held-out
    split itself, it is returned whole: the caller asked for it.

    Raises:
        DataError: the task has no train split (and no ``split`` is given), or missing data.

    Example:
        >>> pool = calibration_pool(get_task("trec"), "/work/shared/data")   # doctest: +SKIP
        >>> len(pool)   # 11 of TREC.train's 5452 rows repeat a question of TREC.test
        5441
    """
    name = split or task.train_split
    if name is None:
        raise DataError(
            f"task {task.name!r} has no train split, so it has no calibration examples or "
            "demonstrations; use it zero-shot and calibrate on another task"
        )
    pool = task.load(data, name)
    held = held_out or task.eval_split
    if task.resolve_split(name) == task.resolve_split(held):
        return pool
    try:
        evaluated = task.load(data, held)
    except DataError:
        return pool  # no readable eval split here: nothing can be evaluated, nothing leaks
    return without_overlap(pool, evaluated)
