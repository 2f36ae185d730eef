"""What each ``act-lens`` subcommand does, on a resolved RunConfig."""

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from act_lens.analysis.calibration_set import calibration_mix, calibration_split
from act_lens.analysis.census import SinkCensus, sink_census
from act_lens.analysis.effects import RENAMED, HeadEffects
from act_lens.analysis.search import search_heads
from act_lens.analysis.search_config import SearchConfig
from act_lens.analysis.selection import Selection
from act_lens.app.config import RunConfig
from act_lens.app.data_plan import data_spec, plan_data
from act_lens.app.intervention import describe as describe_intervention
from act_lens.app.intervention import intervention, method_label
from act_lens.app.outdir import config_id
from act_lens.app.report import method_name, render_report, results_table
from act_lens.errors import ConfigError
from act_lens.evaluation.baselines import content_free_scores, contextual_calibration
from act_lens.evaluation.controls import random_head_set
from act_lens.evaluation.evaluate import EvalResult, compare, evaluate, subsample
from act_lens.evaluation.task_result import (
    CONTROLS,
    Accuracy,
    Control,
    Results,
    TaskResult,
    load_results,
    save_results,
)
from act_lens.evaluation.tasks import Task, get_task
from act_lens.hooks.headset import HeadSet, head_set_for, load_head_sets, save_head_sets
from act_lens.io import atomic_write_text
from act_lens.runtime.pool import pool_scope
from act_lens.runtime.precision import precision_context

HeadSets = dict[str | None, HeadSet]


def _model(cfg: RunConfig) -> Any:
    from act_lens.models.loading import load_model

    return load_model(cfg.model, device=cfg.device)


def _data(cfg: RunConfig) -> Any:
    # --data-file: one file cut into disjoint calibration and eval parts (app.data_plan).
    return data_spec(cfg)


def _task(cfg: RunConfig, name: str) -> Task:
    return get_task(name, cfg.prompts)


def _census(cfg: RunConfig, model: Any, out: Path) -> SinkCensus:
    prompts = []
    for name in cfg.tasks:
        task = _task(cfg, name)
        # The census needs far fewer prompts than the evaluation.
        examples = subsample(task.load(_data(cfg), task.eval_split), min(cfg.limit or 64, 64))
        prompts += [task.build(e).text for e in examples]
    census = sink_census(model, prompts, settings=cfg.sink_settings, batch_size=cfg.batch_size)
    census.save(out / "census.json")
    _figures_census(census, out)
    return census


def _figures_census(census: SinkCensus, out: Path) -> None:
    from act_lens.app import figures

    figures.save_census_figures(census, out / "figures")


def cmd_sinks(cfg: RunConfig) -> str:
    out = Path(cfg.out)
    census = _census(cfg, _model(cfg), out)
    top = "\n".join(
        f"  L{t['layer']}H{t['head']}: hidden sink in {100 * t['hidden_sink_freq']:.0f}% of prompts"
        for t in census.top(5)
    )
    return f"sink census of {census.n_prompts} prompts; top heads:\n{top}\nclasses: {census.class_totals()}"


