"""RunConfig: the resolved settings of one ``act-lens`` command (written to ``config.json``).

Its own module so that the command line (which builds it) and the pipeline (which runs it)
both import it without importing each other.
"""

from dataclasses import dataclass
from typing import Any

from act_lens.core.settings import SinkSettings

DEFAULT_TASK = "reviews"
# Fields that config.json files of earlier releases hold and RunConfig no longer has (``extra``
# was always empty): read and dropped, so such files still replay and resume.
RETIRED_FIELDS = frozenset({"extra"})


@dataclass(frozen=True)
class RunConfig:
    """Resolved settings of one command; every flag of ``act-lens`` is a field."""

    command: str
    model: str = "smollm2-135m"
    device: str = "cpu"
    tasks: tuple[str, ...] = (DEFAULT_TASK,)
    data_dir: str | None = None
    data_file: str | None = None
    prompts: str = "plain"
    limit: int | None = None
    calib_size: int = 128
    balance: bool = True
    shots: int = 0
    seeds: tuple[int, ...] = (0,)
    head_set: str | None = None
    method: str = "act"
    unsupervised: bool = False
    # None: not given. The search and the census use SinkSettings' defaults; eval uses those
    # stored in the head set (``app.intervention.settings_for``); a given value overrides them.
    beta: float | None = None
    threshold: float | None = None
    rule: str | None = None
    layers: tuple[int, ...] | None = None
    metric: str = "choice_logprob"
    select: str = "joint"
    top_k: int | None = None
    val_fraction: float = 0.5
    margin: float = 0.0
    min_z: float | None = None
    max_heads: int | None = None
    screen: int | None = 48
    schedule: str = "exhaustive"
    confidence: float = 0.9
    workers: str = "auto"
    ray_address: str | None = None
    precision: str = "auto"
    per_task: bool = False
    controls: bool = True
    batch_size: int = 8
    out: str = "runs/act_lens"

    @property
    def sink_settings(self) -> SinkSettings:
        """How this run finds and calibrates sinks: the one object every step is given (the
        values given, SinkSettings' defaults for the others)."""
        given: dict[str, Any] = {"beta": self.beta, "threshold": self.threshold, "rule": self.rule}
        return SinkSettings(**{k: v for k, v in given.items() if v is not None})
