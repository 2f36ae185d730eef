"""Which size rule should the joint selection use? Measured on held-out data, without searching again.

    python analyses/selection_rules.py --runs figures/paper_v4 [--tasks sst2,trec] [--limit 300]

Reads every ``head_set_<task>.json`` of a ``reproduce_paper.py`` folder (its provenance keeps the
candidate order and the validation curve: per size the prompts fixed and broken against no
heads), re-decides the set size under each rule below, evaluates each distinct prefix of the
candidate order on the task's eval split (the same fixed subsample as ``reproduce_paper.py``;
results cached as ``<task>_size<k>.json`` in the same folder) and writes
``selection_rules.json`` and ``selection_rules.md`` there: per task and rule, the size, its
validation gain and bound, and its held-out delta.

Rules (all choose among the sizes of the validation curve, 0 when none qualifies):

``conf90``      the default: eligible if the one-sided 90% exact lower bound of the paired
                validation gain is above 0; the eligible size with the best accuracy wins.
``conf95``      the same at 95%.
``bonf90``      the same with a Bonferroni level: 1 - 0.1 / (sizes tried).
``maxlower90``  among the 90%-eligible sizes, the one with the highest lower bound.
``best``        no test: the size with the best validation accuracy (what a plain argmax does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reproduce_paper import saved_under

from act_lens import load_model
from act_lens.analysis.selection import pick_size
from act_lens.evaluation.config import EvalConfig
from act_lens.evaluation.evaluate import EvalResult, compare, evaluate, numerics
from act_lens.evaluation.stats import paired_lower_bound
from act_lens.evaluation.tasks import get_task
from act_lens.hooks.act import ActConfig
from act_lens.hooks.headset import HeadSet
from act_lens.runtime.precision import precision_context

REPO = Path(__file__).resolve().parents[1]
METRIC = "choice_logprob"  # the search's tie-breaker


def _bounds(curve: list[dict[str, Any]], confidence: float) -> dict[int, float]:
    return {
        r["size"]: paired_lower_bound(r["gained"], r["lost"], r["n"], confidence=confidence)[0]
        for r in curve
        if r["size"] > 0
    }


def _best_eligible(curve: list[dict[str, Any]], confidence: float) -> int:
    """The search's own choice (:func:`pick_size`) with eligibility at ``confidence``."""
    lower = _bounds(curve, confidence)
    return pick_size(
        [r | {"eligible": r["size"] > 0 and lower[r["size"]] > 0} for r in curve], METRIC
    )


def rules(curve: list[dict[str, Any]]) -> dict[str, int]:
    """The size each rule picks from one validation curve."""
    tried = sum(1 for r in curve if r["size"] > 0)
    lower90 = _bounds(curve, 0.9)
    ok90 = [s for s, lo in lower90.items() if lo > 0]
    # no test: the best accuracy over every size, no heads included (ties as the search breaks them)
    best = max(curve, key=lambda r: (r["accuracy"], r[METRIC], -r["size"]))["size"]
    return {
        "conf90": _best_eligible(curve, 0.9),
        "conf95": _best_eligible(curve, 0.95),
        "bonf90": _best_eligible(curve, 1 - 0.1 / max(tried, 1)),
        "maxlower90": max(ok90, key=lambda s: (lower90[s], -s)) if ok90 else 0,
        "best": best,
    }


def prefix_run(
    args: argparse.Namespace, model: Any, task: str, hs: HeadSet, size: int, now: dict[str, Any]
) -> EvalResult:
    """The first ``size`` heads of the candidate order on the held-out examples
    (``<task>_size<size>.json`` in ``--runs``: reused when it ran under ``now``)."""
    path = Path(args.runs) / f"{task}_size{size}.json"
    if (res := saved_under(path, now)) is None:
        with precision_context(args.precision, model):
            res = evaluate(model, get_task(task, args.prompts), data=args.data_dir,
                           limit=args.limit, progress=False,
                           intervention=ActConfig(_prefix(hs, size)) if size else None)  # fmt: skip
        res.save(path)
    return res


