"""How each task's splits are assembled from its raw files.

Two layouts cover every task:

* :class:`FileSplits`: each split is a fixed list of files (glob patterns allowed, matched
  in sorted order), read one after the other;
* :class:`DerivedSplits`: the data has no official split (MR, SUBJ); all files are read and
  a fixed, documented rule (:func:`mr_rule`, :func:`subj_rule`) cuts them into splits.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from act_lens.errors import DataError
from act_lens.evaluation.tasks.records import FileReader, Record

SUBJ_SEED = 0
SUBJ_EVAL_SIZE = 2000


class Layout(Protocol):
    """What a task needs from a layout."""

    def splits(self) -> tuple[str, ...]: ...

    def records(self, task_dir: Path, split: str, read_file: FileReader) -> list[Record]: ...

    def looks_like(self, folder: Path) -> bool: ...

    def paths(self, task_dir: Path, split: str) -> list[Path]: ...


def _expand(task_dir: Path, pattern: str, split: str) -> list[Path]:
    if any(ch in pattern for ch in "*?["):
        found = sorted(task_dir.glob(pattern))
        if not found:
            raise DataError(f"split {split!r}: no file matches {task_dir / pattern}")
        return found
    path = task_dir / pattern
    if not path.is_file():
        raise DataError(
            f"split {split!r} needs {path}, which is missing "
            f"(see {task_dir / 'SOURCE.md'} for which splits the data folder includes)"
        )
    return [path]


@dataclass(frozen=True)
class FileSplits:
    """Each split is the concatenation of a fixed list of files.

    Attributes:
        files: canonical split name -> file paths or glob patterns relative to the task folder.
    """

    files: Mapping[str, tuple[str, ...]]

    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    def records(self, task_dir: Path, split: str, read_file: FileReader) -> list[Record]:
        out: list[Record] = []
        for path in self.paths(task_dir, split):
            out.extend(read_file(path))
        return out

    def paths(self, task_dir: Path, split: str) -> list[Path]:
        """The files of ``split``, in reading order; DataError naming a missing one."""
        return [path for pattern in self.files[split] for path in _expand(task_dir, pattern, split)]

    def looks_like(self, folder: Path) -> bool:
        return any(
            (folder / p).is_file() or (any(c in p for c in "*?[") and any(folder.glob(p)))
            for patterns in self.files.values()
            for p in patterns
        )


SplitRule = Callable[[Sequence[Sequence[Record]]], Mapping[str, list[Record]]]


@dataclass(frozen=True)
class DerivedSplits:
    """Read every file, then let ``rule`` cut the records of each file into splits.

    Attributes:
        files: file names relative to the task folder, in the order ``rule`` expects.
        names: the split names ``rule`` returns.
        rule: ``[records of file 0, records of file 1, ...] -> {split: records}``.
    """

    files: tuple[str, ...]
    names: tuple[str, ...]
    rule: SplitRule

    def splits(self) -> tuple[str, ...]:
        return self.names

    def records(self, task_dir: Path, split: str, read_file: FileReader) -> list[Record]:
        parts = [read_file(path) for path in self.paths(task_dir, split)]
        return list(self.rule(parts)[split])

    def paths(self, task_dir: Path, split: str) -> list[Path]:
        """Every file (each split is cut from all of them); DataError naming a missing one."""
        return [path for name in self.files for path in _expand(task_dir, name, split)]

    def looks_like(self, folder: Path) -> bool:
        return any((folder / name).is_file() for name in self.files)


def mr_rule(parts: Sequence[Sequence[Record]]) -> dict[str, list[Record]]:
    """The HF ``rotten_tomatoes`` split of MR: train 8530 / eval 1066 / test 1066.

    With ``n = 5331`` sentences per polarity, ``i1 = int(n * 0.8 + 0.5) = 4265`` and
    ``i2 = int(n * 0.9 + 0.5) = 4798``; train = pos[:i1] + neg[:i1], eval (HF
    "validation") = pos[i1:i2] + neg[i1:i2], test = pos[i2:] + neg[i2:], positives first,
    each in file order (``shared/data/mr/SOURCE.md``).

    Args:
        parts: ``[positive records, negative records]``.

    Returns:
        ``{"train": ..., "eval": ..., "test": ...}``.

    Example:
        >>> splits = mr_rule([pos, neg])
        >>> [len(splits[s]) for s in ("train", "eval", "test")]
        [8530, 1066, 1066]
    """
    pos, neg = parts
    cut = {}
    for name, lines in (("pos", pos), ("neg", neg)):
        n = len(lines)
        cut[name] = (int(n * 0.8 + 0.5), int(n * 0.9 + 0.5))
    (p1, p2), (n1, n2) = cut["pos"], cut["neg"]
    return {
        "train": [*pos[:p1], *neg[:n1]],
        "eval": [*pos[p1:p2], *neg[n1:n2]],
        "test": [*pos[p2:], *neg[n2:]],
    }


def subj_rule(parts: Sequence[Sequence[Record]]) -> dict[str, list[Record]]:
    """Our SUBJ split (there is no official one): train 8000 / eval 2000.

    All sentences, objective file first then subjective, each in file order, are shuffled
    with ``random.Random(SUBJ_SEED).shuffle`` (seed 0); the last ``SUBJ_EVAL_SIZE`` (2000)
    of the shuffled order are eval, the rest train, both kept in shuffled order. It has the
    sizes of HF ``SetFit/subj`` but not its membership.

    Args:
        parts: ``[objective records, subjective records]``.

    Returns:
        ``{"train": ..., "eval": ...}``.

    Example:
        >>> splits = subj_rule([objective, subjective])
        >>> len(splits["train"]), len(splits["eval"])
        (8000, 2000)
    """
    items = [r for part in parts for r in part]
    order = list(range(len(items)))
    random.Random(SUBJ_SEED).shuffle(order)
    n_train = max(len(items) - SUBJ_EVAL_SIZE, 0)
    return {
        "train": [items[i] for i in order[:n_train]],
        "eval": [items[i] for i in order[n_train:]],
    }
