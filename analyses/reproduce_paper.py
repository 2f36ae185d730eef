"""The paper's protocol on the shared benchmarks with the bundled model, with honest controls.

    python analyses/reproduce_paper.py [--parts mixed,cls,mc,sweeps,kshot] [--tasks sst2,trec]
        [--prompts paper] [--limit 300] [--calib 48] [--mixed-per-task 16] [--screen N]
        [--out figures/paper]

Everything is incremental: every head set and every evaluation is a file in --out, reused
when present (``--fresh`` recomputes), so parts can run in separate processes or at separate times
(e.g. two processes on disjoint ``--tasks``) and ``table.md`` is rebuilt from whatever is there.

Parts:

``mixed``  One head search on a mixed calibration set: ``--mixed-per-task`` class-balanced
           training prompts from each of the 9 classification tasks (the paper's way), joint
           selection on the half split off for validation.  -> ``head_set_mixed.json``
``cls``    Per task of ``--tasks`` (default: the 9): its own search (``--calib`` balanced
           training prompts, half for validation) -> ``head_set_<task>.json``, then its eval
           split (fixed subsample of ``--limit``; all of it when smaller): baseline, ACT with
           the task's set, ACT with the mixed set (if searched), a random set of the same size,
           the old default (heads ranked by the full-vocabulary log-prob, every head with a
           positive gain kept: what ``search_heads`` did before 0.2, on the same effects),
           contextual calibration (CC) and CC on top of ACT.  -> ``cls_<task>.json``
``mc``     One search on the 6 multiple-choice tasks with a training split (option letters,
           class-balanced by gold letter), then the 8 MC eval splits with the same controls.
``sweeps`` beta and threshold sweeps on SST-2 with SST-2's set.
``kshot``  ``--shots``-shot evaluation over ``--seeds`` seeds on ``--kshot-tasks`` with each
           task's zero-shot set, CC with the same demonstrations.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from act_lens import load_model
from act_lens.analysis.calibration_set import calibration_split
from act_lens.analysis.effects import HeadEffects
from act_lens.analysis.search import search_heads
from act_lens.analysis.search_config import SearchConfig
from act_lens.analysis.selection import Selection, heads_from_effects
from act_lens.app.result_figures import plot_eval_comparison, plot_selection_curve
from act_lens.core.settings import SinkSettings
from act_lens.evaluation.baselines import content_free_scores, contextual_calibration
from act_lens.evaluation.controls import random_head_set
from act_lens.evaluation.evaluate import EvalResult, compare, evaluate, numerics
from act_lens.evaluation.stats import summarize_seeds
from act_lens.evaluation.tasks import get_task
from act_lens.hooks.act import ActConfig
from act_lens.hooks.headset import HeadSet
from act_lens.runtime.pool import open_pool, pool_scope
from act_lens.runtime.precision import precision_context

REPO = Path(__file__).resolve().parents[1]
CLS = ("sst2", "sst5", "mr", "subj", "agnews", "trec", "cb", "boolq", "dbpedia")
MC = (
    "arc_easy",
    "arc_challenge",
    "openbookqa",
    "commonsense_qa",
    "copa",
    "mmlu",
    "hellaswag",
    "piqa",
)
MC_TRAIN = ("arc_easy", "arc_challenge", "openbookqa", "commonsense_qa", "copa", "mmlu")
PARTS = ("mixed", "cls", "mc", "sweeps", "kshot")
OLD_DEFAULT = Selection("threshold", margin=0.0)  # with metric vocab_logprob


def pool_size(workers: "int | str") -> int | None:
    """The workers a ``pool_scope`` starts at once for ``--workers``: that number; none for
    ``auto`` (a search big enough starts them, the scope keeps them for what follows)."""
    return None if workers == "auto" else int(workers)


def saved_under(path: Path, now: dict[str, Any]) -> EvalResult | None:
    """The result saved at ``path`` when it ran under the numerics ``now``; None otherwise
    (absent, or saved under other numerics: then it is evaluated again)."""
    if not path.exists():
        return None
    res = EvalResult.load(path)
    if res.info.get("numerics") == now:
        return res
    print(f"{path.name}: saved under other numerics ({res.info.get('numerics')}); evaluating "
          "again", flush=True)  # fmt: skip
    return None


class Runner:
    """Shared state of one invocation: model, arguments, output folder, file-backed reuse."""

    def __init__(self, args: argparse.Namespace, model: Any) -> None:
        self.args, self.model, self.out = args, model, Path(args.out)
        self.data = Path(args.data_dir)

    def layers(self) -> list[int] | None:
        spec = self.args.layers
        if spec is None:
            return None  # the paper's: all but the first two and the last
        return (
            list(range(self.model.cfg.n_layers))
            if spec == "all"
            else [int(x) for x in spec.split(",")]
        )

    def task(self, name: str) -> Any:
        return get_task(name, self.args.prompts)

    def head_set(
        self, tag: str, tasks: tuple[str, ...], per_task: int, seed: int, shots: int = 0
    ) -> HeadSet:
        """The searched set ``head_set_<tag>.json``: reused when present, else searched (on
        prompts with ``shots`` demonstrations from the training split when ``shots > 0``)."""
        path = self.out / f"head_set_{tag}.json"
        if path.exists() and not self.args.fresh:
            return HeadSet.load(path, model=self.model)
        t0 = time.perf_counter()
        calib, val = calibration_split(
            [self.task(t) for t in tasks], per_task * len(tasks), data=self.data, seed=seed,
            shots=shots,
        )  # fmt: skip
        config = SearchConfig(
            screen=self.args.screen, workers=self.args.workers, precision=self.args.precision,
            batch_size=self.args.batch_size, progress=False,
            checkpoint=self.out / f"search_{tag}.ckpt",
        )  # fmt: skip
        result = search_heads(
            self.model, calib, layers=self.layers(), validation=val, config=config,
            selection=Selection(confidence=self.args.confidence),
        )  # fmt: skip
        hs = result.head_set.with_provenance(
            tasks=list(tasks), prompts=self.args.prompts, search_s=time.perf_counter() - t0,
            command=self.args.command, shots=shots,
        )  # fmt: skip
        result.effects.save(self.out / f"head_effects_{tag}.pt")
        hs.save(path)
        plot_selection_curve(hs, path=self.out / f"selection_curve_{tag}.png")
        print(f"[{tag}] {hs.summary()} ({time.perf_counter() - t0:.0f} s)", flush=True)
        return hs

    def old_default(self, tag: str, like: HeadSet) -> HeadSet:
        """The pre-0.2 default keep-rule on the same single-head effects as ``tag``'s set."""
        effects = HeadEffects.load(self.out / f"head_effects_{tag}.pt")
        return heads_from_effects(
            effects, metric="vocab_logprob", selection=OLD_DEFAULT
        ).with_provenance(
            method="old default: vocab_logprob gain > 0, all kept",
            from_effects=f"head_effects_{tag}.pt",
        )

    def numerics(self) -> dict[str, Any]:
        """The numerics this run's evaluations have (:func:`act_lens.evaluation.numerics`)."""
        w, pool = self.args.workers, open_pool(self.model)
        on_workers = pool is not None or (w != "auto" and int(w) > 1)
        with precision_context(self.args.precision, self.model):
            return numerics(self.model, self.args.batch_size, pool=pool, on_workers=on_workers)

    def saved(self, path: Path) -> EvalResult | None:
        """The result saved at ``path`` when it ran under this run's numerics; None otherwise
        (it is then evaluated again, so no comparison mixes two roundings)."""
        return None if self.args.fresh else saved_under(path, self.numerics())

    def evaluation(self, task: str, name: str, hooks: Any = None, **kw: Any) -> EvalResult:
        """``<task>_<name>.json``: reused when present (and run under this run's numerics),
        else evaluated and saved."""
        path = self.out / f"{task}_{name}.json"
        if (res := self.saved(path)) is not None:
            return res
        with precision_context(self.args.precision, self.model):
            res = evaluate(self.model, self.task(task), data=self.data, limit=self.args.limit,
                           intervention=hooks, batch_size=self.args.batch_size, progress=False,
                           workers=self.args.workers, **kw)  # fmt: skip
        res.save(path)
        return res

    def cc(self, task: str, result: EvalResult, hooks: Any, **kw: Any) -> EvalResult:
        with precision_context(self.args.precision, self.model):
            return self._cc(task, result, hooks, **kw)

    def _cc(self, task: str, result: EvalResult, hooks: Any, **kw: Any) -> EvalResult:
        mc = self.task(task).kind == "multiple_choice"
        prior = {
            n: content_free_scores(self.model, self.task(task), data=self.data, intervention=hooks,
                                   n_options=n if mc else None, **kw)
            for n in sorted({len(row) for row in result.scores})
        }  # fmt: skip
        return contextual_calibration(result, prior)


