"""What each ``act-lens`` subcommand does, on a resolved RunConfig."""

import json
from pathlib import Path
from typing import Any

from act_lens.act import ActConfig
from act_lens.census import SinkCensus, sink_census
from act_lens.cli import RunConfig
from act_lens.effects import HeadEffects
from act_lens.errors import ConfigError
from act_lens.evaluate import compare, evaluate, subsample
from act_lens.headset import HeadSet
from act_lens.io import atomic_write_text
from act_lens.search import calibration_mix, search_heads
from act_lens.tasks import get_task


def _model(cfg: RunConfig) -> Any:
    from act_lens.loading import load_model

    return load_model(cfg.model, device=cfg.device)


def _data(cfg: RunConfig) -> Any:
    return cfg.data_file or cfg.data_dir


def _census(cfg: RunConfig, model: Any, out: Path) -> SinkCensus:
    prompts = []
    for name in cfg.tasks:
        task = get_task(name)
        # The census needs far fewer prompts than the evaluation.
        examples = subsample(task.load(_data(cfg), task.eval_split), min(cfg.limit or 64, 64))
        prompts += [task.build(e).text for e in examples]
    census = sink_census(
        model,
        prompts,
        threshold=cfg.threshold,
        rule=cfg.rule,  # type: ignore[arg-type]
        batch_size=cfg.batch_size,
    )
    census.save(out / "census.json")
    _figures_census(census, out)
    return census


def _figures_census(census: SinkCensus, out: Path) -> None:
    from act_lens import figures

    figures.save_census_figures(census, out / "figures")


def cmd_sinks(cfg: RunConfig) -> str:
    out = Path(cfg.out)
    census = _census(cfg, _model(cfg), out)
    top = "\n".join(
        f"  L{t['layer']}H{t['head']}: hidden sink in {100 * t['hidden_sink_freq']:.0f}% of prompts"
        for t in census.top(5)
    )
    return f"sink census of {census.n_prompts} prompts; top heads:\n{top}\nclasses: {census.class_totals()}"


def _search(cfg: RunConfig, model: Any, out: Path) -> HeadSet:
    data = _data(cfg)
    calib = calibration_mix(
        list(cfg.tasks), cfg.calib_size, data=data, seed=cfg.seeds[0], shots=cfg.shots
    )
    effects: list[HeadEffects] = []
    head_set = search_heads(
        model,
        calib,
        layers=cfg.layers,
        metric=cfg.metric,
        margin=cfg.margin,
        min_z=cfg.min_z,
        max_heads=cfg.max_heads,
        beta=cfg.beta,
        threshold=cfg.threshold,
        rule=cfg.rule,
        screen=cfg.screen,
        batch_size=cfg.batch_size,
        checkpoint=out / "search.ckpt",
        effects_out=effects,
    )
    head_set.save(out / "head_set.json")
    effects[0].save(out / "head_effects.pt")
    from act_lens import figures

    figures.plot_head_effects(
        effects[0], metric=cfg.metric, path=out / "figures" / "head_effects.png"
    )
    return head_set


def cmd_search(cfg: RunConfig) -> str:
    out = Path(cfg.out)
    head_set = _search(cfg, _model(cfg), out)
    return f"{head_set.summary()}\nwritten to {out / 'head_set.json'}"


