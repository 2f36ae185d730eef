"""RunOptions: how one call of the per-head engine runs (batches, progress bars, workers,
precision, checkpoint), as one small object instead of a keyword pile."""

from dataclasses import dataclass, replace
from typing import Any

from act_lens.errors import ConfigError
from act_lens.runtime.checkpoint import Checkpoint
from act_lens.runtime.pool import WorkerPool
from act_lens.runtime.precision import check_precision, current_precision


@dataclass(frozen=True)
class RunOptions:
    """How the engine, the screen and the validation curve run; what they compute does not
    depend on it (parallel equals serial, a resumed job equals an uninterrupted one).

    Attributes:
        batch_size: prompts per batch.
        progress: show progress bars.
        workers: ``None``/1 runs in-process; an int > 1 or a ``WorkerPool`` runs work units
            on Ray actors, merged in a fixed order.
        precision: ``"fp32"``, ``"bf16"`` or ``"auto"``; None: the caller's
            (``precision_context``).
        checkpoint: finished work units are saved there and reused on resume (None: none).

    Example:
        >>> RunOptions(batch_size=4, progress=False).batch_size
        4
    """

    batch_size: int = 8
    progress: bool = True
    workers: "int | WorkerPool | None" = None
    precision: str | None = None
    checkpoint: Checkpoint | None = None

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.precision is not None:
            check_precision(self.precision)
        if not (self.workers is None or isinstance(self.workers, WorkerPool)) and (
            isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1
        ):
            raise ConfigError(
                f"workers must be None, an int >= 1 or a WorkerPool, got {self.workers!r}"
            )
        if self.checkpoint is not None and not isinstance(self.checkpoint, Checkpoint):
            raise ConfigError(
                f"checkpoint must be an act_lens.runtime.checkpoint.Checkpoint, got "
                f"{self.checkpoint!r}; write Checkpoint(path, key=...)"
            )

    @property
    def parallel(self) -> bool:
        """Whether the work runs on Ray workers."""
        return isinstance(self.workers, WorkerPool) or (self.workers or 1) > 1

    def precision_for(self, model: Any) -> str:
        """The precision the work runs in: ``precision``, else the caller's."""
        return self.precision or current_precision(model.cfg.device)

    def serial(self) -> "RunOptions":
        """The options of one work unit: in-process, quiet, no checkpoint."""
        return replace(self, workers=None, progress=False, checkpoint=None)