def _row(base: EvalResult, treated: EvalResult) -> dict[str, Any]:
    cmp = compare(base, treated)
    return {
        "n": base.n, "baseline": base.accuracy, "treated": treated.accuracy, "delta": cmp.delta,
        "interval": list(cmp.interval), "p_value": cmp.p_value, "flips": cmp.flips,
        "baseline_prediction_rate": base.prediction_rate(), "treated_prediction_rate": treated.prediction_rate(),
    }  # fmt: skip


def evaluate_task(run: Runner, task: str, sets: dict[str, HeadSet]) -> dict[str, Any]:
    """Baseline, every head set of ``sets`` and the CC rows; each result saved in --out."""
    base = run.evaluation(task, "baseline")
    results = {name: run.evaluation(task, name, ActConfig(hs)) for name, hs in sets.items()}
    rows: dict[str, Any] = {
        name: _row(base, r) | {"heads": len(sets[name])} for name, r in results.items()
    }
    cc = run.cc(task, base, None)
    rows["cc"] = _row(base, cc)
    rows["cc+act"] = _row(base, run.cc(task, results["act"], ActConfig(sets["act"])))
    rows["act_vs_cc"] = _row(cc, results["act"])
    print(
        task,
        f"base {100 * base.accuracy:.1f}",
        {k: round(100 * v["treated"], 1) for k, v in rows.items()},
        flush=True,
    )
    return rows


