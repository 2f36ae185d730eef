"""Successive halving against the exhaustive exact search, side by side in one run.

On ``--n`` class-balanced calibration prompts mixed over the 9 classification tasks (the
paper's prompts), both schedules rank every head of the candidate layers by the exact
single-head ACT effect on ``choice_logprob``; each keeps its ``--top-k`` best heads. Reported:

* head-prompt evaluations of each (target: halving at least 10x fewer) and wall time;
* overlap of the two top-k sets (target: at least 12 of 15);
* held-out accuracy of both sets on ``--eval-tasks`` (target: within 1 point of each other).

Results go to ``benchmarks/results/search_schedule.json``. The exhaustive side costs about
``n x 243`` head-prompt evaluations on the bundled model (~0.3 s each on one core of this
machine for ~85-token prompts), so ``--n 512`` is an overnight run here; pass a smaller
``--n`` or ``--layers`` to fit the time you have, and say so.

    OMP_NUM_THREADS=1 python benchmarks/bench_search_schedule.py --n 512
"""

import argparse
import platform
import time
from pathlib import Path

import torch
from _common import write_result

from act_lens import load_model
from act_lens.analysis.calibration_set import calibration_mix
from act_lens.analysis.halving import Halving
from act_lens.analysis.search import SearchConfig, Selection, default_layers, search_heads
from act_lens.evaluation.evaluate import compare, evaluate
from act_lens.evaluation.tasks import get_task
from act_lens.hooks.act import ActConfig

CLS = ("sst2", "sst5", "mr", "subj", "agnews", "trec", "cb", "boolq", "dbpedia")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # The repository sits beside shared/; resolved from this file, not the working directory.
    p.add_argument(
        "--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--layers", default=None, help="comma list (default: 2..L-2)")
    p.add_argument("--top-k", type=int, default=15)
    p.add_argument("--first", type=int, default=16)
    p.add_argument("--growth", type=float, default=3.0)
    p.add_argument("--keep", type=float, default=1 / 3)
    p.add_argument("--min-heads", type=int, default=32)
    p.add_argument("--eval-tasks", default="sst2,trec,agnews")
    p.add_argument("--limit", type=int, default=300)
    args = p.parse_args()
    model = load_model("smollm2-135m")
    layers = (
        [int(x) for x in args.layers.split(",")]
        if args.layers
        else default_layers(model.cfg.n_layers)
    )
    tasks = [get_task(t, "paper") for t in CLS]
    calib = calibration_mix(tasks, args.n, data=args.data_dir, seed=7)
    schedule = Halving(
        first=args.first, growth=args.growth, keep=args.keep, min_heads=args.min_heads
    )
    selection = Selection("top_k", top_k=args.top_k)
    runs = {}
    # Alternating order would not help here (each run is one long job): halving first, so an
    # interrupted benchmark still has the cheap side.
    for name, sched in (("halving", schedule), ("exhaustive", "exhaustive")):
        t0 = time.perf_counter()
        config = (SearchConfig(schedule="halving", halving=sched, progress=False)
                  if isinstance(sched, Halving) else SearchConfig(progress=False))  # fmt: skip
        hs = search_heads(model, calib, layers=layers, selection=selection, config=config).head_set
        runs[name] = {"head_set": hs, "wall_s": time.perf_counter() - t0,
                      "evaluations": hs.provenance["evaluations"]}  # fmt: skip
        print(name, runs[name]["wall_s"], runs[name]["evaluations"], hs.summary(), flush=True)
    a, b = (set(runs[k]["head_set"]) for k in ("halving", "exhaustive"))
    accuracy = {}
    for task in args.eval_tasks.split(","):
        t = get_task(task, "paper")
        base = evaluate(model, t, data=args.data_dir, limit=args.limit, progress=False)
        row = {"baseline": base.accuracy}
        for name, r in runs.items():
            res = evaluate(
                model,
                t,
                data=args.data_dir,
                limit=args.limit,
                intervention=ActConfig(r["head_set"]),
                progress=False,
            )
            row[name] = res.accuracy
            row[f"{name}_vs_baseline"] = str(compare(base, res))
        accuracy[task] = row
    ev, ex = runs["halving"]["evaluations"], runs["exhaustive"]["evaluations"]
    write_result("search_schedule", {
        "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "n_prompts": args.n, "layers": layers, "heads": len(layers) * model.cfg.n_heads,
        "schedule": vars(args) | {"halving": schedule.describe()},
        "evaluations": {"halving": ev, "exhaustive": ex, "ratio": ex / ev},
        "wall_s": {k: r["wall_s"] for k, r in runs.items()},
        "wall_ratio": runs["exhaustive"]["wall_s"] / runs["halving"]["wall_s"],
        "rounds": runs["halving"]["head_set"].provenance["rounds"],
        "top_k": args.top_k, "overlap": len(a & b),
        "sets": {k: r["head_set"].summary() for k, r in runs.items()},
        "held_out_accuracy": accuracy,
    })  # fmt: skip


if __name__ == "__main__":
    main()