def _search_one(cfg: RunConfig, model: Any, tasks: list[str], out: Path, tag: str) -> HeadSet:
    task_objs = [_task(cfg, t) for t in tasks]
    common: dict[str, Any] = dict(data=_data(cfg), seed=cfg.seeds[0], shots=cfg.shots)
    validation = None
    if cfg.method == "act" and cfg.select == "joint":
        # balanced prompts rank the heads; prompts with the task's own label mix pick the size
        calib, validation = calibration_split(
            task_objs, cfg.calib_size, val_fraction=cfg.val_fraction, balance=cfg.balance,
            **common,
        )  # fmt: skip
    else:
        # drawing equal counts per label reads the labels: not for an unsupervised search
        calib = calibration_mix(
            task_objs, cfg.calib_size, balance=cfg.balance and not cfg.unsupervised, **common
        )
    if cfg.method == "zerotuning":
        from act_lens.analysis.zerotuning_search import zerotuning_search

        zt = zerotuning_search(
            model, calib, supervised=not cfg.unsupervised, layers=cfg.layers,
            selection=Selection(max_heads=cfg.max_heads, val_fraction=cfg.val_fraction),
            # ZeroTuning profiles every candidate: --schedule applies to ACT's search only
            config=replace(
                search_config(cfg), schedule="exhaustive", checkpoint=out / f"search{tag}.ckpt"
            ),
        ).with_provenance(tasks=list(tasks), prompts=cfg.prompts)  # fmt: skip
        zt.save(out / f"head_set{tag}.json")
        return zt
    selection = Selection(
        cfg.select,  # type: ignore[arg-type]  # checked by preflight and by Selection
        cfg.margin,
        cfg.min_z,
        cfg.max_heads,
        cfg.top_k,
        cfg.val_fraction,
        cfg.confidence,
    )
    result = search_heads(
        model,
        calib,
        layers=cfg.layers,
        settings=cfg.sink_settings,
        selection=selection,
        config=replace(search_config(cfg), checkpoint=out / f"search{tag}.ckpt"),
        validation=validation,
    )
    head_set = result.head_set.with_provenance(
        tasks=list(tasks), prompts=cfg.prompts, balanced_calibration=cfg.balance
    )
    head_set.save(out / f"head_set{tag}.json")
    result.effects.save(out / f"head_effects{tag}.pt")
    from act_lens.app import result_figures

    result_figures.plot_head_effects(
        result.effects, metric=cfg.metric, path=out / "figures" / f"head_effects{tag}.png"
    )
    if "rounds" in head_set.provenance:
        result_figures.plot_halving_rounds(
            head_set, path=out / "figures" / f"halving_rounds{tag}.png"
        )
    if "curve" in head_set.provenance:
        result_figures.plot_selection_curve(
            head_set, path=out / "figures" / f"selection_curve{tag}.png"
        )
    return head_set


def search_config(cfg: RunConfig) -> SearchConfig:
    """How this run's search runs: the search options of the command line, as one object."""
    return SearchConfig(
        metric=cfg.metric,
        screen=cfg.screen or None,  # 0: every candidate head
        schedule=cfg.schedule,  # type: ignore[arg-type]  # checked by preflight
        workers="auto" if cfg.workers == "auto" else int(cfg.workers),
        ray_address=cfg.ray_address,
        precision=cfg.precision,  # type: ignore[arg-type]
        batch_size=cfg.batch_size,
    )


def _search(cfg: RunConfig, model: Any, out: Path) -> HeadSets:
    """One mixed set over all tasks (the paper's way), or with ``per_task`` one set per task."""
    if cfg.per_task and len(cfg.tasks) > 1:
        sets: HeadSets = {t: _search_one(cfg, model, [t], out, f"_{t}") for t in cfg.tasks}
        save_head_sets(out / "head_sets.json", {str(t): hs for t, hs in sets.items()})
        return sets
    return {None: _search_one(cfg, model, list(cfg.tasks), out, "")}


def _summary(sets: HeadSets) -> str:
    return "\n".join(
        ("" if task is None else f"{task}: ") + hs.summary() for task, hs in sets.items()
    )


def cmd_search(cfg: RunConfig) -> str:
    out = Path(cfg.out)
    model = _model(cfg)
    with pool_scope(model):  # per-task searches share one set of workers
        sets = _search(cfg, model, out)
    written = out / ("head_sets.json" if None not in sets else "head_set.json")
    return f"{_summary(sets)}\nwritten to {written}"


def _intervention(cfg: RunConfig, head_set: HeadSet, heads: HeadSet | None = None) -> Any:
    """The hook factory a head set stands for: its method, its stored sink settings with the
    given flags on top (``app.intervention``); ``heads``: other heads with the same."""
    return intervention(cfg, head_set, heads)