def part_mixed(run: Runner) -> None:
    run.head_set("mixed", CLS, run.args.mixed_per_task, seed=0)


def part_cls(run: Runner) -> None:
    mixed_path = run.out / "head_set_mixed.json"
    for task in run.args.tasks:
        hs = run.head_set(task, (task,), run.args.calib, seed=0)
        m = run.model.cfg
        sets = {"act": hs, "random": random_head_set(hs, m.n_layers, m.n_heads, seed=0),
                "old_default": run.old_default(task, hs)}  # fmt: skip
        if mixed_path.exists():
            sets["mixed"] = HeadSet.load(mixed_path, model=run.model)
        _write(
            run.out / f"cls_{task}.json",
            {"task": task, "head_set": hs.to_dict(), "rows": evaluate_task(run, task, sets)},
        )


def part_mc(run: Runner) -> None:
    hs = run.head_set("mc", MC_TRAIN, run.args.mc_per_task, seed=1)
    m = run.model.cfg
    sets = {"act": hs, "random": random_head_set(hs, m.n_layers, m.n_heads, seed=1),
            "old_default": run.old_default("mc", hs)}  # fmt: skip
    for task in run.args.mc_tasks:
        _write(run.out / f"mc_{task}.json", {"task": task, "rows": evaluate_task(run, task, sets)})


def part_sweeps(run: Runner) -> None:
    hs = run.head_set("sst2", ("sst2",), run.args.calib, seed=0)
    base = run.evaluation("sst2", "baseline")
    res: dict[str, Any] = {"beta": {}, "threshold": {}}
    for beta in (0.0, 0.2, 0.4, 0.6, 0.8):
        res["beta"][str(beta)] = _row(
            base, run.evaluation("sst2", f"beta{beta}", ActConfig(hs, beta=beta))
        )
    for thr in (0.05, 0.1, 0.2, 0.3):
        res["threshold"][str(thr)] = _row(
            base, run.evaluation("sst2", f"thr{thr}", ActConfig(hs, SinkSettings(threshold=thr)))
        )
    _write(run.out / "sweeps.json", res)


