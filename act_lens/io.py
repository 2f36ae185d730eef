"""Atomic file writes and JSON helpers for result objects."""

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: "str | os.PathLike[str]", data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and a rename: never a half file.

    The file gets the permissions a plain ``open(path, "w")`` would give (0o666 minus the
    umask), not mkstemp's owner-only 0o600, so shared result folders stay readable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # POSIX
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: "str | os.PathLike[str]", text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))
