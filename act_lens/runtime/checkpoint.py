"""One checkpoint file of finished work units, keyed by everything that decides their results."""

import io
import os
from pathlib import Path
from typing import Any

import torch

from act_lens.errors import ConfigError, DataError
from act_lens.io import atomic_write_bytes


class Checkpoint:
    """Finished units of one job, saved after each unit (atomically), loaded on resume.

    ``key`` fingerprints the job (model weights, prompts, settings): a file written by another
    job is refused rather than mixed in. Values are anything ``torch.save`` stores with
    ``weights_only`` loading (tensors, numbers, strings, lists and dicts of them).

    Example:
        >>> ckpt = Checkpoint("runs/x/search.ckpt", key="3f2a")        # doctest: +SKIP
        >>> todo = [u for u in units if u not in ckpt]                  # doctest: +SKIP
        >>> ckpt.put(unit, result)                                       # doctest: +SKIP
    """

    def __init__(self, path: "str | os.PathLike[str] | None", key: str) -> None:
        self.path = None if path is None else Path(path)
        self.key = key
        self.done: dict[str, Any] = self._load()
        self.prefix = ""

    def scoped(self, prefix: str) -> "Checkpoint":
        """A view of this checkpoint whose unit names start with ``prefix`` (one step's units,
        such as one halving round's), written to the same file."""
        view = object.__new__(Checkpoint)
        view.path, view.key, view.done, view.prefix = self.path, self.key, self.done, prefix
        return view

    def discard(self, prefix: str) -> None:
        """Forget the units named ``prefix...`` (a step whose result is saved under another
        name); the file is rewritten by the next :meth:`put`."""
        for name in [n for n in self.done if n.startswith(prefix)]:
            del self.done[name]

    def _load(self) -> dict[str, Any]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            state = torch.load(self.path, weights_only=True)
        except Exception as err:  # noqa: BLE001 - a damaged checkpoint is reported, not used
            raise DataError(
                f"checkpoint {self.path} cannot be read ({err}); delete it to start over"
            ) from err
        if not isinstance(state, dict) or state.get("key") != self.key:
            raise ConfigError(
                f"checkpoint {self.path} belongs to a job with other settings, model or prompts; "
                "delete it or choose another output folder"
            )
        return dict(state.get("units", {}))

    def __contains__(self, unit: str) -> bool:
        return self.prefix + unit in self.done

    def __len__(self) -> int:
        return len(self.done)

    def get(self, unit: str) -> Any:
        return self.done[self.prefix + unit]

    def put(self, unit: str, value: Any) -> None:
        """Record a finished unit and write the file (when the checkpoint has a path)."""
        self.done[self.prefix + unit] = value
        if self.path is not None:
            buf = io.BytesIO()
            torch.save({"key": self.key, "units": self.done}, buf)
            atomic_write_bytes(self.path, buf.getvalue())

    def finish(self) -> None:
        """The job is done and its result saved elsewhere: remove the file."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
