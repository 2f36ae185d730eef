"""The paper's protocol on the shared benchmarks with the bundled model, plus controls.

    python analyses/reproduce_paper.py [--data-dir ../shared/data] [--limit 200] [--calib-per-task 16]
                                       [--parts cls,sweeps,mc,kshot] [--out figures/paper]

Parts (``--parts``, default all; each writes its own JSON into --out, so parts can be run in
separate sessions and the table is rebuilt from whatever parts are there):

``cls``    One ACT head search on a mixed classification calibration set (training splits of the
           9 classification tasks, zero-shot; keep-rule: mean gold log-prob gain > margin), then
           the eval split of every classification task (fixed subsample of --limit): baseline vs
           ACT with paired intervals and exact McNemar p-values, and controls: a random head set
           of the same size (same layers), ACT on all heads of the candidate layers, contextual
           calibration (Zhao et al. 2021) alone and combined with ACT.  -> ``cls.json``
``sweeps`` beta and threshold sweeps on SST-2 with the classification head set. -> ``sweeps.json``
``mc``     One search on a mixed multiple-choice calibration set (the 6 MC tasks with a training
           split), evaluation on all 8 MC tasks (option letters), with a random-set control.
           -> ``mc.json``
``kshot``  k-shot (--shots) evaluation over --seeds demonstration seeds on --kshot-tasks, baseline
           vs ACT with the classification head set (searched zero-shot, as in the paper).
           -> ``kshot.json``

Parts other than ``cls`` that need the classification head set read ``head_set_cls.json`` from
--out. ``table.md`` and ``results.json`` (all parts merged) are rewritten after every run.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from act_lens import load_model
from act_lens.act import ActConfig
from act_lens.baselines import content_free_scores, contextual_calibration
from act_lens.evaluate import EvalResult, compare, evaluate
from act_lens.figures import plot_eval_comparison
from act_lens.headset import HeadSet
from act_lens.search import calibration_mix, default_layers, search_heads
from act_lens.stats import summarize_seeds
from act_lens.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
CLS = ("sst2", "sst5", "mr", "subj", "agnews", "trec", "cb", "boolq", "dbpedia")
MC = ("arc_easy", "arc_challenge", "openbookqa", "commonsense_qa", "copa", "mmlu", "hellaswag", "piqa")
MC_TRAIN = ("arc_easy", "arc_challenge", "openbookqa", "commonsense_qa", "copa", "mmlu")
PARTS = ("cls", "sweeps", "mc", "kshot")


def _row(task: str, base: EvalResult, treated: EvalResult) -> dict[str, Any]:
    cmp = compare(base, treated)
    return {
        "task": task, "n": base.n, "baseline": base.accuracy, "treated": treated.accuracy,
        "delta": cmp.delta, "interval": list(cmp.interval), "p_value": cmp.p_value, "flips": cmp.flips,
        "baseline_prediction_rate": base.prediction_rate(), "treated_prediction_rate": treated.prediction_rate(),
    }


def _fmt(r: dict[str, Any]) -> str:
    lo, hi = r["interval"]
    return (f"{100 * r['baseline']:.1f} | {100 * r['treated']:.1f} | {100 * r['delta']:+.1f} "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}] | {r['p_value']:.2g}")


def _random_like(hs: HeadSet, layers: list[int], n_heads: int, seed: int) -> HeadSet:
    pairs = [(layer, h) for layer in layers for h in range(n_heads)]
    return HeadSet(random.Random(seed).sample(pairs, len(hs)), {"method": "random control", "seed": seed})


def _layers(model: Any, spec: str | None) -> list[int]:
    if spec is None:
        return list(default_layers(model.cfg.n_layers))
    if spec == "all":
        return list(range(model.cfg.n_layers))
    return [int(x) for x in spec.split(",")]


def _search_or_reuse(
    model: Any, args: argparse.Namespace, out: Path, part: str, tasks: tuple[str, ...], seed: int,
    data: Path, command: str,
) -> tuple[HeadSet, str, float]:
    """The part's head set: searched now, or (``--reuse-head-sets``) read from --out."""
    path = out / f"head_set_{part}.json"
    if args.reuse_head_sets and path.exists():
        previous = out / f"{part}.json"
        prev = json.loads(previous.read_text()) if previous.exists() else {}
        how = prev.get("search_command", prev.get("command", f"unknown (see {path.name} provenance)"))
        print(f"reusing {path} (searched by: {how})", flush=True)
        return HeadSet.load(path, model=model), how, 0.0
    t0 = time.perf_counter()
    calib = calibration_mix(tasks, args.calib_per_task * len(tasks), data=data, seed=seed)
    hs = search_heads(
        model, calib, layers=_layers(model, args.layers), margin=args.margin, screen=args.screen,
        batch_size=args.batch_size, checkpoint=out / f"search_{part}.ckpt",
    )
    hs.save(path)
    return hs, command, time.perf_counter() - t0


