"""Where each task's calibration and evaluation examples come from, read and checked up front.

``preflight`` calls :func:`plan_data` before a model loads: every data file the command needs
is read and parsed (format, encoding, labels; the reader names the file and line), empty parts
are refused with the file named, requests larger than the pool give a warning, and the
calibration pool is checked disjoint, by content, from the eval examples. The pipeline calls
it again to record the sources in ``results.json`` and ``report.md``. No torch here.
"""

from dataclasses import dataclass
from typing import Any

from act_lens.errors import DataError
from act_lens.evaluation.tasks import Task, get_task
from act_lens.evaluation.tasks.base import HF_PREFIX
from act_lens.evaluation.tasks.builtin import BuiltinTask
from act_lens.evaluation.tasks.holdout import SplitFile, shared_examples, without_overlap

CENSUS_CAP = 64  # prompts per task the sink census reads (pipeline._census)


@dataclass(frozen=True)
class TaskData:
    """One task's data for one command.

    Attributes:
        calibration: where calibration prompts and demonstrations come from, in words (None:
            this command draws none).
        eval: where the evaluated (or censused) examples come from (None: none are read).
        calibration_pool: examples calibration may draw from (after leaving out ``dropped``).
        eval_pool: examples of the eval split (before ``--limit``).
        dropped: train examples left out because their text is also in the eval split.
    """

    task: str
    calibration: str | None = None
    eval: str | None = None
    calibration_pool: int | None = None
    eval_pool: int | None = None
    dropped: int = 0


@dataclass(frozen=True)
class Notice:
    """A line for the user: ``kind`` is ``"warning"`` (probably not what was meant) or ``"note"``."""

    kind: str
    text: str


def data_spec(cfg: Any) -> Any:
    """What the tasks load from: a ``SplitFile`` for ``--data-file``, else ``--data-dir``.

    One file holds no splits, so it is cut into a calibration part and an eval part by
    content hash: ``search`` and ``eval`` on the same file then never share an example.
    """
    return SplitFile(cfg.data_file) if cfg.data_file else cfg.data_dir


def _roles(cfg: Any) -> tuple[bool, bool]:
    """(reads calibration examples, reads eval examples) for this command."""
    searches = cfg.command == "search" or (cfg.command == "run" and cfg.head_set is None)
    evaluates = cfg.command in ("sinks", "eval", "run")
    return searches or (evaluates and cfg.shots > 0 and cfg.command != "sinks"), evaluates


def describe(task: Task, data: Any, split: str) -> str:
    """Where ``task.load(data, split)`` reads from, in words."""
    if isinstance(data, SplitFile):
        if isinstance(task, BuiltinTask):
            return f"{data.path}, rows with split={split}"
        return data.describe(task, split)
    if isinstance(data, str) and data.startswith(HF_PREFIX):
        return f"{data} ({split} split)"
    files = task.data_files(data, split)
    names = ", ".join(str(f) for f in files[:3]) + (
        f" and {len(files) - 3} more" if len(files) > 3 else ""
    )
    return f"{task.name} {split} split ({names})"


def _load(task: Task, data: Any, split: str, what: str) -> list[Any]:
    examples = task.load(data, split)
    if examples:
        return examples
    if isinstance(data, SplitFile) and isinstance(task, BuiltinTask):
        raise DataError(f'{data.path}: no rows with "split": "{split}" ({what} examples)')
    if isinstance(data, SplitFile):
        rows = len(task.load(data.path, split))
        if rows == 0:
            raise DataError(f"{data.path}: the file holds no examples of task {task.name!r}")
        raise DataError(
            f"{data.path}: none of its {rows} examples falls in the {what} part (the file is "
            f"split by content hash, {data.eval_fraction:.0%} of texts for eval); pass a file "
            "with more rows"
        )
    files = ", ".join(str(f) for f in task.data_files(data, split)) or str(data)
    raise DataError(f"{files}: no {what} examples of task {task.name!r} (empty file?)")


def _calib_share(cfg: Any, index: int) -> int:
    """Calibration prompts this task gets: all of them per task, else its share of the mix."""
    if cfg.per_task and len(cfg.tasks) > 1:
        return int(cfg.calib_size)
    n, k = int(cfg.calib_size), len(cfg.tasks)
    return n // k + (1 if index < n % k else 0)