def _eval(cfg: RunConfig, model: Any, head_set: HeadSet | None, out: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    (out / "eval").mkdir(parents=True, exist_ok=True)
    act = ActConfig(head_set, cfg.beta, cfg.threshold, cfg.rule) if head_set is not None else None  # type: ignore[arg-type]
    for name in cfg.tasks:
        for seed in cfg.seeds if cfg.shots else cfg.seeds[:1]:
            key = name if not cfg.shots else f"{name}/seed{seed}"
            kw = dict(
                data=_data(cfg),
                limit=cfg.limit,
                shots=cfg.shots,
                seed=seed,
                batch_size=cfg.batch_size,
            )
            base = evaluate(model, name, **kw)  # type: ignore[arg-type]
            base.save(out / "eval" / f"{key.replace('/', '_')}_baseline.json")
            row: dict[str, Any] = {
                "task": name,
                "seed": seed,
                "shots": cfg.shots,
                "n": base.n,
                "baseline_accuracy": base.accuracy,
                "baseline_interval": list(base.interval),
            }
            if act is not None:
                treated = evaluate(model, name, hooks=act, **kw)  # type: ignore[arg-type]
                treated.save(out / "eval" / f"{key.replace('/', '_')}_act.json")
                cmp = compare(base, treated)
                row.update(
                    act_accuracy=treated.accuracy,
                    act_interval=list(treated.interval),
                    delta=cmp.delta,
                    interval=list(cmp.interval),
                    p_value=cmp.p_value,
                    flips=cmp.flips,
                )
            results[key] = row
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    return results


def _table(results: dict[str, Any]) -> str:
    lines = [
        "| task | n | baseline | ACT | delta [95% CI] | p (McNemar) | flips +/- |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        lo, hi = r["baseline_interval"]
        base = f"{100 * r['baseline_accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        if "act_accuracy" in r:
            alo, ahi = r["act_interval"]
            dlo, dhi = r["interval"]
            lines.append(
                f"| {key} | {r['n']} | {base} | {100 * r['act_accuracy']:.1f} [{100 * alo:.1f}, {100 * ahi:.1f}] | "
                f"{100 * r['delta']:+.1f} [{100 * dlo:+.1f}, {100 * dhi:+.1f}] | {r['p_value']:.3g} | "
                f"{r['flips']['gained']}/{r['flips']['lost']} |"
            )
        else:
            lines.append(f"| {key} | {r['n']} | {base} | - | - | - | - |")
    return "\n".join(lines)


def cmd_eval(cfg: RunConfig) -> str:
    out = Path(cfg.out)
    model = _model(cfg)
    head_set = HeadSet.load(cfg.head_set, model=model) if cfg.head_set else None
    results = _eval(cfg, model, head_set, out)
    _eval_figure(results, out)
    return _table(results)


def _eval_figure(results: dict[str, Any], out: Path) -> None:
    rows = [
        {
            "task": k,
            "baseline": r["baseline_accuracy"],
            "treated": r["act_accuracy"],
            "interval": tuple(r["interval"]),
            "p_value": r["p_value"],
        }
        for k, r in results.items()
        if "act_accuracy" in r
    ]
    if rows:
        from act_lens import figures

        figures.plot_eval_comparison(rows, path=out / "figures" / "eval_comparison.png")


def cmd_run(cfg: RunConfig) -> str:
    """The main job: census -> search -> eval on the held-out split -> figures -> report."""
    out = Path(cfg.out)
    model = _model(cfg)
    census = _census(cfg, model, out)
    head_set = HeadSet.load(cfg.head_set, model=model) if cfg.head_set else _search(cfg, model, out)
    results = _eval(cfg, model, head_set, out)
    _eval_figure(results, out)
    report = _report(cfg, census, head_set, results)
    atomic_write_text(out / "report.md", report)
    return _table(results) + f"\n\nhead set: {head_set.summary()}\nreport: {out / 'report.md'}"


def _report(cfg: RunConfig, census: SinkCensus, head_set: HeadSet, results: dict[str, Any]) -> str:
    prov = head_set.provenance
    top = "\n".join(
        f"| L{t['layer']}H{t['head']} | {100 * t['hidden_sink_freq']:.0f}% | {t['hidden_mass']:.3f} | {t['first_mass']:.3f} |"
        for t in census.top(8)
    )
    classes = ", ".join(f"{k}: {v}" for k, v in census.class_totals().items())
    tokens = ", ".join(f"{t!r} ({n})" for t, n in census.top_tokens[:12])
    validation = prov.get("validation")
    return f"""# act-lens report

Model `{cfg.model}`, tasks {", ".join(cfg.tasks)}, {cfg.shots}-shot, beta={cfg.beta},
threshold={cfg.threshold} (rule `{cfg.rule}`).

## Accuracy with and without ACT (held-out split)

{_table(results)}

Intervals: 95% bootstrap; delta interval: paired bootstrap; p: exact McNemar test.

![eval](figures/eval_comparison.png)

## Hidden sinks ({census.n_prompts} prompts)

| head | hidden sink in | hidden mass | first-token mass |
|---|---|---|---|
{top}

Hidden-sink token classes: {classes}.
Most frequent hidden-sink tokens: {tokens}.

![map](figures/attention_map.png)
![grid](figures/attention_grid.png)
![freq](figures/sink_frequency.png)
![classes](figures/token_classes.png)
![mass](figures/mass_by_layer.png)

## Head set

{head_set.summary()}

Keep rule: {prov.get("keep_rule", "given")}; calibration: {prov.get("calibration", "-")};
validation: {validation if validation else "-"}.

![effects](figures/head_effects.png)

## Config

```json
{json.dumps(cfg.__dict__, indent=2, default=str)}
```
"""


def cmd_figures(cfg: RunConfig) -> str:
    """Re-draw every figure from the saved results of a folder (no model is loaded)."""
    from act_lens import figures

    out = Path(cfg.out)
    if not out.is_dir():
        raise ConfigError(f"{out} is not a results folder")
    drawn = []
    if (out / "census.json").exists():
        drawn += figures.save_census_figures(SinkCensus.load(out / "census.json"), out / "figures")
    if (out / "head_effects.pt").exists():
        metric = (
            json.loads((out / "config.json").read_text()).get("metric", "gold_logprob")
            if (out / "config.json").exists()
            else "gold_logprob"
        )
        figures.plot_head_effects(
            HeadEffects.load(out / "head_effects.pt"),
            metric=metric,
            path=out / "figures" / "head_effects.png",
        )
        drawn.append(out / "figures" / "head_effects.png")
    if (out / "results.json").exists():
        _eval_figure(json.loads((out / "results.json").read_text()), out)
        drawn.append(out / "figures" / "eval_comparison.png")
    if not drawn:
        raise ConfigError(
            f"{out} holds no census.json, head_effects.pt or results.json to draw from"
        )
    return "re-drew:\n" + "\n".join(f"  {p}" for p in drawn)
