"""The Markdown summary table and ``report.md`` of an ``act-lens`` run (from saved results)."""

import json
from collections.abc import Mapping

from act_lens.analysis.census import SinkCensus
from act_lens.app.config import RunConfig
from act_lens.evaluation.task_result import TaskResult
from act_lens.hooks.headset import HeadSet


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _delta(d: float, lo: float, hi: float) -> str:
    return f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def method_name(results: Mapping[str, TaskResult]) -> str:
    """What the results' head sets applied: ``"ACT"``, ``"ZeroTuning"``, or both named."""
    names = sorted({r.method for r in results.values() if r.method})
    return " / ".join(names) if names else "ACT"


def data_lines(results: Mapping[str, TaskResult]) -> str:
    """Where each task's evaluated and calibration examples came from (Markdown lines)."""
    lines = []
    seen: set[str] = set()
    for r in results.values():
        if r.task in seen or r.eval_data is None:
            continue
        seen.add(r.task)
        calib = r.calibration_data or "none drawn here (head set given)"
        lines.append(f"- `{r.task}`: evaluated on {r.eval_data}; calibration: {calib}")
    return "\n".join(lines)


def _control_cells(r: TaskResult) -> str:
    cells = [
        f"{_pct(c.accuracy.accuracy)} ({100 * c.delta:+.1f}, {c.p_value:.2g})"
        for c in (r.controls["random"], r.controls["cc"])
    ]
    cells.append(_pct(r.controls["cc_act"].accuracy.accuracy))
    v = r.controls["act_vs_cc"]
    cells.append(f"{100 * v.delta:+.1f}, {v.p_value:.2g}")
    return " " + " | ".join(cells) + " |"


def results_table(results: Mapping[str, TaskResult]) -> str:
    """One row per task: baseline, the method, the paired delta and McNemar p, the controls."""
    controls = any(r.controls for r in results.values())
    label = method_name(results)
    head = f"| task | n | heads | baseline | {label} | delta [95% CI] | p (McNemar) | flips +/- |"
    rule = "|---|---|---|---|---|---|---|---|"
    if controls:
        head += (
            f" random set (delta, p) | CC (delta, p) | CC + {label} | {label} vs CC (delta, p) |"
        )
        rule += "---|---|---|---|"
    lines = [head, rule]
    for key, r in results.items():
        lo, hi = r.baseline.interval
        base = f"{_pct(r.baseline.accuracy)} [{_pct(lo)}, {_pct(hi)}]"
        if r.treated is None or r.comparison is None:
            lines.append(f"| {key} | {r.n} | - | {base} | - | - | - | - |")
            continue
        alo, ahi = r.treated.interval
        cmp = r.comparison
        row = (
            f"| {key} | {r.n} | {r.heads if r.heads is not None else '-'} | {base} | "
            f"{_pct(r.treated.accuracy)} [{_pct(alo)}, {_pct(ahi)}] | "
            f"{_delta(cmp.delta, *cmp.interval)} | {cmp.p_value:.3g} | "
            f"{cmp.flips['gained']}/{cmp.flips['lost']} |"
        )
        if controls and r.controls:
            row += _control_cells(r)
        lines.append(row)
    return "\n".join(lines)


def curve_table(head_set: HeadSet) -> str:
    """The joint selection's validation curve as a table (size -> metrics)."""
    prov = head_set.provenance
    metric = prov.get("metric", "choice_logprob")
    rows = [
        f"| {r['size']}{' (chosen)' if r['size'] == prov.get('selected_size') else ''} | "
        f"{r[metric]:.4f} +/- {r.get('stderr', 0.0):.4f} | {100 * r['accuracy']:.1f} | "
        + (
            f"{100 * r['gain']:+.1f} ({r['gained']}/{r['lost']}) | {100 * r['lower']:+.1f} | "
            f"{'yes' if r['eligible'] else 'no'} |"
            if "lower" in r
            else "- | - | - |"
        )
        for r in prov.get("curve", [])
    ]
    head = (
        f"| heads | validation {metric} | validation accuracy (%) | gain, points (fixed/broken) "
        "| lower bound | eligible |"
    )
    return "\n".join([head, "|---|---|---|---|---|---|", *rows])


def _head_set_section(task: str | None, hs: HeadSet) -> str:
    prov = hs.provenance
    tag = "" if task is None else f"_{task}"
    title = "all tasks (one mixed set)" if task is None else f"task `{task}`"
    parts = [
        f"### {title}",
        "",
        hs.summary(),
        "",
        f"Keep rule: {prov.get('keep_rule', 'given')}; calibration: {prov.get('calibration', '-')}.",
    ]
    if "curve" in prov:
        parts += [
            "",
            f"Validation prompts (kept apart from the ranking prompts): {prov.get('validation_set', '-')}.",
            "",
            f"Decision: {prov.get('decision', {}).get('reason', '-')}",
            "",
            curve_table(hs),
            "",
            f"![selection curve](figures/selection_curve{tag}.png)",
        ]
    if "gamma_curve" in prov:
        metric = prov.get("metric", "choice_logprob")
        rows = [f"| {r['gamma']:g}{' (chosen)' if r['gamma'] == hs.params.get('gamma') else ''} | "
                f"{r[metric]:.4f} | {100 * r['accuracy']:.1f} |" for r in prov["gamma_curve"]]  # fmt: skip
        parts += [
            "",
            f"ZeroTuning: dominant direction `{prov.get('dominant')}` (total gain {prov.get('total_gain')}).",
            "",
            f"| gamma | validation {metric} | validation accuracy (%) |",
            "|---|---|---|",
            *rows,
        ]
    else:
        parts += ["", f"![effects](figures/head_effects{tag}.png)"]
    return "\n".join(parts)


def render_report(
    cfg: RunConfig,
    census: SinkCensus,
    sets: Mapping[str | None, HeadSet],
    results: Mapping[str, TaskResult],
) -> str:
    """``report.md``: accuracy with controls, hidden sinks, the head sets and their curves."""
    top = "\n".join(
        f"| L{t['layer']}H{t['head']} | {100 * t['hidden_sink_freq']:.0f}% | {t['hidden_mass']:.3f} | {t['first_mass']:.3f} |"
        for t in census.top(8)
    )
    classes = ", ".join(f"{k}: {v}" for k, v in census.class_totals().items())
    tokens = ", ".join(f"{t!r} ({n})" for t, n in census.top_tokens[:12])
    head_sets = "\n\n".join(_head_set_section(task, hs) for task, hs in sets.items())
    label = method_name(results)
    settings = cfg.sink_settings
    return f"""# act-lens report

Model `{cfg.model}`, tasks {", ".join(cfg.tasks)} ({cfg.prompts} prompts), {cfg.shots}-shot,
beta={settings.beta}, threshold={settings.threshold} (rule `{settings.rule}`), search metric
`{cfg.metric}`, selection `{cfg.select}`.

## Accuracy with and without {label}

{data_lines(results)}

Calibration prompts drawn here and demonstrations never share their text with an evaluated
example (checked by content before the model loaded).

{results_table(results)}

Intervals: 95% bootstrap; delta interval: paired bootstrap; p: exact McNemar test. Controls:
a random head set of the same size from the same candidate layers; contextual calibration
(CC: label probabilities divided by those of content-free inputs), alone and on top of ACT;
"ACT vs CC" pairs ACT with CC on the same examples.

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

## Head sets

{head_sets}

## Config

```json
{json.dumps(cfg.__dict__, indent=2, default=str)}
```
"""
