"""Low-level file access for the raw readers: lines, JSON lines, CSV rows, errors.

Every problem becomes a :class:`~act_lens.errors.DataError` naming the file and the
1-based line, so a bad row in a 10,000-line file can be found at once.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from act_lens.errors import DataError


def fail(path: Path, line: int | None, message: str) -> NoReturn:
    """Raise a DataError located at ``path:line`` (``line`` 1-based, ``None`` for the whole file)."""
    where = f"{path}:{line}" if line is not None else str(path)
    raise DataError(f"{where}: {message}")


def read_bytes(path: Path) -> bytes:
    """The file's bytes; a missing or unreadable file is a DataError."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        fail(path, None, "file not found (is the data directory laid out like shared/data?)")
    except OSError as err:
        fail(path, None, f"cannot read file: {err}")


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """Decode the whole file; invalid bytes are a DataError naming their line."""
    raw = read_bytes(path)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        fail(path, line, f"not valid {encoding} text ({err.reason}); is this the right file?")


def read_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    """Decode ``path`` and split it on ``"\\n"`` only.

    ``str.splitlines`` would also split on U+0085, which latin-1 files (MR) contain as a
    character, so the split is done by hand. A final empty line (trailing newline) is
    dropped and a trailing ``"\\r"`` removed from each line.

    Raises:
        DataError: missing file, or bytes that are not valid ``encoding`` (line named).
    """
    lines = read_text(path, encoding).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSON-lines file.

    Raises:
        DataError: a line is not a JSON object.
    """
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            fail(path, number, f"not valid JSON ({err.msg})")
        if not isinstance(obj, dict):
            fail(path, number, f"expected a JSON object per line, got {type(obj).__name__}")
        yield number, obj


def iter_csv(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first line number, row)`` for each CSV row (quoted fields may span lines).

    Windows line ends inside quoted fields (some MMLU files) become ``"\\n"``.

    Raises:
        DataError: the file is not UTF-8 or not parseable CSV.
    """
    reader = csv.reader(io.StringIO(read_text(path), newline=""), strict=True)
    start = 1
    try:
        for row in reader:
            yield start, [cell.replace("\r\n", "\n") for cell in row]
            start = reader.line_num + 1
    except csv.Error as err:
        fail(path, reader.line_num, f"malformed CSV ({err})")


def get_str(obj: dict[str, Any], key: str, path: Path, line: int) -> str:
    """``obj[key]`` as a string, or a DataError naming the missing/ill-typed key."""
    value = obj.get(key)
    if not isinstance(value, str):
        fail(path, line, f"expected a string field {key!r}, got {type(value).__name__}")
    return value


def source(path: Path, line: int) -> dict[str, str]:
    """The ``meta`` entry that points back to a raw line: ``{"source": "name:line"}``."""
    return {"source": f"{path.name}:{line}"}
