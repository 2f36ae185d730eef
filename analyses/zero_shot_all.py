"""Zero-shot accuracy of a model on every benchmark task, with 95% bootstrap intervals.

    python analyses/zero_shot_all.py [--data-dir ../shared/data] [--limit 100] [--out figures/zero_shot]

Each task is evaluated on its eval split (shared/data/README.md), on a fixed random subsample
of --limit examples when the split is larger; classification by the label words' first token,
multiple choice by the option letters. Writes ``results.json`` and ``table.md``.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from act_lens import load_model
from act_lens.evaluation.evaluate import evaluate
from act_lens.evaluation.tasks import get_task, task_names

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", default=str(REPO / "figures" / "zero_shot"))
    args = parser.parse_args()
    data = Path(args.data_dir)
    if not data.is_dir():
        print(f"data directory {data} not found; pass --data-dir", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    rows = {}
    t0 = time.perf_counter()
    for name in task_names():
        task = get_task(name)
        result = evaluate(
            model,
            name,
            data=None if name == "reviews" else data,
            limit=args.limit,
            batch_size=args.batch_size,
            progress=False,
        )
        result.save(out / f"{name}.json")
        rows[name] = {
            "kind": task.kind,
            "split": result.split,
            "n": result.n,
            "accuracy": result.accuracy,
            "interval": list(result.interval),
            "chance": 1 / len(result.scores[0]),
            "prediction_rate": result.prediction_rate(),
        }
        if name == "mmlu":
            rows[name]["macro_by_subject"] = result.by_meta()["macro"]
        print(name, f"{100 * result.accuracy:.1f}", flush=True)
    seconds = time.perf_counter() - t0
    (out / "results.json").write_text(
        json.dumps(
            {"model": args.model, "limit": args.limit, "seconds": seconds, "tasks": rows}, indent=2
        )
    )
    lines = [
        f"Zero-shot accuracy of {args.model}, eval split, fixed subsample of up to {args.limit} examples "
        f"({seconds / 60:.1f} min). Command: `python analyses/zero_shot_all.py --limit {args.limit}`.",
        "",
        "| task | kind | n | accuracy [95% CI] | chance | most frequent prediction |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lo, hi = r["interval"]
        lines.append(
            f"| {name} | {r['kind']} | {r['n']} | {100 * r['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] | "
            f"{100 * r['chance']:.0f} | {100 * max(r['prediction_rate']):.0f}% |"
        )
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
