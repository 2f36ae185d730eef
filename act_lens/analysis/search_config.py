"""SearchConfig: how the head search runs (metric, screening, schedule, workers, precision).

What the search finds is decided by the calibration prompts, the sink settings, the
``Selection`` and the metric; the rest of this object decides how fast it gets there.
"""

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from act_lens.analysis.effects import DEFAULT_METRIC, check_metric
from act_lens.analysis.halving import Halving
from act_lens.analysis.metrics import DEFAULT_SCREEN
from act_lens.errors import ConfigError
from act_lens.runtime.checkpoint import Checkpoint
from act_lens.runtime.options import RunOptions
from act_lens.runtime.pool import auto_workers
from act_lens.runtime.precision import check_precision, resolve_precision

Schedule = Literal["auto", "exhaustive", "halving"]
# Jobs smaller than this many head-prompt evaluations run in-process under workers="auto":
# starting Ray and loading a model per worker (about 10 s here) costs more than such a job.
# Above it, one single-threaded worker per core beats one process with a thread per core: on
# a busy 2-core machine the SST-2 search ran 3,072 evaluations at 40/s on two workers, while
# the in-process search ran 1,152 at 4/s (two OpenMP threads spin-wait when a core is taken).
AUTO_MIN_EVALUATIONS = 500


@dataclass(frozen=True)
class SearchConfig:
    """How the single-head search runs.

    Attributes:
        metric: the per-head ranking metric (``act_lens.analysis.metrics.METRIC_HELP``).
        screen: rank every candidate by attribution patching first and evaluate only the best
            ``screen`` exactly (``None``: every candidate). The default, 96, is the cheapest
            screen whose sets held out as well as every candidate's on SST-2, TREC, SUBJ and
            DBpedia (mean +0.1 points; screen 48: -2.0; ``analyses/search_study.py``).
        schedule: ``"exhaustive"`` (every evaluated head on every ranking prompt),
            ``"halving"`` (successive halving over prompts, ``halving``; each round's
            evaluations run on the workers) or ``"auto"`` (default: halving when there are at
            least two first rounds' worth of ranking prompts, ``2 * halving.first``, else
            exhaustive; :meth:`schedule_for`). See ``analyses/search_study.py`` for the
            held-out comparison behind it.
        halving: the schedule's settings when ``schedule="halving"``.
        workers: ``"auto"`` (one Ray worker per core where Ray is installed and the job is
            big enough, else in-process), 1 (in-process) or a number of Ray workers.
        ray_address: ``None`` starts a local Ray instance; ``"auto"`` joins a running cluster.
        precision: ``"fp32"``, ``"bf16"`` (autocast) or ``"auto"`` (default: bf16 where the
            hardware has it natively, else fp32) for the engine, screening and the validation
            curve. bf16 chose sets within a point of fp32's on held-out data
            (``analyses/search_study.py``).
        batch_size: prompts per batch.
        progress: show progress bars.
        checkpoint: file of finished work (screen, work units or halving rounds); an
            interrupted search resumes from it, a finished one removes it (None: no file).

    Example:
        >>> SearchConfig(screen=48, workers=2, precision="bf16").workers
        2
    """

    metric: str = DEFAULT_METRIC
    screen: int | None = DEFAULT_SCREEN
    schedule: Schedule = "auto"
    halving: Halving = Halving()
    workers: "int | Literal['auto']" = "auto"
    ray_address: str | None = None
    precision: Literal["fp32", "bf16", "auto"] = "auto"
    batch_size: int = 8
    progress: bool = True
    checkpoint: "str | os.PathLike[str] | None" = None

    def __post_init__(self) -> None:
        check_metric(self.metric)
        check_precision(self.precision)
        if self.schedule not in ("auto", "exhaustive", "halving"):
            raise ConfigError(
                f"schedule must be 'auto', 'exhaustive' or 'halving', got {self.schedule!r}"
            )
        if self.screen is not None and (isinstance(self.screen, bool) or self.screen < 1):
            raise ConfigError(f"screen must be a number of heads >= 1, got {self.screen!r}")
        if self.workers != "auto" and (
            isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1
        ):
            raise ConfigError(f"workers must be 'auto' or an int >= 1, got {self.workers!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")

    def schedule_for(self, n_prompts: int) -> Literal["exhaustive", "halving"]:
        """The schedule a search on ``n_prompts`` ranking prompts runs (``"auto"`` resolved).

        Example:
            >>> SearchConfig().schedule_for(24), SearchConfig().schedule_for(64)
            ('exhaustive', 'halving')
        """
        if self.schedule != "auto":
            return self.schedule
        return "halving" if n_prompts >= 2 * self.halving.first else "exhaustive"

    def n_workers(self, evaluations: int, has_spec: bool) -> int:
        """The number of workers this job runs on (``"auto"`` resolved)."""
        if self.workers != "auto":
            return int(self.workers)
        if not has_spec or evaluations < AUTO_MIN_EVALUATIONS:
            return 1
        return auto_workers()

    def workers_for(
        self, model: Any, layers: Sequence[int], n_prompts: int, *, passes: int = 1
    ) -> int:
        """The workers a job of ``passes`` sweeps over the candidate heads of ``layers`` (at
        most ``screen`` of them) on ``n_prompts`` prompts runs on."""
        candidates = len(layers) * int(model.cfg.n_heads)
        evaluations = passes * min(self.screen or candidates, candidates) * n_prompts
        return self.n_workers(evaluations, hasattr(model, "act_lens_load"))

    def to_dict(self) -> dict[str, Any]:
        """What the search computes with (where it keeps its checkpoint is left out)."""
        d = asdict(self)
        d["halving"] = asdict(self.halving) if self.schedule != "exhaustive" else None
        del d["checkpoint"]
        return d

    def result_fields(self) -> dict[str, Any]:
        """:meth:`to_dict` without how the search runs (workers, cluster, progress bars): what
        decides its results, and so keys its checkpoint."""
        d = self.to_dict()
        for k in ("workers", "ray_address", "progress"):
            del d[k]
        return d

    def run_options(self, model: Any, workers: Any, checkpoint: Checkpoint | None) -> RunOptions:
        """The engine's options for this search: ``workers`` a pool or None."""
        return RunOptions(
            batch_size=self.batch_size, progress=self.progress, workers=workers,
            precision=resolve_precision(self.precision, model.cfg.device), checkpoint=checkpoint,
        )  # fmt: skip
