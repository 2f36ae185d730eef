"""An evaluation in-process vs on Ray workers, side by side.

    python benchmarks/bench_eval_workers.py [--limit 300] [--workers 2] [--precision bf16]

On the bundled SmolLM2-135M with SST-2 (``--data-dir``, else the built-in ``reviews``), with
ACT on the study's SST-2 head set (``figures/study``; a fixed small set if it is missing):

1. ``evaluate`` in-process with two torch threads (how the driver evaluated so far);
2. the same with one thread;
3. ``evaluate(workers=N)`` on N Ray actors (one thread each), the pool started beforehand and
   timed apart (a ``pool_scope`` pays it once per run: the search's workers are reused);

and prints the time of each, the speed ratios, whether the predictions are identical and the
largest score difference (parallel must equal serial). Result:
``benchmarks/results/eval_workers.json``.
"""

import argparse
import time
from pathlib import Path

import torch
from _common import write_result

from act_lens import evaluate, load_model
from act_lens.hooks.act import ActConfig
from act_lens.hooks.headset import HeadSet
from act_lens.runtime.pool import WorkerPool
from act_lens.runtime.precision import precision_context

REPO = Path(__file__).resolve().parents[1]
STUDY_SET = REPO / "figures" / "study" / "smollm2-135m_c128" / "head_set_sst2.json"


def _timed(model, task, act, data, limit, workers=None):
    t0 = time.perf_counter()
    r = evaluate(model, task, act, data=data, limit=limit, progress=False, workers=workers)
    return r, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    model = load_model("smollm2-135m")
    task = "sst2" if Path(args.data_dir, "sst2").exists() else "reviews"
    data = args.data_dir if task == "sst2" else None
    hs = HeadSet.load(STUDY_SET) if STUDY_SET.exists() else HeadSet({8: [2], 13: [6], 16: [0]})
    act = ActConfig(hs)
    times, results = {}, {}
    with precision_context(args.precision, model):
        evaluate(model, task, act, data=data, limit=16, progress=False)  # warm-up
        for threads in (2, 1):
            torch.set_num_threads(threads)
            results[threads], times[f"in_process_{threads}_threads_s"] = _timed(
                model, task, act, data, args.limit
            )
        t0 = time.perf_counter()
        pool = WorkerPool(model, args.workers)
        pool.map("act_lens.runtime.pool:weights_digest", [{}] * args.workers)  # actors loaded
        times["pool_start_s"] = time.perf_counter() - t0
        try:
            parallel, times[f"workers_{args.workers}_s"] = _timed(
                model, task, act, data, args.limit, workers=pool
            )
        finally:
            pool.close()
    serial = results[1]
    diff = max(
        abs(a - b)
        for ra, rb in zip(serial.scores, parallel.scores, strict=True)
        for a, b in zip(ra, rb, strict=True)
    )
    result = {
        "task": task,
        "examples": serial.n,
        "heads": len(hs),
        "precision": args.precision,
        "workers": args.workers,
        **{k: round(v, 2) for k, v in times.items()},
        "speedup_vs_2_threads": times["in_process_2_threads_s"] / times[f"workers_{args.workers}_s"],
        "speedup_vs_1_thread": times["in_process_1_threads_s"] / times[f"workers_{args.workers}_s"],
        "identical_predictions": parallel.predictions == serial.predictions,
        "max_abs_score_diff": diff,
        "accuracy": serial.accuracy,
    }
    write_result("eval_workers", result)


if __name__ == "__main__":
    main()
