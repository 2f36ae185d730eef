"""Check a command's input before any slow work: no model is loaded, nothing is written.

``act-lens`` calls :func:`preflight` right after parsing (which already refused values out of
range: ``RunConfig`` checks them), so a typo in a task name, a missing data file, a damaged
head-set file or an output folder that cannot be written ends in one line
``act-lens: error: ...`` within a second, instead of a traceback after the model has loaded.
Only cheap modules are imported here (no torch).
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

    The values themselves were checked when the ``RunConfig`` was made; this checks what
    needs the file system, the model registry or the installed packages, in order: Ray for
    ``--workers N``, the model spec (a known model installed, a misspelt name,
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
    _check_environment(cfg)
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


def _check_environment(cfg: Any) -> None:
    """What the config asks of the installed packages (its values are checked by RunConfig)."""
    import importlib.util

    workers = str(cfg.workers)
    if workers not in ("auto", "1") and importlib.util.find_spec("ray") is None:
        raise ConfigError(
            f"--workers {workers} needs Ray: pip install 'act-lens[ray]' (or --workers 1)"
        )


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
