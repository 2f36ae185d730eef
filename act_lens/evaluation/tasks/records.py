"""What raw-file readers return: records before they have a uid, and the reader type.

Its own module so that readers, split layouts and the hub converters depend on it without
depending on the task classes (which use the layouts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Record:
    """An example before it has a uid (what file readers return)."""

    fields: Mapping[str, str]
    label: int
    options: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict)


FileReader = Callable[[Path], "list[Record]"]
