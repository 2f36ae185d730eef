"""Check a command's input before any slow work: no model is loaded, nothing is written.

``act-lens`` calls :func:`preflight` right after parsing, so a typo in a task name, a missing
data file, a damaged head-set file, an output folder that cannot be written or a value out of
range ends in one line ``act-lens: error: ...`` within a second, instead of a traceback after
the model has loaded. Only cheap modules are imported here (no torch).
"""

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from act_lens.app.data_plan import Notice, TaskData, plan_data
from act_lens.errors import ConfigError, DataError, HeadSetError

# Commands and the splits they read: the census and the evaluation read the eval split, the
# search reads the train split.
_READS = {
    "sinks": ("eval",),
    "search": ("train",),
    "eval": ("eval",),
    "run": ("eval", "train"),
}


@dataclass(frozen=True)
class Checked:
    """What preflight found besides errors: warnings and notes to show, each task's data."""

    notices: list[Notice] = field(default_factory=list)
    data: dict[str, TaskData] = field(default_factory=dict)

    def record(self, cfg: Any, command_line: list[str], notes: list[str]) -> dict[str, Any]:
        """``provenance.json``: the config id, the command line, the data and every notice."""
        from act_lens import __version__
        from act_lens.app.outdir import config_id

        return {
            "config_id": config_id(cfg),
            "command_line": command_line,
            "act_lens_version": __version__,
            "data": {name: asdict(d) for name, d in self.data.items()},
            "notices": [f"note: {n}" for n in notes]
            + [f"{n.kind}: {n.text}" for n in self.notices],
        }


def preflight(cfg: Any) -> Checked:
    """Refuse bad input of a resolved ``RunConfig`` with an ActLensError naming the fix.

    Checks, in order: value ranges, the model spec (a known model installed, a misspelt name,
    a hub name with no hub), every task name, the data each task needs for this command (read
    and parsed, calibration disjoint from eval by content), the head-set file (ranges against
    the model's known shape, the flags that apply to its method), and last the output folder
    (writable; a folder that does not exist yet is not created here).

    Returns:
        The warnings and notes to show, and each task's data sources.

    Raises:
        ConfigError, DataError, HeadSetError, ModelLoadError: the first problem found.
    """
    if cfg.command == "figures":
        if not Path(cfg.out).is_dir():
            raise ConfigError(f"{cfg.out} is not a results folder (written by act-lens run/eval)")
        return Checked()
    _check_ranges(cfg)
    shape = _check_model(cfg.model)
    n_layers = shape[0] if shape is not None else None
    if cfg.layers is not None and n_layers is not None and max(cfg.layers) >= n_layers:
        raise ConfigError(
            f"--layers goes up to {max(cfg.layers)} but {cfg.model} has {n_layers} layers "
            f"(0..{n_layers - 1})"
        )
    _check_tasks(cfg)
    data, notices = plan_data(cfg)
    if cfg.head_set is not None:
        notices += _check_head_sets(cfg, shape)
    check_writable_folder(Path(cfg.out))
    return Checked(notices, data)


def _check_head_sets(cfg: Any, shape: tuple[int, int] | None) -> list[Notice]:
    """A set for every task, heads inside the model's known shape, flags its method takes."""
    from act_lens.app.intervention import check_flags
    from act_lens.hooks.headset import head_set_for, load_head_sets

    sets = load_head_sets(cfg.head_set)
    for name in cfg.tasks:
        head_set_for(sets, name)
    if shape is not None:
        n_layers, n_heads = shape
        for task, hs in sets.items():
            where = cfg.head_set if task is None else f"{cfg.head_set} [{task}]"
            made = hs.provenance.get("model") or {}
            made_for = ""
            if isinstance(made, dict) and "n_layers" in made and "n_heads" in made:
                made_for = (
                    f"; it was made for {made.get('model_name', 'a model')} "
                    f"({made['n_layers']} layers x {made['n_heads']} heads)"
                )
            bad = [(la, h) for la, h in hs if la >= n_layers or h >= n_heads]
            if bad:
                raise HeadSetError(
                    f"{where}: head {bad[0]} is out of range for {cfg.model} ({n_layers} layers "
                    f"x {n_heads} heads){made_for}; search heads for this model with "
                    f"act-lens search --model {cfg.model}"
                )
            if made_for and (made["n_layers"], made["n_heads"]) != (n_layers, n_heads):
                raise HeadSetError(
                    f"{where} was not made for {cfg.model} ({n_layers} layers x {n_heads} "
                    f"heads){made_for}; search heads for this model with act-lens search "
                    f"--model {cfg.model}"
                )
    return [Notice("note", text) for text in check_flags(cfg, sets, str(cfg.head_set))]


