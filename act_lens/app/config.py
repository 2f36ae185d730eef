"""RunConfig: the resolved settings of one ``act-lens`` command (written to ``config.json``).

Every option is declared once, as a field: its type (``Literal`` for a choice), its default, its
help text and its range (:func:`option`). The command line builds its flags from these fields
(``app.flags``), ``--config`` files are type-checked against them (``app.config_file``), and
:meth:`RunConfig.__post_init__` checks every value, so a bad value from a flag or from a file is
refused the same way, in one line that names the flag. ``preflight`` keeps only the checks that
need the file system, a model registry or the environment.

Its own module so that the command line (which builds it) and the pipeline (which runs it)
both import it without importing each other. No torch here.
"""

import functools
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from act_lens.analysis.metrics import DEFAULT_METRIC, DEFAULT_SCREEN, METRICS, check_metric
from act_lens.core.settings import SinkSettings
from act_lens.errors import ActLensError, ConfigError

DEFAULT_TASK = "reviews"
# Fields that config.json files of earlier releases hold and RunConfig no longer has (``extra``
# was always empty): read and dropped, so such files still replay and resume.
RETIRED_FIELDS = frozenset({"extra"})
_SINK = SinkSettings()  # the sink settings' defaults, shown in --help


@dataclass(frozen=True)
class Bound:
    """A number range: ``low``/``high`` (None: open-ended), each end inclusive or not."""

    low: int | float
    high: int | float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: int | float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        if self.high is None:
            return above
        return above and (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        low = f"{self.low:g}"
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {low}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{low}, {self.high:g}{right}"


def parse_layers(text: str) -> tuple[int, ...]:
    """``--layers`` text: numbers and ranges, ``2-27`` or ``3,5,7`` (both ends included).

    Raises:
        ActLensError: anything else, or a range that runs backwards.
    """
    out: list[int] = []
    for part in text.split(","):
        try:
            bounds = [int(x) for x in part.split("-")] if part.strip() else []
        except ValueError as err:
            raise ActLensError(
                f"--layers {text!r}: expected numbers and ranges like 2-27 or 3,5,7"
            ) from err
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            raise ActLensError(f"--layers {text!r}: the range {part} runs backwards")
        if len(bounds) > 2:
            raise ActLensError(f"--layers {text!r}: expected numbers and ranges like 2-27 or 3,5,7")
        out.extend(range(bounds[0], bounds[-1] + 1) if bounds else [])
    return tuple(out)


def option(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    bound: Bound | None = None,
    shown: str | None = None,
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """A RunConfig field that is a command-line option.

    Args:
        default: the value when neither a flag nor ``--config`` gives one.
        help: what it does, for ``--help`` (the default is appended).
        flag: the flag (default: ``--`` and the field name with dashes; a True boolean gets
            ``--no-...``); a tuple field's flag is repeated (``--task a --task b``).
        bound: the allowed range of a number (each item of a tuple).
        shown: the default as ``--help`` shows it (default: ``default``; ``""``: not shown).
        parse: how the flag's text becomes the value (default: the field's type).
    """
    meta = {"help": help, "flag": flag, "bound": bound, "shown": shown, "parse": parse}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunConfig:
    """Resolved settings of one command; every flag of ``act-lens`` is a field."""

    command: str
    model: str = option(
        "smollm2-135m", "a known model (act-lens models), a .gguf, a checkpoint folder or a HF name"
    )
    device: str = option("cpu", "where the model runs: cpu, cuda, cuda:1, mps")
    tasks: tuple[str, ...] = option((DEFAULT_TASK,), "task name (repeatable)", flag="--task")
    data_dir: str | None = option(None, "folder laid out like shared/data")
    data_file: str | None = option(None, "one file of the task's raw format (needs --task)")
    prompts: Literal["plain", "paper"] = option(
        "plain", "prompt set: act_lens's own (plain) or the official ACT prompts (paper)"
    )
    limit: int | None = option(
        None, "examples per task (a fixed subsample)", bound=Bound(1), shown="all"
    )
    calib_size: int = option(
        128, "calibration prompts per search (joint selection: part validates)", bound=Bound(1)
    )
    balance: bool = option(
        True, "draw the calibration set at random instead of equal counts per label"
    )
    shots: int = option(0, "in-context demonstrations per prompt", bound=Bound(0))
    seeds: tuple[int, ...] = option(
        (0,), "demonstration seed (repeatable)", flag="--seed", bound=Bound(0)
    )
    head_set: str | None = option(None, "a HeadSet JSON (or a per-task head_sets.json)")
    method: Literal["act", "zerotuning"] = option(
        "act", "search: ACT or ZeroTuning (initial-token scaling; heads and gamma)"
    )
    unsupervised: bool = option(
        False,
        "--method zerotuning: choose heads and gamma by the entropy over the choices, no labels",
    )
    # None: not given. The search and the census use SinkSettings' defaults; eval uses those
    # stored in the head set (``app.intervention.settings_for``); a given value overrides them.
    beta: float | None = option(
        None,
        "ACT: sink columns are scaled by beta (1: unchanged, 0: removed)",
        bound=Bound(0, 1),
        shown=f"the head set's, else {_SINK.beta}",
    )
    threshold: float | None = option(
        None,
        "sink score threshold (rule mean: mean attention received; alpha: alpha / N)",
        bound=Bound(0, low_open=True),
        shown=f"the head set's, else {_SINK.threshold}",
    )
    rule: Literal["mean", "alpha"] | None = option(
        None, "sink rule", shown=f"the head set's, else {_SINK.rule}"
    )
    layers: tuple[int, ...] | None = option(
        None,
        "candidate layers, e.g. 2-27 or 3,5,7",
        bound=Bound(0),
        shown="all but the first and last",
        parse=parse_layers,
    )
    metric: str = option(DEFAULT_METRIC, f"search metric: {', '.join(METRICS)}")
    select: Literal["joint", "threshold", "top_k"] = option(
        "joint", "keep-rule: joint (set size chosen on validation prompts), threshold, top_k"
    )
    top_k: int | None = option(None, "set size for --select top_k", bound=Bound(1))
    val_fraction: float = option(
        0.5,
        "share of the calibration set that validates the joint selection",
        bound=Bound(0, 1, low_open=True, high_open=True),
    )
    margin: float = option(0.0, "keep heads whose mean gain is above this")
    min_z: float | None = option(None, "keep heads whose gain > MIN_Z stderr", bound=Bound(0))
    max_heads: int | None = option(None, "keep at most this many heads", bound=Bound(1))
    screen: int | None = option(
        DEFAULT_SCREEN,
        "exact-evaluate only the N heads the first-order screen ranks best (0: every "
        "candidate head)",
        bound=Bound(0),
    )
    schedule: Literal["auto", "exhaustive", "halving"] = option(
        "auto",
        "single-head search: every head on every prompt (exhaustive), successive halving, or "
        "auto (halving from 32 ranking prompts on, else exhaustive)",
    )
    confidence: float = option(
        0.9,
        "joint selection: a set size counts only if the one-sided lower bound of its "
        "validation accuracy gain at this confidence is above 0",
        bound=Bound(0.5, 1, low_open=True, high_open=True),
    )
    workers: str = option(
        "auto",
        "search workers: auto (one Ray worker per core where Ray is installed and the job is "
        "big enough), 1 (in-process) or N Ray workers",
    )
    ray_address: str | None = option(
        None, "join a running Ray cluster (auto, or ray://host:10001) instead of a local one"
    )
    precision: Literal["fp32", "bf16", "auto"] = option(
        "auto",
        "search and evaluation precision: auto (bf16 autocast where the hardware has it "
        "natively, else fp32), fp32 or bf16",
    )
    per_task: bool = option(
        False, "with several --task: one head set per task instead of one mixed set"
    )
    controls: bool = option(
        True, "skip the random-set and contextual-calibration controls in eval/run"
    )
    batch_size: int = option(8, "prompts per forward", bound=Bound(1))
    out: str = option("runs/act_lens", "output folder", shown="runs/COMMAND")

    def __post_init__(self) -> None:
        for f in fields(self):
            if "help" in f.metadata:
                _check_field(f, getattr(self, f.name))
        _check_sinks(self)
        _check_tasks(self)
        _check_search(self)

    @property
    def sink_settings(self) -> SinkSettings:
        """How this run finds and calibrates sinks: the one object every step is given (the
        values given, SinkSettings' defaults for the others)."""
        given: dict[str, Any] = {"beta": self.beta, "threshold": self.threshold, "rule": self.rule}
        return SinkSettings(**{k: v for k, v in given.items() if v is not None})

    def min_calib_size(self) -> int:
        """The smallest ``--calib-size``: every task's search and validation parts get 2
        prompts."""
        per_task = 2
        if self.select == "joint":
            frac = self.val_fraction
            per_task = max(math.ceil(2 / frac), math.ceil(2 / (1 - frac)))
        return per_task * (1 if self.per_task else len(self.tasks))


def flag_of(f: Any) -> str:
    """The command-line flag of a RunConfig field."""
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    name = f.name.replace("_", "-")
    return f"--no-{name}" if f.default is True else f"--{name}"


def option_fields() -> list[Any]:
    """The RunConfig fields that are options, in declaration order."""
    return [f for f in fields(RunConfig) if "help" in f.metadata]


def _check_field(f: Any, value: Any) -> None:
    """A value inside its field's declared choices and range."""
    flag = flag_of(f).replace("--no-", "--")
    hint = _hints()[f.name]
    choices = [a for a in _literal_args(hint) if a is not None]
    if choices and value is not None and value not in choices:
        shown = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        raise ConfigError(f"{flag} must be {shown}, got {value!r}")
    bound: Bound | None = f.metadata["bound"]
    if bound is None or value is None:
        return
    if isinstance(value, tuple):
        if not all(bound.holds(v) for v in value):
            raise ConfigError(f"{flag} values must be {bound}, got {list(value)}")
    elif not bound.holds(value):
        raise ConfigError(f"{flag} must be {bound}, got {value}")


@functools.cache
def _hints() -> dict[str, Any]:
    return typing.get_type_hints(RunConfig)


def choices_of(f: Any) -> tuple[Any, ...]:
    """The values a ``Literal`` field takes (empty for other fields)."""
    return tuple(a for a in _literal_args(_hints()[f.name]) if a is not None)


def type_of(f: Any) -> Any:
    """The type of a field's value (of its items for a tuple), without ``None``."""
    hint = _hints()[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return args[0]
    if typing.get_origin(hint) is Literal or (args and typing.get_origin(args[0]) is Literal):
        return str
    return args[0] if args else hint


def _literal_args(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    return tuple(a for arg in typing.get_args(hint) for a in _literal_args(arg))


def _check_sinks(cfg: RunConfig) -> None:
    if cfg.rule in (None, "mean") and cfg.threshold is not None and cfg.threshold >= 1:
        raise ConfigError(
            f"--threshold {cfg.threshold} with the mean rule finds no sink: a key's mean "
            "attention is at most 1; use a value below 1 (default 0.1), or --rule alpha"
        )
    if cfg.method == "zerotuning" and cfg.beta is not None and cfg.command in ("search", "run"):
        raise ConfigError(
            "--beta is an ACT setting; --method zerotuning scales the first token's attention "
            "by a gamma it searches for: drop --beta"
        )


def _check_tasks(cfg: RunConfig) -> None:
    if not cfg.tasks:
        raise ConfigError("no task given; pass --task NAME (e.g. --task reviews)")
    repeated = sorted({t for t in cfg.tasks if cfg.tasks.count(t) > 1})
    if repeated:
        raise ConfigError(
            f"--task {repeated[0]} is given {cfg.tasks.count(repeated[0])} times; give each "
            "task once"
        )
    if cfg.data_file and len(cfg.tasks) != 1:
        raise ConfigError("--data-file needs exactly one --task (the file's format)")
    if cfg.layers is not None and not cfg.layers:
        raise ConfigError("--layers needs layer numbers >= 0, got []")


def _check_search(cfg: RunConfig) -> None:
    """The search's options: metric, keep-rule, method, workers and the calibration size."""
    check_metric(cfg.metric)
    if cfg.select == "top_k" and cfg.top_k is None:
        raise ConfigError("--select top_k needs --top-k N with N >= 1")
    if cfg.unsupervised and cfg.method != "zerotuning":
        raise ConfigError("--unsupervised is for --method zerotuning (ACT's search needs labels)")
    workers = str(cfg.workers)
    if workers != "auto" and not (workers.isdigit() and int(workers) >= 1):
        raise ConfigError(f"--workers must be auto or a number >= 1, got {cfg.workers!r}")
    if cfg.per_task and len(cfg.tasks) < 2 and cfg.command in ("search", "run"):
        raise ConfigError("--per-task needs at least two --task (one head set per task)")
    searches = cfg.command in ("search", "run") and not cfg.head_set
    if searches and cfg.calib_size < cfg.min_calib_size():
        what = (
            "a search and a validation part of at least 2 prompts each"
            if cfg.select == "joint"
            else "at least 2 prompts to rank heads on"
        )
        per = "per task" if cfg.per_task or len(cfg.tasks) == 1 else "for the tasks together"
        raise ConfigError(
            f"--calib-size {cfg.calib_size} is too small to split into {what}; the "
            f"minimum {per} is {cfg.min_calib_size()}"
        )
