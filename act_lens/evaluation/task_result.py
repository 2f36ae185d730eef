"""``TaskResult``: the typed result of one task (and seed) of an ``act-lens eval``/``run``, and
``results.json``, the file that holds one per task.

The pipeline writes ``TaskResult`` objects; the report, the figures and ``act-lens figures``
read them back, never key strings of a dict. ``results.json`` is versioned by its ``"schema"``
key (:data:`SCHEMA`); files written before the key existed (one flat row per task) still load.
The schema is documented on the documentation's *results.json* page.
"""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from act_lens.errors import DataError
from act_lens.evaluation.stats import PairedComparison
from act_lens.io import atomic_write_text

SCHEMA = "act_lens.results/2"
# The controls of an evaluation and the run each is compared with.
CONTROLS = {
    "random": "baseline",  # a random head set of the same size
    "cc": "baseline",  # contextual calibration alone
    "cc_act": "baseline",  # contextual calibration on top of the intervention
    "act_vs_cc": "cc",  # the intervention, paired with contextual calibration
}


# Optional fields read as they are, by both the current and the flat legacy format.
_PASSED_THROUGH = ("method", "intervention", "heads", "eval_data", "calibration_data", "config_id")


@dataclass(frozen=True)
class Accuracy:
    """One run's accuracy on the task's examples.

    Attributes:
        accuracy: fraction correct.
        interval: 95% bootstrap interval of ``accuracy``.
        prediction_rate: fraction of examples predicted as each choice (label-bias check).
    """

    accuracy: float
    interval: tuple[float, float]
    prediction_rate: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "interval": list(self.interval),
            "prediction_rate": list(self.prediction_rate),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Accuracy":
        lo, hi = d["interval"]
        return cls(
            float(d["accuracy"]),
            (float(lo), float(hi)),
            tuple(float(x) for x in d.get("prediction_rate") or ()),
        )

    @classmethod
    def of(cls, result: Any) -> "Accuracy":
        """From an ``EvalResult``."""
        return cls(result.accuracy, tuple(result.interval), tuple(result.prediction_rate()))