def _prefix(hs: HeadSet, size: int) -> HeadSet:
    order = hs.provenance["candidate_order"]
    order = json.loads(order.replace("'", '"')) if isinstance(order, str) else order
    pairs = [tuple(int(x) for x in item.split(".")) for item in order[:size]]
    return HeadSet(pairs, {"from": "candidate order prefix", "size": size})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", required=True, help="a reproduce_paper.py --out folder")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument(
        "--tasks", default="", help="comma list (default: every head_set_<task>.json)"
    )
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--prompts", choices=("paper", "plain"), default="paper")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    args = parser.parse_args(argv)
    runs = Path(args.runs)
    if not runs.is_dir():
        parser.error(f"--runs {runs} is not a folder")
    if not Path(args.data_dir).is_dir():
        parser.error(f"data directory {args.data_dir} not found; pass --data-dir")
    tasks = [t for t in args.tasks.split(",") if t] or sorted(
        p.stem[len("head_set_"):] for p in runs.glob("head_set_*.json") if p.stem != "head_set_mixed"
    )  # fmt: skip
    missing = [t for t in tasks if not (runs / f"{t}_baseline.json").exists()]
    if missing:
        parser.error(
            f"no {missing[0]}_baseline.json in {runs}: run reproduce_paper.py --parts cls first"
        )
    model = load_model(args.model)
    with precision_context(args.precision, model):
        now = numerics(model, EvalConfig().batch_size)
    table: dict[str, Any] = {}
    for task in tasks:
        hs = HeadSet.load(runs / f"head_set_{task}.json", model=model)
        curve = hs.provenance["curve"]
        picks = rules(curve)
        held: dict[int, dict[str, Any]] = {
            0: {"delta": 0.0, "p_value": 1.0, "interval": [0.0, 0.0]}
        }
        sizes = sorted(set(picks.values()) - {0})

        # the comparisons' baseline: the folder's when it ran under this process's numerics,
        # else evaluated here (<task>_size0.json), so that no delta mixes two roundings
        if sizes:
            base = saved_under(runs / f"{task}_baseline.json", now) or prefix_run(
                args, model, task, hs, 0, now
            )
        for size in sizes:
            res = prefix_run(args, model, task, hs, size, now)
            cmp = compare(base, res)
            held[size] = {
                "delta": cmp.delta,
                "p_value": cmp.p_value,
                "interval": list(cmp.interval),
            }
        by_size = {r["size"]: r for r in curve}
        table[task] = {
            rule: {"size": s, "validation_gain": by_size[s]["gain"] if s else 0.0,
                   "validation_p": by_size[s]["p_value"] if s else 1.0, "heldout": held[s]}
            for rule, s in picks.items()
        }  # fmt: skip
        print(
            task,
            {r: (v["size"], round(100 * v["heldout"]["delta"], 1)) for r, v in table[task].items()},
            flush=True,
        )
    (runs / "selection_rules.json").write_text(json.dumps(table, indent=1))
    (runs / "selection_rules.md").write_text(_markdown(table, args))
    print(_markdown(table, args))
    return 0


def _markdown(table: dict[str, Any], args: argparse.Namespace) -> str:
    names = list(next(iter(table.values())))
    lines = [
        f"Held-out delta (points; {args.limit} eval examples) of the size each rule picks, from "
        f"`python analyses/selection_rules.py --runs {args.runs}`. Cell: size / delta.",
        "",
        "| task | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for task, row in table.items():
        cells = [f"{row[n]['size']} / {100 * row[n]['heldout']['delta']:+.1f}" for n in names]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    means = [sum(r[n]["heldout"]["delta"] for r in table.values()) / len(table) for n in names]
    worst = [min(r[n]["heldout"]["delta"] for r in table.values()) for n in names]
    lines.append("| mean | " + " | ".join(f"{100 * m:+.1f}" for m in means) + " |")
    lines.append("| worst | " + " | ".join(f"{100 * w:+.1f}" for w in worst) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
