"""The output folder of a command: never clobber another run's results, one run at a time.

* A folder that holds results of a run with another config is refused, unless ``--overwrite``
  (which removes those results first, so the folder never mixes two runs).
* A folder holding a run with the same config is resumed: the search continues from its
  checkpoint, so "run the same command again" finishes an interrupted run. ``--resume``
  asks for exactly that and is refused when there is nothing with this config to resume.
* A lock file (``.act_lens.lock``, held with ``flock`` while the command runs) refuses a
  second command on the same folder; it is released when the process ends, even when killed.
* The results record the config they came from (:func:`config_id`).

Every check that can refuse runs before anything is written. No torch here.
"""

import hashlib
import json
import os
import shutil
import socket
import time
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from act_lens.app.config import RETIRED_FIELDS
from act_lens.errors import ConfigError

LOCK_NAME = ".act_lens.lock"
# Fields that do not change what a run computes: a run may resume with other values.
RESULT_NEUTRAL = frozenset(
    {"command_line", "out", "device", "batch_size", "workers", "ray_address"}
)
# What act-lens writes into an output folder (globs, relative to it).
OUTPUTS = (
    "config.json",
    "provenance.json",
    "results.json",
    "report.md",
    "report.html",
    "attention_examples.json",
    "flip_prompts.json",
    "census.json",
    "head_set*.json",
    "head_sets.json",
    "head_effects*.pt",
    "search*.ckpt",
    "eval",
    "figures",
)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def fingerprint(cfg: Any) -> dict[str, Any]:
    """The config fields that decide the results (JSON values, tuples as lists)."""
    return {k: _plain(v) for k, v in asdict(cfg).items() if k not in RESULT_NEUTRAL}


def config_id(cfg: Any) -> str:
    """A short hash of :func:`fingerprint`: the same id means the same computation."""
    text = json.dumps(fingerprint(cfg), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def existing_outputs(folder: Path) -> list[Path]:
    """The act-lens outputs present in ``folder`` (empty for a new or unrelated folder)."""
    if not folder.is_dir():
        return []
    return sorted({p for pattern in OUTPUTS for p in folder.glob(pattern)})


def _differences(cfg: Any, saved: dict[str, Any]) -> list[str]:
    defaults = {
        f.name: f.default_factory() if f.default_factory is not MISSING else f.default
        for f in fields(cfg)
        if f.default is not MISSING or f.default_factory is not MISSING
    }
    now = fingerprint(cfg)
    diffs = []
    for key in sorted(set(now) | (set(saved) - RESULT_NEUTRAL - RETIRED_FIELDS)):
        old = _plain(saved[key]) if key in saved else _plain(defaults.get(key))
        if old != now.get(key):
            diffs.append(f"{key} {old!r} -> {now.get(key)!r}")
    return diffs


def check_out(cfg: Any, *, resume: bool = False, overwrite: bool = False) -> str:
    """Decide what to do with ``cfg.out`` without touching it.

    Returns:
        ``"new"`` (nothing there), ``"resume"`` (a run with the same config) or
        ``"overwrite"`` (another run's results, to be removed).

    Raises:
        ConfigError: another run's results without ``--overwrite``, ``--resume`` with nothing
            to resume or with another config, or both flags.
    """
    out = Path(cfg.out)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other; pass one of them")
    found = existing_outputs(out)
    if not found:
        if resume:
            raise ConfigError(f"--resume: {out} holds no act-lens run to resume; drop --resume")
        return "new"
    if overwrite:
        return "overwrite"
    saved_file = out / "config.json"
    try:
        saved = json.loads(saved_file.read_text())
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"--out {out} holds act-lens results ({found[0].name}...) but no readable config.json "
            f"({type(err).__name__}); pass --overwrite to replace them, or choose another --out"
        ) from err
    diffs = _differences(cfg, saved)
    if not diffs:
        return "resume"
    shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
    flag = "--resume: " if resume else ""
    raise ConfigError(
        f"{flag}--out {out} holds the results of a run with another config ({shown}); "
        "pass --overwrite to replace them, or choose another --out"
    )


def clear_outputs(folder: Path) -> None:
    """Remove what act-lens wrote into ``folder`` (nothing else: the folder may hold more)."""
    for path in existing_outputs(folder):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _holder(handle: TextIO) -> str:
    handle.seek(0)
    return handle.read().strip() or "another process"


def _refuse_busy(folder: Path, holder: str) -> ConfigError:
    return ConfigError(
        f"--out {folder} is in use by another act-lens command ({holder}); wait for it to "
        "finish, or choose another --out"
    )


def check_unlocked(folder: Path) -> None:
    """Refuse a folder whose lock is held, without creating or writing anything.

    Raises:
        ConfigError: another command holds the folder's lock.
    """
    path = folder / LOCK_NAME
    if not path.is_file():
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): no lock
        return
    with open(path) as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            raise _refuse_busy(folder, _holder(handle)) from err
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass
class OutLock:
    """An exclusive lock on an output folder, held while a command runs.

    Raises:
        ConfigError: on enter, when another process (or another command in this one) holds it.
    """

    folder: Path
    _handle: TextIO | None = None

    def __enter__(self) -> "OutLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        handle = open(path, "a+")  # noqa: SIM115 - held until __exit__
        try:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - no flock (Windows): no lock
            pass
        except OSError as err:
            holder = _holder(handle)
            handle.close()
            raise _refuse_busy(self.folder, holder) from err
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()  # releases the flock; the file stays (see module docstring)
            self._handle = None