def _check_ranges(cfg: Any) -> None:
    positive = {
        "--limit": cfg.limit,
        "--calib-size": cfg.calib_size,
        "--batch-size": cfg.batch_size,
        "--max-heads": cfg.max_heads,
    }
    for flag, value in positive.items():
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    if cfg.screen is not None and cfg.screen < 0:
        raise ConfigError(f"--screen must be >= 0 (0: every candidate head), got {cfg.screen}")
    if cfg.shots < 0:
        raise ConfigError(f"--shots must be >= 0, got {cfg.shots}")
    if any(s < 0 for s in cfg.seeds):
        raise ConfigError(f"--seed values must be >= 0, got {list(cfg.seeds)}")
    if cfg.beta is not None and not 0.0 <= cfg.beta <= 1.0:
        raise ConfigError(f"--beta must be in [0, 1], got {cfg.beta}")
    if cfg.threshold is not None and not cfg.threshold > 0:
        raise ConfigError(f"--threshold must be > 0, got {cfg.threshold}")
    if cfg.rule not in (None, "mean", "alpha"):
        raise ConfigError(f"--rule must be mean or alpha, got {cfg.rule!r}")
    if cfg.rule in (None, "mean") and cfg.threshold is not None and cfg.threshold >= 1:
        raise ConfigError(
            f"--threshold {cfg.threshold} with the mean rule finds no sink: a key's mean "
            "attention is at most 1; use a value below 1 (default 0.1), or --rule alpha"
        )
    repeated = sorted({t for t in cfg.tasks if cfg.tasks.count(t) > 1})
    if repeated:
        raise ConfigError(
            f"--task {repeated[0]} is given {cfg.tasks.count(repeated[0])} times; give each "
            "task once"
        )
    if not cfg.tasks:
        raise ConfigError("no task given; pass --task NAME (e.g. --task reviews)")
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
    if cfg.method == "zerotuning" and cfg.beta is not None and cfg.command in ("search", "run"):
        raise ConfigError(
            "--beta is an ACT setting; --method zerotuning scales the first token's attention "
            "by a gamma it searches for: drop --beta"
        )
    if cfg.unsupervised and cfg.method != "zerotuning":
        raise ConfigError("--unsupervised is for --method zerotuning (ACT's search needs labels)")
    if cfg.schedule not in ("exhaustive", "halving"):
        raise ConfigError(f"--schedule must be exhaustive or halving, got {cfg.schedule!r}")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in (0, 1), got {cfg.val_fraction}")
    if not 0.5 < cfg.confidence < 1.0:
        raise ConfigError(f"--confidence must be in (0.5, 1), e.g. 0.9; got {cfg.confidence}")
    if cfg.precision not in ("fp32", "bf16", "auto"):
        raise ConfigError(f"--precision must be fp32, bf16 or auto, got {cfg.precision!r}")
    workers = str(cfg.workers)
    if workers != "auto" and not (workers.isdigit() and int(workers) >= 1):
        raise ConfigError(f"--workers must be auto or a number >= 1, got {cfg.workers!r}")
    if workers not in ("auto", "1"):
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ConfigError(
                f"--workers {workers} needs Ray: pip install 'act-lens[ray]' (or --workers 1)"
            )
        if cfg.schedule == "halving":
            raise ConfigError("--schedule halving runs in-process: use --workers 1")
    if cfg.command in ("search", "run") and not cfg.head_set:
        minimum = min_calib_size(cfg)
        if cfg.calib_size < minimum:
            what = (
                "a search and a validation part of at least 2 prompts each"
                if cfg.select == "joint"
                else "at least 2 prompts to rank heads on"
            )
            per = "per task" if cfg.per_task or len(cfg.tasks) == 1 else "for the tasks together"
            raise ConfigError(
                f"--calib-size {cfg.calib_size} is too small to split into {what}; the "
                f"minimum {per} is {minimum}"
            )


def min_calib_size(cfg: Any) -> int:
    """The smallest ``--calib-size``: every task's search and validation parts get 2 prompts."""
    import math

    per_task = 2
    if cfg.select == "joint":
        frac = cfg.val_fraction
        per_task = max(math.ceil(2 / frac), math.ceil(2 / (1 - frac)))
    return per_task * (1 if cfg.per_task else len(cfg.tasks))


def _check_model(spec: str) -> tuple[int, int] | None:
    """Parse the model spec (a misspelt short name is refused with the nearest known one); for
    a known model check its packages, for a hub name that the hub (or the local cache) has
    it. Returns the model's (layers, heads) when known without loading it."""
    from act_lens.models.registry import TINY_SHAPE, parse_spec

    if spec == "tiny-random":
        return TINY_SHAPE
    parsed = parse_spec(spec)
    if parsed.known is not None:
        parsed.known.part_paths()  # ModelLoadError with the install command when missing
        if parsed.known.n_layers is not None and parsed.known.n_heads is not None:
            return parsed.known.n_layers, parsed.known.n_heads
        return None
    if parsed.kind == "hub":
        from act_lens.models.hub_access import check_hub_model

        check_hub_model(parsed.value)  # fails fast when offline or unreachable
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
