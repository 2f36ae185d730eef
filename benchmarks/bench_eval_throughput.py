"""Evaluation throughput: batched (left-padded, length-sorted) vs batch-1, same predictions.

    python benchmarks/bench_eval_throughput.py [--n 64] [--batch-size 8]
Target: at least 3x.
"""

import argparse
import time

from _common import write_result

from act_lens import load_model
from act_lens.evaluation.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--task", default="reviews")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    model = load_model("smollm2-135m")
    evaluate(model, args.task, data=args.data_dir, limit=4, progress=False)  # warm-up
    t0 = time.perf_counter()
    single = evaluate(
        model, args.task, data=args.data_dir, limit=args.n, batch_size=1, progress=False
    )
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched = evaluate(
        model,
        args.task,
        data=args.data_dir,
        limit=args.n,
        batch_size=args.batch_size,
        progress=False,
    )
    t_batched = time.perf_counter() - t0
    max_score_diff = max(
        abs(a - b)
        for s1, s2 in zip(single.scores, batched.scores, strict=True)
        for a, b in zip(s1, s2, strict=True)
    )
    write_result(
        "eval_throughput",
        {
            "task": args.task,
            "n": args.n,
            "batch_size": args.batch_size,
            "batch1_s": round(t_single, 3),
            "batched_s": round(t_batched, 3),
            "batch1_examples_per_s": round(args.n / t_single, 2),
            "batched_examples_per_s": round(args.n / t_batched, 2),
            "speedup": round(t_single / t_batched, 2),
            "target": 3.0,
            "same_predictions": single.predictions == batched.predictions,
            "max_abs_score_diff": max_score_diff,
        },
    )


if __name__ == "__main__":
    main()
