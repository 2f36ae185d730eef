"""Atomic file writes and JSON helpers for result objects."""

import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from act_lens.errors import DataError


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


class JsonFile:
    """``save``/``load`` of a result object as one JSON file, for classes with ``to_dict`` and
    ``from_dict``; ``KIND`` names the object in the error of a file that cannot be read."""

    KIND: ClassVar[str] = "result"

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        raise NotImplementedError

    def save(self, path: "str | os.PathLike[str]") -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> Any:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"cannot read {cls.KIND} {path}: {err}") from err