def part_kshot(run: Runner) -> None:
    """Each ``--kshot-tasks`` task on prompts with ``--shots`` demonstrations, every seed: the
    zero-shot set (``act``) and, with ``kshot_search``, a set searched on k-shot prompts
    (``act_k``, its own calibration prompts drawn with demonstrations)."""
    a = run.args
    for task in a.kshot_tasks:
        # keyed by the suffix of their columns and files: "" the zero-shot set, "_k" the k-shot one
        sets = {"": run.head_set(task, (task,), a.calib, seed=0)}
        if a.kshot_search:
            sets["_k"] = run.head_set(f"k{a.shots}_{task}", (task,), a.calib, 0, a.shots)
        per_seed = []
        for seed in range(a.seeds):
            kw = {"shots": a.shots, "seed": seed}
            base = run.evaluation(task, f"k{a.shots}s{seed}_baseline", **kw)
            row: dict[str, Any] = {"cc": run.cc(task, base, None, **kw).accuracy}
            for suffix, hs in sets.items():
                res = run.evaluation(task, f"k{a.shots}s{seed}_act{suffix}", ActConfig(hs), **kw)
                part = _row(base, res)
                if suffix:
                    part = {f"{k}{suffix}": part[k] for k in ("treated", "delta", "p_value")}
                row |= part | {f"cc+act{suffix}": run.cc(task, res, ActConfig(hs), **kw).accuracy}
            per_seed.append(row)
        keys = ["baseline", "treated", "delta", "cc", "cc+act"]
        if "_k" in sets:
            keys += ["treated_k", "delta_k", "cc+act_k"]
        summary = {k: summarize_seeds([r[k] for r in per_seed]).to_dict() for k in keys}
        _write(
            run.out / f"kshot_{task}.json",
            {"task": task, "shots": a.shots, "per_seed": per_seed, "summary": summary,
             "heads": {f"act{suffix}": len(hs) for suffix, hs in sets.items()}},
        )  # fmt: skip


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2))


# --- the table ---------------------------------------------------------------------------------


def _cell(r: dict[str, Any] | None, delta: bool = False) -> str:
    if r is None:
        return "-"
    if not delta:
        return f"{100 * r['treated']:.1f}"
    lo, hi = r["interval"]
    return f"{100 * r['delta']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}], p={r['p_value']:.2g}"


def _content_blind(path: Path) -> float | None:
    """:func:`content_blind` of the result saved at ``path`` (None when there is none)."""
    return content_blind(EvalResult.load(path)) if path.exists() else None


def content_blind(r: EvalResult) -> float:
    """Accuracy of answering every question with choice c at the rate this result uses c:
    sum over c of P(predict c) x P(gold = c)."""
    k = max(len(s) for s in r.scores)
    pred = [sum(p == c for p in r.predictions) / r.n for c in range(k)]
    gold = [sum(y == c for y in r.labels) / r.n for c in range(k)]
    return sum(a * b for a, b in zip(pred, gold, strict=True))


