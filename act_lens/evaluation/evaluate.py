"""Evaluate a model on a task, with any intervention active, and compare two runs pairwise."""

import csv
import io
import os
import random
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from act_lens.errors import (
    ActLensWarning,
    ConfigError,
    DataError,
    ShapeError,
    config_from,
    renamed_keyword,
)
from act_lens.evaluation.batching import encode
from act_lens.evaluation.config import EvalConfig, Scoring
from act_lens.evaluation.scoring import continuation_logprobs, first_token_ids, last_token_logprobs
from act_lens.evaluation.stats import PairedComparison, accuracy_interval, compare_correct
from act_lens.evaluation.tasks import Example, Prompt, Task, get_task
from act_lens.evaluation.tasks.holdout import SplitFile, calibration_pool, without_overlap
from act_lens.evaluation.units import parallel_continuations, parallel_first_token
from act_lens.hooks.interventions import as_intervention
from act_lens.hooks.spec import HookSpec
from act_lens.io import JsonFile
from act_lens.runtime.pool import WorkerPool, open_pool, use_pool
from act_lens.runtime.precision import current_precision, kernels

LIMIT_SEED = (
    1234  # the subsample for `limit` is fixed, so every run of a task sees the same examples
)


@dataclass(frozen=True)
class EvalResult(JsonFile):
    """Accuracy of one run, with per-example outcomes so any comparison can be recomputed.

    Attributes:
        scores: per example, the score of each choice (log-probabilities).
        accuracy_norm: MC with ``scoring="full"``: length-normalised accuracy (``acc_norm``).
    """

    task: str
    split: str
    model: str
    shots: int
    seed: int
    scoring: str
    uids: tuple[str, ...]
    labels: tuple[int, ...]
    predictions: tuple[int, ...]
    scores: tuple[tuple[float, ...], ...]
    interval: tuple[float, float]
    meta: tuple[dict[str, str], ...] = ()
    accuracy_norm: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    KIND: ClassVar[str] = "evaluation result"

    @property
    def n(self) -> int:
        return len(self.uids)

    @property
    def correct(self) -> tuple[bool, ...]:
        return tuple(p == y for p, y in zip(self.predictions, self.labels, strict=True))

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / max(self.n, 1)

    def prediction_rate(self) -> list[float]:
        """Fraction of examples predicted as each choice index (bias check)."""
        k = max(len(s) for s in self.scores) if self.scores else 0
        return [sum(p == c for p in self.predictions) / max(self.n, 1) for c in range(k)]

    def by_meta(self, key: str = "subject") -> dict[str, float]:
        """Accuracy per value of a meta field (e.g. MMLU subject), plus ``"macro"``, the mean of those."""
        groups: dict[str, list[bool]] = {}
        for m, ok in zip(self.meta, self.correct, strict=True):
            groups.setdefault(m.get(key, "?"), []).append(ok)
        accs = {g: sum(v) / len(v) for g, v in sorted(groups.items())}
        if accs:
            accs["macro"] = sum(accs.values()) / len(accs)
        return accs

    def summary(self) -> str:
        lo, hi = self.interval
        return (
            f"{self.task}: {100 * self.accuracy:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] (n={self.n})"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(format="act_lens.EvalResult/1", accuracy=self.accuracy, n=self.n)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalResult":
        try:
            return cls(
                task=d["task"],
                split=d["split"],
                model=d["model"],
                shots=int(d["shots"]),
                seed=int(d["seed"]),
                scoring=d["scoring"],
                uids=tuple(d["uids"]),
                labels=tuple(d["labels"]),
                predictions=tuple(d["predictions"]),
                scores=tuple(tuple(s) for s in d["scores"]),
                interval=tuple(d["interval"]),  # type: ignore[arg-type]
                meta=tuple(d.get("meta", ())),
                accuracy_norm=d.get("accuracy_norm"),
                info=d.get("info", {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"not an EvalResult dictionary ({type(err).__name__}: {err})") from err

    def to_csv(self) -> str:
        """Per-example table: uid, label, prediction, correct, one score column per choice."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        k = max((len(s) for s in self.scores), default=0)
        writer.writerow(
            ["uid", "label", "prediction", "correct", *[f"score_{c}" for c in range(k)]]
        )
        for uid, y, p, s in zip(self.uids, self.labels, self.predictions, self.scores, strict=True):
            writer.writerow([uid, y, p, int(p == y), *[f"{x:.6f}" for x in s]])
        return buf.getvalue()


def subsample(examples: Sequence[Example], limit: int | None) -> list[Example]:
    """A fixed random subsample of ``limit`` examples, kept in file order (None: all)."""
    if limit is None or limit >= len(examples):
        return list(examples)
    if limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}")
    keep = sorted(random.Random(LIMIT_SEED).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def build_prompts(
    task: Task,
    examples: Sequence[Example],
    *,
    shots: int = 0,
    seed: int = 0,
    data: "str | os.PathLike[str] | SplitFile | None" = None,
) -> list[Prompt]:
    """Prompts for ``examples`` with ``shots`` demonstrations drawn once per seed from the train
    split, never from an example whose text is also in the eval split or in ``examples``."""
    demos: list[Example] = []
    if shots:
        if task.train_split is None:
            raise DataError(f"task {task.name!r} has no train split here, so no {shots}-shot demos")
        pool = without_overlap(calibration_pool(task, data), examples)
        demos = task.sample_demos(pool, shots, seed)
    return [task.build(ex, demos) for ex in examples]


def score_prompts(
    model: Any,
    task: Task,
    prompts: Sequence[Prompt],
    *,
    scoring: Scoring = "first_token",
    hooks: "HookSpec | None" = None,
    batch_size: int = 8,
    progress: bool = True,
    pool: "WorkerPool | None" = None,
) -> tuple[list[list[float]], list[list[float]] | None]:
    """Per-prompt choice scores; with ``scoring="full"`` also length-normalised scores.

    With a ``pool`` the batches run on its Ray workers (``hooks`` must then be an intervention
    object, e.g. an applied ``ActConfig``, which each worker applies to its own model); the
    batches are the serial run's (:mod:`act_lens.evaluation.units`)."""
    tok = model.tokenizer
    bar = tqdm(total=len(prompts), desc=f"eval {task.name}", disable=not progress, leave=False)
    try:
        if scoring == "first_token":
            ids = encode(tok, [p.text for p in prompts])
            first = {c: first_token_ids(tok, c) for c in {p.choices for p in prompts}}
            columns = [first[p.choices] for p in prompts]
            if pool is not None:
                return parallel_first_token(model, pool, ids, columns, hooks, batch_size), None
            logprobs = last_token_logprobs(
                model, ids, hooks=hooks, batch_size=batch_size, progress=bar
            )
            return [[float(logprobs[i, t]) for t in cols] for i, cols in enumerate(columns)], None
        if scoring != "full":
            raise ConfigError(f"scoring must be 'first_token' or 'full', got {scoring!r}")
        contexts, conts, owner, chars = [], [], [], []
        ctx_ids = encode(tok, [p.context for p in prompts])
        for i, p in enumerate(prompts):
            for cont in p.continuations:
                contexts.append(ctx_ids[i])
                conts.append(tok(cont, add_special_tokens=False).input_ids)
                owner.append(i)
                chars.append(max(len(cont.encode("utf-8")), 1))
        bar.total = len(conts)
        if pool is not None:
            ll = parallel_continuations(model, pool, contexts, conts, hooks, batch_size)
        else:
            ll = continuation_logprobs(
                model, contexts, conts, hooks=hooks, batch_size=batch_size, progress=bar
            ).tolist()
        scores: list[list[float]] = [[] for _ in prompts]
        norm: list[list[float]] = [[] for _ in prompts]
        for j, i in enumerate(owner):
            scores[i].append(float(ll[j]))
            norm[i].append(float(ll[j]) / chars[j])
        return scores, norm
    finally:
        bar.close()


def evaluate(
    model: Any,
    task: "str | Task",
    intervention: Any = None,
    *,
    data: "str | os.PathLike[str] | SplitFile | None" = None,
    limit: int | None = None,
    examples: Sequence[Example] | None = None,
    config: EvalConfig | None = None,
    **options: Any,
) -> EvalResult:
    """Accuracy of ``model`` on ``task`` with ``intervention`` active.

    Args:
        model: a TransformerBridge.
        task: a registry name (``"sst2"``...) or a Task.
        intervention: what to apply (``ActConfig(head_set)``, ``ZeroTuningConfig``,
            ``Compose``, a ``HeadSet``, a hook list...; see ``as_intervention``). It is
            checked against the model and called with each batch's attention mask, so ACT
            ignores padding. ``hooks=`` is its deprecated old name.
        data: a data directory laid out like shared/data, or one file of the task's format.
        limit: evaluate a fixed random subsample of this size.
        examples: evaluate these examples instead of loading (then ``data``, ``split`` and
            ``limit`` only label the result).
        config: how to evaluate: split, shots, seed, batch size, scoring, progress, workers
            (:class:`EvalConfig`; default ``EvalConfig()``). With ``workers`` the batches
            run on Ray workers (the serial run's batches, merged in order).
        **options: ``EvalConfig`` fields as keywords instead of ``config``
            (``evaluate(model, "sst2", shots=4)``).

    Returns:
        An EvalResult.

    Raises:
        ConfigError: an unknown keyword, or an option given beside ``config``.
        DataError: no examples to evaluate.

    Example:
        >>> r = evaluate(model, "reviews", limit=50)                     # doctest: +SKIP
        >>> r2 = evaluate(model, "reviews", ActConfig(hs), limit=50)    # doctest: +SKIP
        >>> r4 = evaluate(model, "sst2", config=EvalConfig(shots=4, batch_size=16))  # doctest: +SKIP
    """
    cfg, old = config_from(EvalConfig, config, options, where="evaluate", deprecated=("hooks",))
    intervention = renamed_keyword("evaluate", "intervention", intervention, old, "hooks")
    task = get_task(task) if isinstance(task, str) else task
    applied = as_intervention(intervention).for_model(model)  # checked, windows filled in
    split_name = task.resolve_split(cfg.split)
    if examples is None:
        examples = subsample(task.load(data, split_name), limit)
    if not examples:
        raise DataError(f"no examples to evaluate for task {task.name!r}")
    prompts = build_prompts(task, examples, shots=cfg.shots, seed=cfg.seed, data=data)
    kw: dict[str, Any] = dict(hooks=applied, batch_size=cfg.batch_size, progress=cfg.progress)
    workers = open_pool(model) if cfg.workers == "auto" else cfg.workers
    with use_pool(model, workers) as pool:
        scores, norm = score_prompts(model, task, prompts, scoring=cfg.scoring, pool=pool, **kw)
        ran = numerics(model, cfg.batch_size, pool=pool)
    preds = [int(torch.tensor(s).argmax()) for s in scores]
    labels = [p.label for p in prompts]
    acc_norm = None
    if norm is not None and task.kind == "multiple_choice":
        acc_norm = _accuracy(norm, labels)
    correct = [p == y for p, y in zip(preds, labels, strict=True)]
    return EvalResult(
        task=task.name,
        split=split_name,
        model=str(getattr(model.cfg, "model_name", "model")),
        shots=cfg.shots,
        seed=cfg.seed,
        scoring=cfg.scoring,
        uids=tuple(p.uid for p in prompts),
        labels=tuple(labels),
        predictions=tuple(preds),
        scores=tuple(tuple(s) for s in scores),
        interval=accuracy_interval(correct),
        meta=tuple(dict(p.meta) for p in prompts),
        accuracy_norm=acc_norm,
        info={"limit": limit, "description": task.description, "numerics": ran},
    )


def numerics(
    model: Any, batch_size: int, *, pool: "WorkerPool | None" = None, on_workers: bool = False
) -> dict[str, Any]:
    """What decides a run's rounding: precision, device, torch threads per forward (1 on a
    worker; bf16 sums differ with the thread count), batch size (padding) and the kernels
    (:func:`act_lens.runtime.precision.kernels`: torch's version and the hardware path; bf16
    results move between CPUs). Two runs with the same record and the same inputs give the
    same scores.

    Args:
        model: the model the run uses (its device).
        batch_size: the run's batch size.
        pool: the workers that run the forwards: their own kernels are recorded (asked of each
            actor; on a cluster these are the workers' machines).
        on_workers: the forwards run on workers whose pool is not open yet (threads 1, the
            kernels this process's).
    """
    device = str(model.cfg.device)
    on_workers = on_workers or pool is not None
    threads = (1 if on_workers else torch.get_num_threads()) if device.startswith("cpu") else None
    ran = kernels(device) if pool is None else pool.kernels()
    return {"precision": current_precision(device), "device": device, "threads": threads,
            "batch_size": batch_size, "kernels": ran}  # fmt: skip


def _accuracy(scores: Sequence[Sequence[float]], labels: Sequence[int]) -> float:
    """Accuracy of the argmax of each row of ``scores`` (length-normalised: ``acc_norm``)."""
    preds = [int(torch.tensor(s).argmax()) for s in scores]
    return sum(p == y for p, y in zip(preds, labels, strict=True)) / len(labels)


def compare(baseline: EvalResult, treated: EvalResult, **kwargs: Any) -> PairedComparison:
    """Paired comparison of two runs on the same examples (delta, bootstrap interval, McNemar).

    Warns ``ActLensWarning`` when both runs record different numerics (precision, threads,
    batch size, kernels: see :func:`numerics`): the delta then mixes the intervention's effect with
    rounding (in bf16 a few predictions of 300 flip between thread counts).

    Raises:
        ShapeError: the runs are not on the same examples in the same order.
    """
    if baseline.uids != treated.uids:
        raise ShapeError(
            f"cannot pair {baseline.task} ({baseline.n} examples) with {treated.task} "
            f"({treated.n} examples): the example ids differ; evaluate both on the same split/limit"
        )
    a, b = baseline.info.get("numerics"), treated.info.get("numerics")
    if a is not None and b is not None and a != b:
        warnings.warn(
            f"{baseline.task}: the two runs used different numerics ({a} vs {b}); the delta "
            "includes rounding differences: evaluate both under one setting",
            ActLensWarning,
            stacklevel=2,
        )
    return compare_correct(baseline.correct, treated.correct, **kwargs)