def _cc_rows(
    model: Any, task: str, base: EvalResult, act: EvalResult, act_cfg: ActConfig, data: Path,
    shots: int = 0, seed: int = 0,
) -> dict[str, Any]:
    """Contextual calibration alone and on top of ACT (one prior per option count; with k-shot
    prompts the content-free prompt carries the same demonstrations as the evaluated ones)."""
    mc = get_task(task).kind == "multiple_choice"
    counts = sorted({len(row) for row in base.scores})

    def prior(hooks: Any) -> dict[int, Any]:
        return {
            n: content_free_scores(
                model, task, data=data, hooks=hooks, n_options=n if mc else None, shots=shots, seed=seed
            )
            for n in counts
        }

    cc = contextual_calibration(base, prior(None))
    cc_act = contextual_calibration(act, prior(act_cfg))
    return {"cc": _row(task, base, cc), "cc+act": _row(task, base, cc_act), "act_vs_cc": _row(task, cc, cc_act)}


def _eval_tasks(
    model: Any, tasks: tuple[str, ...], configs: dict[str, ActConfig], out: Path,
    ev: dict[str, Any],
) -> dict[str, Any]:
    """Per task: baseline and every config (``configs["act"]`` is the ACT under test) vs baseline,
    plus the contextual-calibration rows; each EvalResult is saved into ``out``."""
    rows: dict[str, Any] = {}
    for task in tasks:
        base = evaluate(model, task, **ev)
        base.save(out / f"{task}_baseline.json")
        row: dict[str, Any] = {}
        treated: dict[str, EvalResult] = {}
        for name, cfg in configs.items():
            treated[name] = evaluate(model, task, hooks=cfg, **ev)
            treated[name].save(out / f"{task}_{name}.json")
            row[name] = _row(task, base, treated[name])
        row.update(_cc_rows(model, task, base, treated["act"], configs["act"], ev["data"]))
        rows[task] = row
        print(task, "base", round(100 * base.accuracy, 1),
              {k: round(100 * v["treated"], 1) for k, v in row.items()}, flush=True)
    return rows


def _cls_head_set(out: Path, model: Any) -> HeadSet:
    path = out / "head_set_cls.json"
    if not path.exists():
        raise SystemExit(f"{path} not found: run the 'cls' part first (--parts cls) or pass the --out that has it")
    return HeadSet.load(path, model=model)


def part_cls(model: Any, args: argparse.Namespace, out: Path, ev: dict[str, Any]) -> dict[str, Any]:
    layers = _layers(model, args.layers)
    hs, search_command, search_s = _search_or_reuse(
        model, args, out, "cls", CLS, seed=0, data=ev["data"], command=args.command
    )
    timings = {"search_s": search_s}
    print("classification head set:", hs.summary(), flush=True)

    random_set = _random_like(hs, layers, model.cfg.n_heads, seed=0)
    all_set = HeadSet([(layer, h) for layer in layers for h in range(model.cfg.n_heads)],
                      {"method": "all heads of the candidate layers"})
    configs = {"act": ActConfig(hs), "random": ActConfig(random_set), "all_heads": ActConfig(all_set)}
    t0 = time.perf_counter()
    res: dict[str, Any] = {"head_set": hs.to_dict(), "search_command": search_command,
                           "random_set": random_set.to_dict(),
                           "tasks": _eval_tasks(model, CLS, configs, out, ev)}
    timings["eval_s"] = time.perf_counter() - t0
    res["timings"] = timings
    return res


