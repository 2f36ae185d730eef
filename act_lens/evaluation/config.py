"""EvalConfig: how an evaluation runs (split, demonstrations, batching, scoring).

``evaluate`` and ``content_free_scores`` take one ``config=EvalConfig(...)``, or its fields as
keywords for a one-liner (:func:`act_lens.errors.config_from`). Pure data: no torch.
"""

from dataclasses import dataclass
from typing import Any, Literal

from act_lens.errors import ConfigError

Scoring = Literal["first_token", "full"]


@dataclass(frozen=True)
class EvalConfig:
    """How an evaluation runs.

    Attributes:
        split: split to evaluate (None: the task's eval split).
        shots: in-context demonstrations from the train split (drawn once per ``seed``).
        seed: demonstration seed.
        batch_size: prompts per forward (left-padded, sorted by length).
        scoring: ``"first_token"`` (next-token log-prob of each choice's first token: label
            words, option letters) or ``"full"`` (log-likelihood of each full continuation;
            multiple choice: option texts, with ``accuracy_norm`` = lm-eval's ``acc_norm``).
        progress: show a progress bar.
        workers: ``None``/1 scores in-process; an int > 1 on that many Ray workers (the
            pool a :func:`~act_lens.runtime.pool.pool_scope` keeps open is reused) or on a
            given ``WorkerPool``; ``"auto"``: on the pool a ``pool_scope`` keeps open for the
            model (e.g. the search's), else in-process. The batches are the serial run's, so
            the result is the same.

    Example:
        >>> EvalConfig(shots=4, seed=1).shots
        4
    """

    split: str | None = None
    shots: int = 0
    seed: int = 0
    batch_size: int = 8
    scoring: Scoring = "first_token"
    progress: bool = True
    workers: Any = None

    def __post_init__(self) -> None:
        if self.shots < 0:
            raise ConfigError(f"shots must be >= 0, got {self.shots}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        w = self.workers
        if not (w is None or w == "auto" or hasattr(w, "map")) and (
            isinstance(w, bool) or not isinstance(w, int) or w < 1
        ):
            raise ConfigError(
                f"workers must be None, 'auto', an int >= 1 or a WorkerPool, got {w!r}"
            )
        if self.scoring not in ("first_token", "full"):
            raise ConfigError(f"scoring must be 'first_token' or 'full', got {self.scoring!r}")
