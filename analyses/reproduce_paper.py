"""The paper's protocol on the shared benchmarks with the bundled model, plus controls.

    python analyses/reproduce_paper.py [--data-dir ../shared/data] [--limit 200] [--calib-per-task 16]
                                       [--out figures/paper] [--skip-mc] [--shots 0]

1. One ACT head search on a mixed classification calibration set (training splits of the 9
   classification tasks, zero-shot), keep-rule: mean gold log-prob gain > margin.
2. Evaluation on the eval split of every classification task (fixed subsample of --limit):
   baseline vs ACT with paired intervals and McNemar p-values.
3. Controls on every classification task: a random head set of the same size (same layers),
   ACT on all heads of the candidate layers, contextual calibration (Zhao et al. 2021) alone
   and combined with ACT.
4. Sweeps on SST-2: beta and threshold.
5. One search + evaluation for the multiple-choice tasks (option letters).
Writes JSON results, a Markdown table (``table.md``) and figures into --out.
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

REPO = Path(__file__).resolve().parents[1]
CLS = ("sst2", "sst5", "mr", "subj", "agnews", "trec", "cb", "boolq", "dbpedia")
MC = ("arc_easy", "arc_challenge", "openbookqa", "commonsense_qa", "copa", "mmlu", "hellaswag", "piqa")
MC_TRAIN = ("arc_easy", "arc_challenge", "openbookqa", "commonsense_qa", "copa", "mmlu")


def _row(task: str, base: EvalResult, treated: EvalResult) -> dict[str, Any]:
    cmp = compare(base, treated)
    return {
        "task": task, "n": base.n, "baseline": base.accuracy, "treated": treated.accuracy,
        "delta": cmp.delta, "interval": list(cmp.interval), "p_value": cmp.p_value, "flips": cmp.flips,
        "baseline_positive_rate": base.prediction_rate(), "treated_positive_rate": treated.prediction_rate(),
    }


def _fmt(r: dict[str, Any]) -> str:
    lo, hi = r["interval"]
    return (f"{100 * r['baseline']:.1f} | {100 * r['treated']:.1f} | {100 * r['delta']:+.1f} "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}] | {r['p_value']:.2g}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--calib-per-task", type=int, default=16)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--screen", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--skip-mc", action="store_true")
    parser.add_argument("--out", default=str(REPO / "figures" / "paper"))
    args = parser.parse_args()
    data = Path(args.data_dir)
    if not data.is_dir():
        print(f"data directory {data} not found; pass --data-dir", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    model = load_model(args.model)
    layers = default_layers(model.cfg.n_layers)
    ev = dict(data=data, limit=args.limit, batch_size=args.batch_size, progress=False)
    timings: dict[str, float] = {}

    # 1. classification search
    t0 = time.perf_counter()
    calib = calibration_mix(CLS, args.calib_per_task * len(CLS), data=data, seed=0)
    hs = search_heads(model, calib, layers=layers, margin=args.margin, screen=args.screen,
                      batch_size=args.batch_size, checkpoint=out / "search_cls.ckpt")
    hs.save(out / "head_set_cls.json")
    timings["search_cls_s"] = time.perf_counter() - t0
    print("classification head set:", hs.summary(), flush=True)

    rng = random.Random(0)
    n_heads = model.cfg.n_heads
    all_pairs = [(layer, h) for layer in layers for h in range(n_heads)]
    random_set = HeadSet(rng.sample(all_pairs, len(hs)), {"method": "random control", "seed": 0})
    all_set = HeadSet(all_pairs, {"method": "all heads of the candidate layers"})
    configs = {"act": ActConfig(hs), "random": ActConfig(random_set), "all_heads": ActConfig(all_set)}

    # 2-3. classification evaluation and controls
    t0 = time.perf_counter()
    results: dict[str, Any] = {"head_set": hs.to_dict(), "random_set": random_set.to_dict(), "tasks": {}}
    for task in CLS:
        base = evaluate(model, task, **ev)
        base.save(out / f"{task}_baseline.json")
        row: dict[str, Any] = {}
        for name, cfg in configs.items():
            treated = evaluate(model, task, hooks=cfg, **ev)
            treated.save(out / f"{task}_{name}.json")
            row[name] = _row(task, base, treated)
        cf = content_free_scores(model, task, data=data)
        cc = contextual_calibration(base, cf)
        row["cc"] = _row(task, base, cc)
        cf_act = content_free_scores(model, task, data=data, hooks=configs["act"])
        cc_act = contextual_calibration(EvalResult.load(out / f"{task}_act.json"), cf_act)
        row["cc+act"] = _row(task, base, cc_act)
        row["act_vs_cc"] = _row(task, cc, cc_act)
        results["tasks"][task] = row
        print(task, {k: round(100 * v["treated"], 1) for k, v in row.items()}, "base", round(100 * base.accuracy, 1), flush=True)
    timings["eval_cls_s"] = time.perf_counter() - t0

    # 4. sweeps on SST-2
    t0 = time.perf_counter()
    base = evaluate(model, "sst2", **ev)
    sweeps: dict[str, Any] = {"beta": {}, "threshold": {}}
    for beta in (0.0, 0.2, 0.4, 0.6, 0.8):
        sweeps["beta"][str(beta)] = _row("sst2", base, evaluate(model, "sst2", hooks=ActConfig(hs, beta=beta), **ev))
    for thr in (0.05, 0.1, 0.2, 0.3):
        sweeps["threshold"][str(thr)] = _row("sst2", base, evaluate(model, "sst2", hooks=ActConfig(hs, threshold=thr), **ev))
    results["sweeps_sst2"] = sweeps
    timings["sweeps_s"] = time.perf_counter() - t0

    # 5. multiple choice
    if not args.skip_mc:
        t0 = time.perf_counter()
        calib_mc = calibration_mix(MC_TRAIN, args.calib_per_task * len(MC_TRAIN), data=data, seed=1)
        hs_mc = search_heads(model, calib_mc, layers=layers, margin=args.margin, screen=args.screen,
                             batch_size=args.batch_size, checkpoint=out / "search_mc.ckpt")
        hs_mc.save(out / "head_set_mc.json")
        results["head_set_mc"] = hs_mc.to_dict()
        results["mc"] = {}
        for task in MC:
            b = evaluate(model, task, **ev)
            t = evaluate(model, task, hooks=ActConfig(hs_mc), **ev)
            results["mc"][task] = _row(task, b, t)
            print(task, round(100 * b.accuracy, 1), round(100 * t.accuracy, 1), flush=True)
        timings["mc_s"] = time.perf_counter() - t0

    timings["total_s"] = time.perf_counter() - t_start
    results["timings"] = timings
    results["command"] = " ".join(sys.argv)
    (out / "results.json").write_text(json.dumps(results, indent=2))

    lines = [
        f"Model {args.model}; zero-shot; {args.limit} eval examples per task (fixed subsample); "
        f"classification head set: {hs.summary()}",
        "",
        "| task | base | ACT | delta [95% CI] | p | random set | all heads | CC | CC+ACT |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task, row in results["tasks"].items():
        lines.append(
            f"| {task} | {_fmt(row['act'])} | {100 * row['random']['treated']:.1f} | "
            f"{100 * row['all_heads']['treated']:.1f} | {100 * row['cc']['treated']:.1f} | "
            f"{100 * row['cc+act']['treated']:.1f} |"
        )
    if "mc" in results:
        lines += ["", f"Multiple choice head set: {HeadSet.from_dict(results['head_set_mc']).summary()}", "",
                  "| task | base | ACT | delta [95% CI] | p |", "|---|---|---|---|---|"]
        lines += [f"| {t} | {_fmt(r)} |" for t, r in results["mc"].items()]
    lines += ["", "SST-2 sweeps (ACT accuracy):", "",
              "| beta | " + " | ".join(sweeps["beta"]) + " |", "|---" * (len(sweeps["beta"]) + 1) + "|",
              "| acc | " + " | ".join(f"{100 * r['treated']:.1f}" for r in sweeps["beta"].values()) + " |", "",
              "| threshold | " + " | ".join(sweeps["threshold"]) + " |", "|---" * (len(sweeps["threshold"]) + 1) + "|",
              "| acc | " + " | ".join(f"{100 * r['treated']:.1f}" for r in sweeps["threshold"].values()) + " |",
              "", f"Run time: {timings['total_s'] / 60:.1f} min; command: `{results['command']}`"]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    rows = [{"task": t, "baseline": r["act"]["baseline"], "treated": r["act"]["treated"],
             "interval": tuple(r["act"]["interval"]), "p_value": r["act"]["p_value"]} for t, r in results["tasks"].items()]
    plot_eval_comparison(rows, path=out / "eval_classification.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