def part_sweeps(model: Any, args: argparse.Namespace, out: Path, ev: dict[str, Any]) -> dict[str, Any]:
    hs = _cls_head_set(out, model)
    t0 = time.perf_counter()
    base = evaluate(model, "sst2", **ev)
    res: dict[str, Any] = {"beta": {}, "threshold": {}}
    for beta in (0.0, 0.2, 0.4, 0.6, 0.8):
        res["beta"][str(beta)] = _row("sst2", base, evaluate(model, "sst2", hooks=ActConfig(hs, beta=beta), **ev))
    for thr in (0.05, 0.1, 0.2, 0.3):
        res["threshold"][str(thr)] = _row("sst2", base, evaluate(model, "sst2", hooks=ActConfig(hs, threshold=thr), **ev))
    res["timings"] = {"sweeps_s": time.perf_counter() - t0}
    return res


def part_mc(model: Any, args: argparse.Namespace, out: Path, ev: dict[str, Any]) -> dict[str, Any]:
    layers = _layers(model, args.layers)
    hs, search_command, search_s = _search_or_reuse(
        model, args, out, "mc", MC_TRAIN, seed=1, data=ev["data"], command=args.command
    )
    timings = {"search_s": search_s}
    print("multiple-choice head set:", hs.summary(), flush=True)
    random_set = _random_like(hs, layers, model.cfg.n_heads, seed=1)
    t0 = time.perf_counter()
    configs = {"act": ActConfig(hs), "random": ActConfig(random_set)}
    res: dict[str, Any] = {"head_set": hs.to_dict(), "search_command": search_command,
                           "random_set": random_set.to_dict(),
                           "tasks": _eval_tasks(model, MC, configs, out, ev)}
    timings["eval_s"] = time.perf_counter() - t0
    res["timings"] = timings
    return res


def part_kshot(model: Any, args: argparse.Namespace, out: Path, ev: dict[str, Any]) -> dict[str, Any]:
    if args.shots < 1:
        raise SystemExit("the kshot part needs --shots >= 1")
    act_cfg = ActConfig(_cls_head_set(out, model))
    t0 = time.perf_counter()
    kev = dict(ev, limit=args.kshot_limit or args.limit, shots=args.shots)
    res: dict[str, Any] = {"shots": args.shots, "seeds": list(range(args.seeds)), "tasks": {}}
    for task in args.kshot_tasks.split(","):
        per_seed = []
        for seed in range(args.seeds):
            base = evaluate(model, task, seed=seed, **kev)
            act = evaluate(model, task, seed=seed, hooks=act_cfg, **kev)
            base.save(out / f"kshot{args.shots}_{task}_s{seed}_baseline.json")
            act.save(out / f"kshot{args.shots}_{task}_s{seed}_act.json")
            row = _row(task, base, act)
            cc = _cc_rows(model, task, base, act, act_cfg, ev["data"], shots=args.shots, seed=seed)
            row["cc"], row["cc+act"] = cc["cc"]["treated"], cc["cc+act"]["treated"]
            per_seed.append(row)
            print(f"{task} {args.shots}-shot seed {seed}: base {100 * base.accuracy:.1f} "
                  f"ACT {100 * act.accuracy:.1f} CC {100 * row['cc']:.1f} CC+ACT {100 * row['cc+act']:.1f}",
                  flush=True)
        res["tasks"][task] = {
            "per_seed": per_seed,
            "baseline": summarize_seeds([r["baseline"] for r in per_seed]).to_dict(),
            "act": summarize_seeds([r["treated"] for r in per_seed]).to_dict(),
            "delta": summarize_seeds([r["delta"] for r in per_seed]).to_dict(),
            "cc": summarize_seeds([r["cc"] for r in per_seed]).to_dict(),
            "cc+act": summarize_seeds([r["cc+act"] for r in per_seed]).to_dict(),
            "seeds_better": sum(r["delta"] > 0 for r in per_seed),
            "seeds_worse": sum(r["delta"] < 0 for r in per_seed),
        }
    res["timings"] = {"kshot_s": time.perf_counter() - t0}
    return res


