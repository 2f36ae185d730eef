"""Check a command's input before any slow work: no model is loaded, nothing is written.

``act-lens`` calls :func:`preflight` right after parsing, so a typo in a task name, a missing
data file, a damaged head-set file, an output folder that cannot be written or a value out of
range ends in one line ``act-lens: error: ...`` within a second, instead of a traceback after
the model has loaded. Only cheap modules are imported here (no torch).
"""

import os
import tempfile
from pathlib import Path
from typing import Any

from act_lens.errors import ConfigError, DataError

# Commands and the splits they read: the census and the evaluation read the eval split, the
# search reads the train split.
_READS = {
    "sinks": ("eval",),
    "search": ("train",),
    "eval": ("eval",),
    "run": ("eval", "train"),
}


def preflight(cfg: Any) -> None:
    """Refuse bad input of a resolved ``RunConfig`` with an ActLensError naming the fix.

    Checks, in order: value ranges, the model spec (and that a known model is installed),
    every task name, the raw files each task needs for this command, the head-set file, and
    last the output folder (writable; a folder that does not exist yet is not created here).

    Raises:
        ConfigError, DataError, HeadSetError, ModelLoadError: the first problem found.
    """
    if cfg.command == "figures":
        if not Path(cfg.out).is_dir():
            raise ConfigError(f"{cfg.out} is not a results folder (written by act-lens run/eval)")
        return
    _check_ranges(cfg)
    n_layers = _check_model(cfg.model)
    if cfg.layers is not None and n_layers is not None and max(cfg.layers) >= n_layers:
        raise ConfigError(
            f"--layers goes up to {max(cfg.layers)} but {cfg.model} has {n_layers} layers "
            f"(0..{n_layers - 1})"
        )
    _check_tasks(cfg)
    if cfg.head_set is not None:
        from act_lens.hooks.headset import head_set_for, load_head_sets

        # Structure, and a set for every task; checked against the model after loading.
        sets = load_head_sets(cfg.head_set)
        for name in cfg.tasks:
            head_set_for(sets, name)
    check_writable_folder(Path(cfg.out))


def _check_ranges(cfg: Any) -> None:
    positive = {
        "--limit": cfg.limit,
        "--calib-size": cfg.calib_size,
        "--batch-size": cfg.batch_size,
        "--max-heads": cfg.max_heads,
        "--screen": cfg.screen,
    }
    for flag, value in positive.items():
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    if cfg.shots < 0:
        raise ConfigError(f"--shots must be >= 0, got {cfg.shots}")
    if any(s < 0 for s in cfg.seeds):
        raise ConfigError(f"--seed values must be >= 0, got {list(cfg.seeds)}")
    if not 0.0 <= cfg.beta <= 1.0:
        raise ConfigError(f"--beta must be in [0, 1], got {cfg.beta}")
    if not cfg.threshold > 0:
        raise ConfigError(f"--threshold must be > 0, got {cfg.threshold}")
    if cfg.min_z is not None and cfg.min_z < 0:
        raise ConfigError(f"--min-z must be >= 0, got {cfg.min_z}")
    if cfg.layers is not None and (not cfg.layers or min(cfg.layers) < 0):
        raise ConfigError(f"--layers needs layer numbers >= 0, got {list(cfg.layers)}")
    from act_lens.analysis.metrics import check_metric

    check_metric(cfg.metric)
    if cfg.prompts not in ("plain", "paper"):
        raise ConfigError(f"--prompts must be plain or paper, got {cfg.prompts!r}")
    if cfg.select not in ("joint", "threshold", "top_k"):
        raise ConfigError(f"--select must be joint, threshold or top_k, got {cfg.select!r}")
    if cfg.select == "top_k" and (cfg.top_k is None or cfg.top_k < 1):
        raise ConfigError("--select top_k needs --top-k N with N >= 1")
    if cfg.method not in ("act", "zerotuning"):
        raise ConfigError(f"--method must be act or zerotuning, got {cfg.method!r}")
    if cfg.unsupervised and cfg.method != "zerotuning":
        raise ConfigError("--unsupervised is for --method zerotuning (ACT's search needs labels)")
    if cfg.schedule not in ("exhaustive", "halving"):
        raise ConfigError(f"--schedule must be exhaustive or halving, got {cfg.schedule!r}")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in (0, 1), got {cfg.val_fraction}")
    if cfg.select == "joint" and cfg.command in ("search", "run") and not cfg.head_set:
        if cfg.calib_size < 2 * (2 if cfg.per_task else len(cfg.tasks)):
            raise ConfigError(
                f"--calib-size {cfg.calib_size} is too small to split into a search and a "
                "validation part for every task; use more, or --select threshold"
            )


def _check_model(spec: str) -> int | None:
    """Parse the model spec; for a known model, check its packages. Returns its layer count."""
    if spec == "tiny-random":
        return 3
    from act_lens.models.registry import parse_spec

    parsed = parse_spec(spec)
    if parsed.known is not None:
        parsed.known.part_paths()  # ModelLoadError with the install command when missing
        return parsed.known.n_layers
    return None


def _check_tasks(cfg: Any) -> None:
    from act_lens.evaluation.tasks import get_task

    tasks = [get_task(name, cfg.prompts) for name in cfg.tasks]  # ConfigError: known names
    data = cfg.data_file or cfg.data_dir
    if cfg.per_task and len(tasks) < 2 and cfg.command in ("search", "run"):
        raise ConfigError("--per-task needs at least two --task (one head set per task)")
    for task in tasks:
        for role in _READS[cfg.command]:
            if role == "train" and cfg.head_set is not None and cfg.command == "run":
                continue  # run with a given head set does not search
            split = task.eval_split if role == "eval" else task.train_split
            if split is None:
                raise DataError(
                    f"task {task.name!r} has no train split here, so it cannot be searched on; "
                    "search on another task and pass --head-set"
                )
            if role == "eval" and cfg.shots and task.train_split is None:
                raise DataError(f"task {task.name!r} has no train split for {cfg.shots}-shot demos")
            for path in task.data_files(data, split):
                if not os.access(path, os.R_OK):
                    raise DataError(f"{path} is not readable; check its permissions")


def check_writable_folder(folder: Path) -> None:
    """Refuse an output folder that cannot be created or written, leaving nothing behind.

    A folder that exists gets a probe file (created and removed); one that does not exist is
    checked through its nearest existing parent, which must be a writable folder.

    Raises:
        ConfigError: naming the folder and what to pass instead.
    """
    target = folder
    while not target.exists():
        if target.parent == target:
            break
        target = target.parent
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--out {folder}: {target} is a file, not a folder; choose another --out")
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".act_lens_probe_"):
            pass
    except OSError as err:
        raise ConfigError(
            f"--out {folder} cannot be written ({err.strerror or err}); choose a writable folder"
        ) from err
