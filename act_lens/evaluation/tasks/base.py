"""Types shared by every task: examples, prompts and the task base class.

A :class:`Task` knows where its raw files live inside a data directory, how to read
them (``read_file``), how its splits are assembled (``layout``) and how to turn an
:class:`Example` into a :class:`Prompt` (``build``, defined by the two subclasses in
``classification.py`` and ``multiple_choice.py``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from act_lens.errors import ConfigError, DataError
from act_lens.evaluation.tasks.holdout import SplitFile
from act_lens.evaluation.tasks.records import FileReader, Record

if TYPE_CHECKING:
    from act_lens.evaluation.tasks.splits import Layout

TaskKind = Literal["classification", "multiple_choice"]
HF_PREFIX = "hf:"


@dataclass(frozen=True)
class Example:
    """One labelled item of a task, before prompting.

    Attributes:
        uid: stable id ``"<task>:<split>:<index>"`` (index in split order); pairs results.
        fields: raw text fields, e.g. ``{"sentence": ...}`` or ``{"question": ...}``.
        label: index into ``task.label_words`` (classification) or into ``options`` (MC).
        options: option texts in order (multiple choice only).
        meta: extra strings, e.g. ``{"source": "stsa.binary.dev:18"}``, ``{"subject": "anatomy"}``.
    """

    uid: str
    fields: Mapping[str, str]
    label: int
    options: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Prompt:
    """A filled prompt and the continuations scored at its end.

    Attributes:
        uid: the example's uid.
        text: the full prompt, ending right before the answer (e.g. ``"...\\nSentiment:"``).
        choices: continuations scored at the end of ``text``, with a leading space
            (label words for classification, option letters ``" A"``... for MC).
        label: index of the gold choice.
        context: log-likelihood context; MC: the prompt without lettered options (cloze
            style, ending ``"Answer:"``); classification: equal to ``text``.
        continuations: MC: ``" " + option text`` per option; classification: ``choices``.
        meta: the example's meta.
    """

    uid: str
    text: str
    choices: tuple[str, ...]
    label: int
    context: str
    continuations: tuple[str, ...]
    meta: Mapping[str, str]


@dataclass(frozen=True)
class Task:
    """A benchmark task: where its data lives, its splits and its prompt format.

    Attributes:
        name: registry name.
        kind: ``"classification"`` or ``"multiple_choice"``.
        label_words: classification: words in label-id order; MC: ``()``.
        instruction: the sentence that opens every prompt.
        train_split: split for demonstrations and calibration, ``None`` if unavailable.
        eval_split: split evaluated by default.
        description: one line on the data, including any deviation from the paper's data.
        folder: sub-directory of a data directory holding this task's files.
        layout: how the splits are assembled from files (see ``splits.py``).
        read_file: reader for one raw file of this task (any format the task accepts).
        aliases: other split names (``"validation"``, ``"test"``...) -> canonical name.
        prompt_set: which prompts this task object builds: ``"plain"`` (act_lens's own) or
            ``"paper"`` (the official ACT prompts, ``paper_prompts.py``).
    """

    name: str
    kind: TaskKind
    label_words: tuple[str, ...]
    instruction: str
    train_split: str | None
    eval_split: str
    description: str
    folder: str
    layout: Layout
    read_file: FileReader
    aliases: Mapping[str, str] = field(default_factory=dict)
    prompt_set: str = "plain"

    def splits(self) -> tuple[str, ...]:
        """Canonical split names this task can load (aliases excluded).

        Some splits have a known format but no file in shared/data (SST-2/SST-5/ARC/MMLU
        test); loading one raises a DataError naming the missing file.

        Returns:
            e.g. ``("train", "eval", "test")``.

        Example:
            >>> get_task("sst2").splits()
            ('train', 'eval', 'test')
        """
        return self.layout.splits()

    def resolve_split(self, split: str | None) -> str:
        """Map a split name or alias to its canonical name (``None`` -> ``eval_split``).

        Raises:
            ConfigError: the name is neither a split nor an alias of this task.
        """
        if split is None:
            return self.eval_split
        name = self.aliases.get(split, split)
        if name not in self.splits():
            known = sorted({*self.splits(), *self.aliases})
            raise ConfigError(
                f"task {self.name!r} has no split {split!r}; known splits and aliases: {known}"
            )
        return name

    def load(
        self, data: str | os.PathLike[str] | SplitFile | None = None, split: str | None = None
    ) -> list[Example]:
        """Load one split of this task as examples.

        Args:
            data: a directory laid out like ``shared/data`` (this task's sub-folder is found
                inside it; the sub-folder itself also works), one raw file of this task
                (``split`` then only names the uid prefix: every row is returned), a
                ``SplitFile`` (one file cut into disjoint calibration and eval parts by
                content hash; ``holdout.py``), or ``"hf:<name>[:<config>]"`` to load through
                the Hugging Face ``datasets`` package.
            split: split name or alias; ``None`` means ``eval_split``.

        Returns:
            Examples in split order, uids ``"<task>:<split>:<index>"``.

        Raises:
            DataError: ``data`` is missing, unreadable or malformed (file and line named).
            ConfigError: unknown split name.

        Example:
            >>> task = get_task("sst2")
            >>> dev = task.load("/path/to/shared/data")
            >>> dev[0].uid, task.label_words[dev[0].label]
            ('sst2:eval:0', 'negative')
        """
        if data is None:
            raise DataError(
                f"task {self.name!r} needs its raw files: pass a data directory laid out like "
                f"shared/data (with a {self.folder!r} sub-folder, e.g. --data-dir /work/shared/data), "
                f"a file of this task, or 'hf:<dataset>[:<config>]'"
            )
        if isinstance(data, SplitFile):
            name, records = data.records(self, split)
            return self._examples(records, name)
        if isinstance(data, str) and data.startswith(HF_PREFIX):
            # lazy: only hf: users pay for it
            from act_lens.evaluation.tasks.hub import load_hub_records

            split_name = split if split is not None else self.eval_split
            canonical = self.aliases.get(split_name, split_name)
            records = load_hub_records(self.name, data[len(HF_PREFIX) :], canonical)
            return self._examples(records, canonical)
        path = Path(data)
        if path.is_file():
            name = self.eval_split if split is None else self.aliases.get(split, split)
            return self._examples(self.read_file(path), name)
        if not path.is_dir():
            raise DataError(
                f"data path {path} does not exist; pass a data directory or a file of task {self.name!r}"
            )
        canonical = self.resolve_split(split)
        return self._examples(
            self.layout.records(self.task_dir(path), canonical, self.read_file), canonical
        )

    def data_files(
        self, data: str | os.PathLike[str] | SplitFile | None, split: str | None = None
    ) -> list[Path]:
        """The raw files ``load(data, split)`` would read, found without reading them.

        Returns ``[]`` for ``hf:`` data (nothing local). Used to refuse bad input before a
        model is loaded.

        Raises:
            DataError: no data given (for a task that needs it), a missing path or file.
            ConfigError: unknown split name.
        """
        if isinstance(data, str) and data.startswith(HF_PREFIX):
            return []
        if isinstance(data, SplitFile):
            self.resolve_split(split)
            return [data.path]
        if data is None:
            self.load(None, split)  # raises the "needs its raw files" DataError
            return []
        path = Path(data)
        if path.is_file():
            return [path]
        if not path.is_dir():
            raise DataError(
                f"data path {path} does not exist; pass a data directory or a file of task {self.name!r}"
            )
        canonical = self.resolve_split(split)
        return self.layout.paths(self.task_dir(path), canonical)

    def task_dir(self, data_dir: Path) -> Path:
        """This task's folder inside ``data_dir`` (or ``data_dir`` itself if it is that folder).

        Raises:
            DataError: neither ``data_dir/<folder>`` nor ``data_dir`` holds this task's files.
        """
        sub = data_dir / self.folder
        if sub.is_dir():
            return sub
        if self.layout.looks_like(data_dir):
            return data_dir
        raise DataError(
            f"no {self.folder!r} folder in data directory {data_dir}; expected the layout of "
            f"shared/data (see its README.md) with {self.folder}/ holding the {self.name} files"
        )

    def _examples(self, records: Sequence[Record], split: str) -> list[Example]:
        return [
            Example(
                uid=f"{self.name}:{split}:{i}",
                fields=r.fields,
                label=r.label,
                options=r.options,
                meta=r.meta,
            )
            for i, r in enumerate(records)
        ]

    def build(self, example: Example, demos: Sequence[Example] = ()) -> Prompt:
        """Fill the prompt for ``example`` after ``demos`` (implemented by subclasses)."""
        raise NotImplementedError

    def sample_demos(
        self, pool: Sequence[Example], k: int, seed: int, exclude_uid: str | None = None
    ) -> list[Example]:
        """Draw ``k`` demonstrations from ``pool`` at random, without replacement.

        ``random.Random(seed).sample`` draws ``k + 1`` positions of the pool and the first
        ``k`` whose uid is not ``exclude_uid`` are kept, so a query never demonstrates
        itself and every query outside the pool gets the same demos for one seed.

        Args:
            pool: candidate examples (normally the train split).
            k: number of demos; ``0`` returns ``[]`` even for tasks without a train split.
            seed: seed of the draw; the result depends only on ``(pool, k, seed, exclude_uid)``.
            exclude_uid: uid of the query, never returned.

        Returns:
            ``k`` examples in draw order.

        Raises:
            ConfigError: ``k`` is negative.
            DataError: the task has no train split, or the pool has fewer than ``k`` candidates.

        Example:
            >>> task = get_task("sst2")
            >>> train = task.load(data_dir, "train")
            >>> demos = task.sample_demos(train, k=2, seed=0)
            >>> prompt = task.build(task.load(data_dir)[0], demos)
        """
        if k < 0:
            raise ConfigError(f"k must be >= 0 demonstrations, got {k}")
        if k == 0:
            return []
        if self.train_split is None:
            raise DataError(
                f"task {self.name!r} has no train split in the data (see shared/data/README.md), "
                f"so it has no demonstrations or calibration samples; use k=0 (zero-shot)"
            )
        candidates = sum(1 for ex in pool if ex.uid != exclude_uid)
        if candidates < k:
            raise DataError(
                f"cannot draw {k} demos for task {self.name!r}: the pool has only {candidates} candidates"
            )
        order = random.Random(seed).sample(range(len(pool)), min(len(pool), k + 1))
        picked = [pool[i] for i in order if pool[i].uid != exclude_uid][:k]
        if len(picked) < k:  # exclude_uid occurs more than once in the pool
            rest = [ex for ex in pool if ex.uid != exclude_uid]
            picked = random.Random(seed).sample(rest, k)
        return picked