def plan_data(cfg: Any) -> tuple[dict[str, TaskData], list[Notice]]:
    """Read and check every task's data for ``cfg``'s command; nothing is written.

    Returns:
        ``{task: TaskData}`` and the warnings and notes to show (and record).

    Raises:
        DataError: a file that cannot be read or parsed (file and line named), an empty part,
            a pool smaller than ``--shots``, or calibration examples shared with the eval ones.
        ConfigError: an unknown task or split.
    """
    data = data_spec(cfg)
    wants_calib, wants_eval = _roles(cfg)
    plans: dict[str, TaskData] = {}
    notices: list[Notice] = []
    for index, name in enumerate(cfg.tasks):
        task = get_task(name, cfg.prompts)
        if isinstance(data, str) and data.startswith(HF_PREFIX):
            # read through the hub when the command runs: no check here, only the names
            train = task.train_split if wants_calib else None
            plans[name] = TaskData(
                name,
                calibration=describe(task, data, train) if train is not None else None,
                eval=describe(task, data, task.eval_split) if wants_eval else None,
            )
            continue
        try:
            evaluated = _load(task, data, task.eval_split, "eval")
        except DataError:
            if wants_eval:
                raise
            evaluated = []  # a search alone may run on a folder without the eval file
        info: dict[str, Any] = {"eval_pool": len(evaluated)}
        if wants_eval:
            info["eval"] = describe(task, data, task.eval_split)
            notices += _limit_notices(cfg, name, len(evaluated))
        if wants_calib and task.train_split is not None:
            info.update(_calibration(cfg, task, data, evaluated, index, notices))
        plans[name] = TaskData(name, **info)
    return plans, notices


def _limit_notices(cfg: Any, name: str, n_eval: int) -> list[Notice]:
    """A warning when ``--limit`` asks more than there is (or than the census reads)."""
    if cfg.command == "sinks" and (cfg.limit or CENSUS_CAP) > CENSUS_CAP:
        return [
            Notice(
                "warning",
                f"the sink census reads at most {CENSUS_CAP} prompts per task; --limit "
                f"{cfg.limit} is capped at {CENSUS_CAP}",
            )
        ]
    if cfg.limit is not None and cfg.limit > n_eval:
        return [
            Notice(
                "warning",
                f"--limit {cfg.limit} is more than the {n_eval} eval examples of task "
                f"{name!r}; all {n_eval} are used",
            )
        ]
    return []


def _calibration(
    cfg: Any, task: Task, data: Any, evaluated: list[Any], index: int, notices: list[Notice]
) -> dict[str, Any]:
    """The TaskData fields of a task's calibration pool (checked disjoint from ``evaluated``);
    its notes and warnings are added to ``notices``."""
    assert task.train_split is not None  # the caller checked
    name = task.name
    raw = _load(task, data, task.train_split, "calibration")
    pool = without_overlap(raw, evaluated)
    dropped = len(raw) - len(pool)
    if not pool:
        raise DataError(
            f"{describe(task, data, task.train_split)}: every calibration example of task "
            f"{name!r} is also an eval example; pass separate calibration data"
        )
    # A guard on what calibration_mix and build_prompts do: by content, not by uid.
    if shared_examples(pool, evaluated):
        raise DataError(f"task {name!r}: calibration and eval examples overlap")
    if dropped:
        notices.append(
            Notice(
                "note",
                f"task {name!r}: {dropped} calibration examples whose text is also an eval "
                "example are left out",
            )
        )
    if cfg.shots and len(pool) <= cfg.shots:
        raise DataError(
            f"--shots {cfg.shots}: task {name!r} has only {len(pool)} calibration examples to "
            f"draw demonstrations from; use --shots {max(len(pool) - 1, 0)} or fewer"
        )
    searches = cfg.command == "search" or (cfg.command == "run" and cfg.head_set is None)
    share = _calib_share(cfg, index)
    if searches and share > len(pool):
        notices.append(
            Notice(
                "warning",
                f"--calib-size asks {share} calibration prompts of task {name!r}, whose pool "
                f"has {len(pool)}; using {len(pool)}",
            )
        )
    return {
        "calibration": describe(task, data, task.train_split),
        "calibration_pool": len(pool),
        "dropped": dropped,
    }