def _cc_prior(
    model: Any, task: Task, cfg: RunConfig, result: EvalResult, seed: int, hooks: Any
) -> Any:
    counts = sorted({len(row) for row in result.scores})
    mc = task.kind == "multiple_choice"
    return {
        n: content_free_scores(
            model, task, data=_data(cfg), intervention=hooks, n_options=n if mc else None,
            shots=cfg.shots, seed=seed, progress=False,
        )
        for n in counts
    }  # fmt: skip


def _control(against: EvalResult, run: EvalResult, name: str) -> Control:
    return Control.of(run, compare(against, run), CONTROLS[name])


@dataclass(frozen=True)
class _Job:
    """One evaluated row: the task, the demonstration seed, ``evaluate``'s keywords and the
    stem of its files in ``eval/``."""

    task: Task
    seed: int
    kw: dict[str, Any]
    stem: str


def _treated(
    cfg: RunConfig, model: Any, job: _Job, head_set: HeadSet, base: EvalResult, out: Path
) -> dict[str, Any]:
    """The TaskResult fields of the head set's run and, unless ``--no-controls``, its controls."""
    act_cfg = _intervention(cfg, head_set)
    task, seed, kw = job.task, job.seed, job.kw
    treated = evaluate(model, task, intervention=act_cfg, **kw)
    treated.save(out / "eval" / f"{job.stem}_act.json")
    fields: dict[str, Any] = dict(
        treated=Accuracy.of(treated),
        comparison=compare(base, treated),
        method=method_label(head_set),
        intervention=describe_intervention(cfg, head_set),
        heads=len(head_set),
    )
    if cfg.controls:
        n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
        rand = random_head_set(head_set, n_layers, n_heads, seed=seed)
        rnd = evaluate(model, task, intervention=_intervention(cfg, head_set, rand), **kw)
        rnd.save(out / "eval" / f"{job.stem}_random.json")
        cc = contextual_calibration(base, _cc_prior(model, task, cfg, base, seed, None))
        cc_act = contextual_calibration(
            treated, _cc_prior(model, task, cfg, treated, seed, act_cfg)
        )
        fields["controls"] = {
            "random": _control(base, rnd, "random"),
            "cc": _control(base, cc, "cc"),
            "cc_act": _control(base, cc_act, "cc_act"),
            "act_vs_cc": _control(cc, treated, "act_vs_cc"),
        }
    return fields


def _eval_workers(cfg: RunConfig) -> "int | str":
    """``auto``: the evaluations run on the search's workers when it had some (a ``pool_scope``
    keeps them open), else in-process; a number: that many workers."""
    return "auto" if cfg.workers == "auto" else int(cfg.workers)


def _eval(cfg: RunConfig, model: Any, sets: HeadSets | None, out: Path) -> Results:
    results: Results = {}
    (out / "eval").mkdir(parents=True, exist_ok=True)
    sources, _ = plan_data(cfg)  # where each part came from, recorded in every row
    for name in cfg.tasks:
        task = _task(cfg, name)
        head_set = head_set_for(sets, name) if sets is not None else None
        for seed in cfg.seeds if cfg.shots else cfg.seeds[:1]:
            key = name if not cfg.shots else f"{name}/seed{seed}"
            stem = key.replace("/", "_")
            kw: dict[str, Any] = dict(
                data=_data(cfg), limit=cfg.limit, shots=cfg.shots, seed=seed,
                batch_size=cfg.batch_size, workers=_eval_workers(cfg),
            )  # fmt: skip
            base = evaluate(model, task, **kw)
            base.save(out / "eval" / f"{stem}_baseline.json")
            with_set = {}
            if head_set is not None:
                job = _Job(task, seed, kw, stem)
                with_set = _treated(cfg, model, job, head_set, base, out)
            results[key] = TaskResult(
                task=name,
                seed=seed,
                shots=cfg.shots,
                n=base.n,
                baseline=Accuracy.of(base),
                eval_data=sources[name].eval,
                calibration_data=sources[name].calibration,
                config_id=config_id(cfg),
                **with_set,
            )
    save_results(out / "results.json", results)
    return results