@dataclass(frozen=True)
class Control:
    """A control run and its paired comparison with the run named by ``against``.

    Attributes:
        accuracy: the control run's accuracy.
        delta: its accuracy minus that of ``against`` (fraction), on the same examples.
        delta_interval: paired bootstrap interval of ``delta``.
        p_value: exact McNemar p-value.
        against: ``"baseline"`` or ``"cc"`` (see :data:`CONTROLS`).
        flips: ``{"gained", "lost"}`` against ``against`` (None in files written before they
            were recorded).
    """

    accuracy: Accuracy
    delta: float
    delta_interval: tuple[float, float]
    p_value: float
    against: str = "baseline"
    flips: Mapping[str, int] | None = None

    @classmethod
    def of(cls, run: Any, comparison: PairedComparison, against: str) -> "Control":
        """From the control's ``EvalResult`` and ``compare(reference, run)``."""
        return cls(
            Accuracy.of(run),
            comparison.delta,
            comparison.interval,
            comparison.p_value,
            against,
            dict(comparison.flips),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy.to_dict(),
            "delta": self.delta,
            "delta_interval": list(self.delta_interval),
            "p_value": self.p_value,
            "against": self.against,
            "flips": None if self.flips is None else dict(self.flips),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Control":
        lo, hi = d["delta_interval"]
        flips = d.get("flips")
        return cls(
            Accuracy.from_dict(d["accuracy"]),
            float(d["delta"]),
            (float(lo), float(hi)),
            float(d["p_value"]),
            str(d.get("against", "baseline")),
            None if flips is None else {k: int(v) for k, v in flips.items()},
        )


@dataclass(frozen=True)
class TaskResult:
    """One task's evaluation: the baseline, the treated run, their comparison and the controls.

    Attributes:
        task, seed, shots: what was evaluated (``seed``: the demonstrations' draw).
        n: number of evaluated examples.
        baseline: accuracy without an intervention.
        treated: accuracy with the head set's intervention (None: no head set given).
        comparison: ``treated`` paired with ``baseline`` (delta, interval, McNemar p, flips).
        controls: ``{"random", "cc", "cc_act", "act_vs_cc"}`` (:data:`CONTROLS`); empty with
            ``--no-controls``.
        method: ``"ACT"`` or ``"ZeroTuning"`` (None without a head set).
        intervention: what was applied and where each setting came from (JSON).
        heads: the head set's size.
        eval_data, calibration_data: where the evaluated and calibration examples came from.
        config_id: the run's config id (``act_lens.app.outdir.config_id``).

    Example:
        >>> r = TaskResult("sst2", 0, 0, 2, Accuracy(0.5, (0.0, 1.0)))
        >>> TaskResult.from_dict(r.to_dict()) == r
        True
    """

    task: str
    seed: int
    shots: int
    n: int
    baseline: Accuracy
    treated: Accuracy | None = None
    comparison: PairedComparison | None = None
    controls: Mapping[str, Control] = field(default_factory=dict)
    method: str | None = None
    intervention: Mapping[str, Any] | None = None
    heads: int | None = None
    eval_data: str | None = None
    calibration_data: str | None = None
    config_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "seed": self.seed,
            "shots": self.shots,
            "n": self.n,
            "baseline": self.baseline.to_dict(),
            "treated": None if self.treated is None else self.treated.to_dict(),
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "controls": {k: c.to_dict() for k, c in self.controls.items()},
            "method": self.method,
            "intervention": None if self.intervention is None else dict(self.intervention),
            "heads": self.heads,
            "eval_data": self.eval_data,
            "calibration_data": self.calibration_data,
            "config_id": self.config_id,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TaskResult":
        """From :meth:`to_dict`, or from a row of a ``results.json`` without ``"schema"``.

        Raises:
            DataError: not such a dictionary.
        """
        try:
            if "baseline_accuracy" in d:
                return _from_flat_row(d)
            treated, comparison = d.get("treated"), d.get("comparison")
            return cls(
                task=str(d["task"]),
                seed=int(d["seed"]),
                shots=int(d["shots"]),
                n=int(d["n"]),
                baseline=Accuracy.from_dict(d["baseline"]),
                treated=None if treated is None else Accuracy.from_dict(treated),
                comparison=None if comparison is None else PairedComparison.from_dict(comparison),
                controls={k: Control.from_dict(c) for k, c in (d.get("controls") or {}).items()},
                **{k: d.get(k) for k in _PASSED_THROUGH},
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"not a TaskResult dictionary ({type(err).__name__}: {err})") from err


def _from_flat_row(r: Mapping[str, Any]) -> TaskResult:
    """A row of the ``results.json`` written before the ``"schema"`` key (flat key names)."""
    baseline = Accuracy(
        float(r["baseline_accuracy"]),
        tuple(r["baseline_interval"]),  # type: ignore[arg-type]
        tuple(r.get("baseline_prediction_rate") or ()),
    )
    treated = comparison = None
    if "act_accuracy" in r:
        treated = Accuracy(
            float(r["act_accuracy"]),
            tuple(r["act_interval"]),  # type: ignore[arg-type]
            tuple(r.get("act_prediction_rate") or ()),
        )
        comparison = PairedComparison(
            n=int(r["n"]),
            baseline_accuracy=baseline.accuracy,
            treated_accuracy=treated.accuracy,
            delta=float(r["delta"]),
            interval=tuple(r["interval"]),  # type: ignore[arg-type]
            p_value=float(r["p_value"]),
            flips={k: int(v) for k, v in r["flips"].items()},
            confidence=0.95,  # what compare() used then
        )
    controls = {}
    for name, against in CONTROLS.items():
        if name in r:
            c = r[name]
            controls[name] = Control(
                Accuracy(float(c["accuracy"]), tuple(c["interval"])),  # type: ignore[arg-type]
                float(c["delta"]),
                tuple(c["delta_interval"]),  # type: ignore[arg-type]
                float(c["p_value"]),
                against,
            )
    return TaskResult(
        task=str(r["task"]),
        seed=int(r["seed"]),
        shots=int(r["shots"]),
        n=int(r["n"]),
        baseline=baseline,
        treated=treated,
        comparison=comparison,
        controls=controls,
        **{k: r.get(k) for k in _PASSED_THROUGH},
    )


Results = dict[str, TaskResult]


def save_results(path: "str | os.PathLike[str]", results: Mapping[str, TaskResult]) -> Path:
    """Write ``results.json``: ``{"schema": SCHEMA, "tasks": {key: TaskResult.to_dict()}}``
    (key: the task, or ``task/seedN`` for k-shot runs), atomically."""
    data = {"schema": SCHEMA, "tasks": {k: r.to_dict() for k, r in results.items()}}
    return atomic_write_text(path, json.dumps(data, indent=2))


def load_results(path: "str | os.PathLike[str]") -> Results:
    """Read a ``results.json`` (a file, or the results folder holding one), of this schema or
    of the flat layout written before it.

    Raises:
        DataError: a missing or unreadable file, another schema, or malformed rows.

    Example:
        >>> results = load_results("runs/demo")                   # doctest: +SKIP
        >>> results["reviews"].comparison.delta                   # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read results file {path}: {err}") from err
    if not isinstance(data, Mapping):
        raise DataError(f"{path}: expected a JSON object of task results")
    if "schema" not in data:  # before the schema key: {key: flat row}
        rows = data
    elif data["schema"] == SCHEMA and isinstance(data.get("tasks"), Mapping):
        rows = data["tasks"]
    else:
        raise DataError(
            f"{path} has schema {data['schema']!r}; this act_lens reads {SCHEMA!r} and the "
            "files written before it (upgrade act_lens to read newer files)"
        )
    return {str(k): TaskResult.from_dict(r) for k, r in rows.items()}