def _content_blind(path: Path) -> float | None:
    """Accuracy a guesser ignoring the question would get with this result's answer frequencies:
    sum over choices of P(predict c) * P(gold is c). None when the result file is absent."""
    if not path.exists():
        return None
    r = EvalResult.load(path)
    k = max(len(s) for s in r.scores)
    pred = [sum(p == c for p in r.predictions) / r.n for c in range(k)]
    gold = [sum(y == c for y in r.labels) / r.n for c in range(k)]
    return sum(a * b for a, b in zip(pred, gold, strict=True))


def _ms(summary: dict[str, Any] | None) -> str:
    return "-" if summary is None else f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}"


def _searched_by(part: dict[str, Any]) -> str:
    how = part.get("search_command")
    return f" (searched by `{how}`)" if how and how != part["command"] else ""


def _table(results: dict[str, Any], out: Path) -> str:
    lines: list[str] = []
    if "cls" in results:
        c = results["cls"]
        lines += [
            f"## Classification, zero-shot (`{c['command']}`, {c['timings_total_min']:.1f} min)", "",
            f"Head set: {HeadSet.from_dict(c['head_set']).summary()}{_searched_by(c)}", "",
            "| task | base | ACT | delta [95% CI] | p | random set | all heads | CC | CC+ACT "
            "| most frequent label, base -> ACT |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for task, row in c["tasks"].items():
            lines.append(
                f"| {task} | {_fmt(row['act'])} | {100 * row['random']['treated']:.1f} | "
                f"{100 * row['all_heads']['treated']:.1f} | {100 * row['cc']['treated']:.1f} | "
                f"{100 * row['cc+act']['treated']:.1f} | {100 * max(row['act']['baseline_prediction_rate']):.0f}% -> "
                f"{100 * max(row['act']['treated_prediction_rate']):.0f}% |")
        lines.append("")
    if "sweeps" in results:
        s = results["sweeps"]
        lines += [f"## SST-2 sweeps, ACT accuracy (`{s['command']}`, {s['timings_total_min']:.1f} min)", ""]
        for key in ("beta", "threshold"):
            lines += ["| " + key + " | " + " | ".join(s[key]) + " |", "|---" * (len(s[key]) + 1) + "|",
                      "| acc | " + " | ".join(f"{100 * r['treated']:.1f}" for r in s[key].values()) + " |", ""]
    if "mc" in results:
        m = results["mc"]
        lines += [
            f"## Multiple choice, zero-shot, option letters (`{m['command']}`, {m['timings_total_min']:.1f} min)", "",
            f"Head set: {HeadSet.from_dict(m['head_set']).summary()}{_searched_by(m)}", "",
            "| task | base | ACT | delta [95% CI] | p | random set | CC | CC+ACT | most frequent answer, base -> ACT -> CC "
            "| content-blind guess at ACT's answer rates |",
            "|---|---|---|---|---|---|---|---|---|---|"]
        for task, row in m["tasks"].items():
            a = row["act"]
            top_b, top_t = max(a["baseline_prediction_rate"]), max(a["treated_prediction_rate"])
            cc = {k: f"{100 * row[k]['treated']:.1f}" if k in row else "-" for k in ("cc", "cc+act")}
            top_cc = f" -> {100 * max(row['cc']['treated_prediction_rate']):.0f}%" if "cc" in row else ""
            blind = _content_blind(out / f"{task}_act.json")
            lines.append(f"| {task} | {_fmt(a)} | {100 * row['random']['treated']:.1f} | {cc['cc']} | {cc['cc+act']} | "
                         f"{100 * top_b:.0f}% -> {100 * top_t:.0f}%{top_cc} | "
                         f"{'-' if blind is None else f'{100 * blind:.1f}'} |")
        lines += ["", "Content-blind guess: the accuracy of answering each question with letter c at the rate "
                  "ACT's predictions use c, ignoring the question: sum over c of P(ACT predicts c) x P(gold = c).", ""]
    if "kshot" in results:
        k = results["kshot"]
        lines += [
            f"## {k['shots']}-shot classification over {len(k['seeds'])} seeds, classification head set "
            f"(`{k['command']}`, {k['timings_total_min']:.1f} min)", "",
            "| task | n | base mean ± sd | ACT mean ± sd | delta mean ± sd | seeds better / worse | per-seed p "
            "| CC mean ± sd | CC+ACT mean ± sd |",
            "|---|---|---|---|---|---|---|---|---|"]
        for task, row in k["tasks"].items():
            b, a, d = row["baseline"], row["act"], row["delta"]
            ps = ", ".join(f"{r['p_value']:.2g}" for r in row["per_seed"])
            lines.append(f"| {task} | {row['per_seed'][0]['n']} | {100 * b['mean']:.1f} ± {100 * b['std']:.1f} | "
                         f"{100 * a['mean']:.1f} ± {100 * a['std']:.1f} | {100 * d['mean']:+.1f} ± {100 * d['std']:.1f} | "
                         f"{row['seeds_better']} / {row['seeds_worse']} | {ps} | {_ms(row.get('cc'))} | "
                         f"{_ms(row.get('cc+act'))} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--calib-per-task", type=int, default=16)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--screen", type=int, default=None)
    parser.add_argument("--layers", default=None, help="candidate layers: comma list or 'all' (default: 2..L-2)")
    parser.add_argument("--reuse-head-sets", action="store_true",
                        help="use head_set_cls.json / head_set_mc.json already in --out instead of searching again")
    parser.add_argument("--table-only", action="store_true",
                        help="only rebuild table.md, results.json and the figures from the part JSONs in --out")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--shots", type=int, default=4, help="demonstrations per prompt in the kshot part")
    parser.add_argument("--seeds", type=int, default=5, help="demonstration seeds in the kshot part")
    parser.add_argument("--kshot-tasks", default=",".join(CLS))
    parser.add_argument("--kshot-limit", type=int, default=None, help="eval examples per task in kshot (default --limit)")
    parser.add_argument("--out", default=str(REPO / "figures" / "paper"))
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        parser.error(f"--parts: unknown {bad}; choose from {', '.join(PARTS)}")
    unknown = [t for t in args.kshot_tasks.split(",") if t not in CLS]
    if "kshot" in parts and unknown:
        parser.error(f"--kshot-tasks: {unknown} are not classification tasks ({', '.join(CLS)})")
    out = Path(args.out)
    if args.table_only:
        return _write_summary(out)
    data = Path(args.data_dir)
    if not data.is_dir():
        print(f"data directory {data} not found; pass --data-dir", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    ev: dict[str, Any] = dict(data=data, limit=args.limit, batch_size=args.batch_size, progress=False)
    command = "python analyses/reproduce_paper.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.command = command
    run_part = {"cls": part_cls, "sweeps": part_sweeps, "mc": part_mc, "kshot": part_kshot}
    for part in parts:
        t0 = time.perf_counter()
        res = run_part[part](model, args, out, ev)
        res["command"] = command
        res["model"] = args.model
        res["limit"] = args.limit
        res["timings_total_min"] = (time.perf_counter() - t0) / 60
        (out / f"{part}.json").write_text(json.dumps(res, indent=2))

    return _write_summary(out)


def _write_summary(out: Path) -> int:
    """Merge the part JSONs in ``out`` into results.json, table.md and the figures."""
    results = {p: json.loads((out / f"{p}.json").read_text()) for p in PARTS if (out / f"{p}.json").exists()}
    if not results:
        print(f"no part results ({', '.join(p + '.json' for p in PARTS)}) in {out}; run some --parts first",
              file=sys.stderr)
        return 2
    model_name = ", ".join(sorted({str(r.get("model", "?")) for r in results.values()}))
    (out / "results.json").write_text(json.dumps(results, indent=2))
    table = f"Model {model_name}; eval examples per task: the fixed subsample of `--limit` in each command.\n\n"
    table += _table(results, out)
    (out / "table.md").write_text(table)
    for part, name in (("cls", "eval_classification.png"), ("mc", "eval_multiple_choice.png")):
        if part in results:
            rows = [{"task": t, "baseline": r["act"]["baseline"], "treated": r["act"]["treated"],
                     "interval": tuple(r["act"]["interval"]), "p_value": r["act"]["p_value"]}
                    for t, r in results[part]["tasks"].items()]
            plot_eval_comparison(rows, path=out / name)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