def _head_sets(cfg: RunConfig, model: Any) -> HeadSets:
    sets = load_head_sets(cfg.head_set)  # type: ignore[arg-type]
    for hs in sets.values():
        hs.validate(
            model, fix=f"search heads for this model with act-lens search --model {cfg.model}"
        )
    for name in cfg.tasks:
        head_set_for(sets, name)  # every task has a set before anything is evaluated
    return sets


def cmd_eval(cfg: RunConfig) -> str:
    out = Path(cfg.out)
    model = _model(cfg)
    sets = _head_sets(cfg, model) if cfg.head_set else None
    with pool_scope(model), precision_context(cfg.precision, model):
        results = _eval(cfg, model, sets, out)
    _eval_figure(results, out)
    return results_table(results)


def _eval_figure(results: Results, out: Path) -> None:
    if any(r.treated is not None for r in results.values()):
        from act_lens.app import result_figures

        result_figures.plot_task_results(
            results,
            path=out / "figures" / "eval_comparison.png",
            treated_label=method_name(results),
        )


def cmd_run(cfg: RunConfig) -> str:
    """The main job: census -> search -> eval on the held-out split -> figures -> report."""
    out = Path(cfg.out)
    model = _model(cfg)
    census = _census(cfg, model, out)
    with pool_scope(model):  # the search's workers, if it had some, also run the evaluations
        sets = _head_sets(cfg, model) if cfg.head_set else _search(cfg, model, out)
        with precision_context(cfg.precision, model):
            results = _eval(cfg, model, sets, out)
    _eval_figure(results, out)
    atomic_write_text(out / "report.md", render_report(cfg, census, sets, results))
    from act_lens.app import report_data, report_html

    report_data.save_view_data(  # what report.html shows beyond the results
        cfg, model, sets, results, out, data=_data(cfg),
        intervention=lambda hs: _intervention(cfg, hs),
    )  # fmt: skip
    html = report_html.write_report_html(out)
    return (
        results_table(results)
        + f"\n\nhead set: {_summary(sets)}\nreport: {out / 'report.md'}, {html} (offline, any browser)"
    )


def cmd_figures(cfg: RunConfig) -> str:
    """Re-draw every figure from the saved results of a folder (no model is loaded)."""
    from act_lens.app import figures, result_figures

    out = Path(cfg.out)
    if not out.is_dir():
        raise ConfigError(f"{out} is not a results folder")
    drawn = []
    if (out / "census.json").exists():
        drawn += figures.save_census_figures(SinkCensus.load(out / "census.json"), out / "figures")
    saved = json.loads((out / "config.json").read_text()) if (out / "config.json").exists() else {}
    metric = RENAMED.get(
        saved.get("metric", "choice_logprob"), saved.get("metric", "choice_logprob")
    )
    for path in sorted(out.glob("head_effects*.pt")):
        tag = path.stem.removeprefix("head_effects")
        target = out / "figures" / f"head_effects{tag}.png"
        effects = HeadEffects.load(path)
        result_figures.plot_head_effects(
            effects, metric=metric if metric in effects.effects else "margin", path=target
        )
        drawn.append(target)
    for path in sorted(out.glob("head_set*.json")):
        if path.name == "head_sets.json":  # the per-task bundle of the files drawn here
            continue
        hs = HeadSet.load(path)
        if "curve" in hs.provenance:
            tag = path.stem.removeprefix("head_set")
            target = out / "figures" / f"selection_curve{tag}.png"
            result_figures.plot_selection_curve(hs, path=target)
            drawn.append(target)
    if (out / "results.json").exists():
        _eval_figure(load_results(out / "results.json"), out)
        drawn.append(out / "figures" / "eval_comparison.png")
    if not drawn:
        raise ConfigError(
            f"{out} holds no census.json, head_effects.pt or results.json to draw from"
        )
    from act_lens.app.report_html import write_report_html

    drawn.append(write_report_html(out))
    return "re-drew:\n" + "\n".join(f"  {p}" for p in drawn)