def _block(out: Path, prefix: str, tasks: tuple[str, ...], title: str) -> list[str]:
    files = {t: out / f"{prefix}_{t}.json" for t in tasks if (out / f"{prefix}_{t}.json").exists()}
    if not files:
        return []
    lines = [f"## {title}", "",
             "| task | n | heads | base | ACT | ACT delta [95% CI], p | mixed set | random set | old default | CC | CC+ACT | ACT vs CC | top label base -> ACT | content-blind at ACT's rates |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    deltas, wins, vs_cc, mixed_deltas = [], 0, [], []
    for task, path in files.items():
        rows = json.loads(path.read_text())["rows"]
        a = rows["act"]
        deltas.append(a["delta"])
        vs_cc.append(rows["act_vs_cc"]["delta"])
        if rows.get("mixed") is not None:
            mixed_deltas.append(rows["mixed"]["delta"])
        wins += a["p_value"] < 0.05 and a["delta"] > 0
        blind = _content_blind(out / f"{task}_act.json")
        mixed = rows.get("mixed")
        mixed_cell = "-" if mixed is None else f"{_cell(mixed)} ({100 * mixed['delta']:+.1f})"
        lines.append(
            f"| {task} | {a['n']} | {a['heads']} | {100 * a['baseline']:.1f} | {_cell(a)} | {_cell(a, True)} | "
            f"{mixed_cell} | "
            f"{_cell(rows['random'])} ({100 * rows['random']['delta']:+.1f}) | {_cell(rows['old_default'])} "
            f"({rows['old_default']['heads']} heads) | {_cell(rows['cc'])} | {_cell(rows['cc+act'])} | "
            f"{100 * rows['act_vs_cc']['delta']:+.1f}, p={rows['act_vs_cc']['p_value']:.2g} | "
            f"{100 * max(a['baseline_prediction_rate']):.0f}% -> {100 * max(a['treated_prediction_rate']):.0f}% | "
            f"{'-' if blind is None else f'{100 * blind:.1f}'} |"
        )
    mean = 100 * sum(deltas) / len(deltas)
    lines += ["", f"Mean ACT delta over {len(deltas)} tasks: {mean:+.1f} points; significant gains (p < 0.05): "
              f"{wins} of {len(deltas)}; worst task {100 * min(deltas):+.1f}; mean ACT vs CC: "
              f"{100 * sum(vs_cc) / len(vs_cc):+.1f} points."]  # fmt: skip
    if mixed_deltas:
        lines.append(f"Mean delta of the mixed set over {len(mixed_deltas)} tasks: "
                     f"{100 * sum(mixed_deltas) / len(mixed_deltas):+.1f} points.")  # fmt: skip
    lines.append("")
    return lines


def write_table(out: Path) -> str:
    lines = [f"# Paper protocol on the bundled model ({out.name})", ""]
    for path in sorted(out.glob("head_set_*.json")):
        p = HeadSet.load(path).provenance
        lines.append(f"- `{path.name}`: {HeadSet.load(path).summary()}; chosen size {p.get('selected_size')} "
                     f"of {len(p.get('candidate_order', []))} candidates; search {p.get('search_s', 0) / 60:.1f} min; "
                     f"`{p.get('command', '?')}`")  # fmt: skip
    lines.append("")
    lines += _block(out, "cls", CLS, "Classification, zero-shot")
    lines += _block(out, "mc", MC, "Multiple choice, zero-shot, option letters")
    if (out / "sweeps.json").exists():
        s = json.loads((out / "sweeps.json").read_text())
        lines += ["## SST-2 sweeps (ACT accuracy, SST-2's set)", ""]
        for key in ("beta", "threshold"):
            lines += ["| " + key + " | " + " | ".join(s[key]) + " |", "|---" * (len(s[key]) + 1) + "|",
                      "| acc | " + " | ".join(_cell(r) for r in s[key].values()) + " |", ""]  # fmt: skip
    kfiles = sorted(out.glob("kshot_*.json"))
    if kfiles:
        lines += ["## k-shot (each task's zero-shot set)", "",
                  "| task | shots | seeds | base mean ± sd | ACT mean ± sd | delta mean ± sd | per-seed p | CC mean | CC+ACT mean |",
                  "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for f in kfiles:
            k = json.loads(f.read_text())
            s = k["summary"]
            ms = lambda d: f"{100 * d['mean']:.1f} ± {100 * d['std']:.1f}"  # noqa: E731
            ps = ", ".join(f"{r['p_value']:.2g}" for r in k["per_seed"])
            lines.append(f"| {k['task']} | {k['shots']} | {len(k['per_seed'])} | {ms(s['baseline'])} | {ms(s['treated'])} | "
                         f"{100 * s['delta']['mean']:+.1f} ± {100 * s['delta']['std']:.1f} | "
                         f"{ps} | {100 * s['cc']['mean']:.1f} | "
                         f"{100 * s['cc+act']['mean']:.1f} |")  # fmt: skip
        lines.append("")
    text = "\n".join(lines)
    (out / "table.md").write_text(text)
    for prefix, tasks, name in (
        ("cls", CLS, "eval_classification.png"),
        ("mc", MC, "eval_multiple_choice.png"),
    ):
        rows = []
        for t in tasks:
            if (out / f"{prefix}_{t}.json").exists():
                a = json.loads((out / f"{prefix}_{t}.json").read_text())["rows"]["act"]
                rows.append({"task": t, "baseline": a["baseline"], "treated": a["treated"],
                             "interval": tuple(a["interval"]), "p_value": a["p_value"]})  # fmt: skip
        if rows:
            plot_eval_comparison(rows, path=out / name)
    return text


def _workers(value: str) -> "int | str":
    if value == "auto" or (value.isdigit() and int(value) >= 1):
        return value if value == "auto" else int(value)
    raise argparse.ArgumentTypeError(f"auto or a number >= 1, got {value!r}")


def task_list(
    parser: argparse.ArgumentParser, flag: str, value: str, known: tuple[str, ...], kind: str
) -> tuple[str, ...]:
    """The comma list ``value`` of ``flag``; refused in one line when a name is not in ``known``."""
    names = tuple(t for t in value.split(",") if t)
    if set(names) - set(known):
        parser.error(
            f"{flag}: {sorted(set(names) - set(known))} are not {kind} tasks ({', '.join(known)})"
        )
    return names


def add_common_flags(parser: argparse.ArgumentParser, *, screen: int | None = None) -> None:
    """The flags the analysis scripts share: where the data is, how many eval examples, and
    how the searches and evaluations run (``--workers`` also runs the evaluations)."""
    add = parser.add_argument
    add("--data-dir", default=str(REPO.parent / "shared" / "data"))
    add("--limit", type=int, default=300, help="eval examples per task (a fixed subsample)")
    add("--screen", type=int, default=screen or SearchConfig().screen)
    add("--precision", choices=("fp32", "bf16", "auto"), default=SearchConfig().precision)
    add("--workers", type=_workers, default="auto",
        help="auto or a number of Ray workers (searches and evaluations)")  # fmt: skip
    add("--confidence", type=float, default=Selection().confidence)
    add("--layers", default=None, help="candidate layers: comma list or 'all' (default: 2..L-2)")
    add("--batch-size", type=int, default=8)
    add("--fresh", action="store_true", help="recompute files already in --out")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_flags(parser)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument(
        "--parts", default="mixed,cls", help=f"comma-separated subset of {','.join(PARTS)}"
    )
    parser.add_argument(
        "--tasks", default=",".join(CLS), help="classification tasks of the cls part"
    )
    parser.add_argument(
        "--mc-tasks", default=",".join(MC), help="multiple-choice tasks of the mc part (in order)"
    )
    parser.add_argument("--prompts", choices=("paper", "plain"), default="paper")
    parser.add_argument(
        "--calib", type=int, default=48, help="calibration prompts of a per-task search"
    )
    parser.add_argument("--mixed-per-task", type=int, default=16)
    parser.add_argument("--mc-per-task", type=int, default=16)
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--kshot-tasks", default="sst2,trec,agnews")
    parser.add_argument(
        "--kshot-search", action="store_true",
        help="also search each k-shot task's set on k-shot calibration prompts",
    )  # fmt: skip
    parser.add_argument(
        "--table-only", action="store_true", help="only rebuild table.md and figures"
    )
    parser.add_argument("--out", default=str(REPO / "figures" / "paper"))
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not parts or set(parts) - set(PARTS):
        parser.error(f"--parts: choose from {', '.join(PARTS)}")
    args.tasks = task_list(parser, "--tasks", args.tasks, CLS, "classification")
    args.kshot_tasks = task_list(parser, "--kshot-tasks", args.kshot_tasks, CLS, "classification")
    args.mc_tasks = task_list(parser, "--mc-tasks", args.mc_tasks, MC, "multiple-choice")
    out = Path(args.out)
    if args.table_only:
        if not out.is_dir():
            parser.error(f"{out} does not exist")
        print(write_table(out))
        return 0
    if not Path(args.data_dir).is_dir():
        print(f"data directory {args.data_dir} not found; pass --data-dir", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    args.command = "python analyses/reproduce_paper.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    run = Runner(args, load_model(args.model))
    scope = pool_scope(run.model, pool_size(args.workers))  # searches and evaluations share it
    steps: dict[str, Callable[[Runner], None]] = {
        "mixed": part_mixed, "cls": part_cls, "mc": part_mc, "sweeps": part_sweeps, "kshot": part_kshot,
    }  # fmt: skip
    with scope:
        for part in parts:
            t0 = time.perf_counter()
            steps[part](run)
            print(f"part {part}: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    print(write_table(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
