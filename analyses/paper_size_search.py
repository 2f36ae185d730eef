"""The paper-size head search on two CPU cores: 9 tasks x up to 900 training prompts, halving.

    OMP_NUM_THREADS=1 python analyses/paper_size_search.py [--per-task 900] [--out figures/paper_size]

The official search calibrates on about 900 training prompts from each of the 9
classification tasks (CB: all 250). Exhaustively that is ~7,450 x 243 head-prompt evaluations
on the bundled model (days on this machine); successive halving (``act_lens.analysis.halving``) spends
the exact engine's time on the heads still in the race. The joint selection picks the set
size on a small validation part split off the same calibration set (``--val-fraction``).
Then the 9 eval splits (fixed subsample of ``--limit``) are evaluated with this set; the
reproduction's small-calibration mixed set (``--compare-with``) is shown next to it.

Writes ``head_set_paper_size.json`` (rounds, curve, timings in its provenance), one
EvalResult per task, and ``table.md``. Interrupted runs resume from the checkpoint.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from act_lens import load_model
from act_lens.analysis.calibration_set import calibration_mix
from act_lens.analysis.halving import Halving
from act_lens.analysis.search import search_heads
from act_lens.analysis.search_config import SearchConfig
from act_lens.analysis.selection import Selection
from act_lens.evaluation.evaluate import EvalResult, compare, evaluate
from act_lens.evaluation.tasks import get_task
from act_lens.hooks.act import ActConfig
from act_lens.hooks.headset import HeadSet

REPO = Path(__file__).resolve().parents[1]
CLS = ("sst2", "sst5", "mr", "subj", "agnews", "trec", "cb", "boolq", "dbpedia")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--per-task", type=int, default=900)
    p.add_argument("--val-fraction", type=float, default=0.013)
    p.add_argument("--first", type=int, default=16)
    p.add_argument("--growth", type=float, default=3.0)
    p.add_argument("--keep", type=float, default=1 / 3)
    p.add_argument("--min-heads", type=int, default=24)
    p.add_argument("--limit", type=int, default=300)
    p.add_argument("--compare-with", default=str(REPO / "figures" / "paper_v2"))
    p.add_argument("--out", default=str(REPO / "figures" / "paper_size"))
    args = p.parse_args(argv)
    data, out = Path(args.data_dir), Path(args.out)
    if not data.is_dir():
        print(f"data directory {data} not found; pass --data-dir", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    command = "python analyses/paper_size_search.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    model = load_model(args.model)
    tasks = [get_task(t, "paper") for t in CLS]
    path = out / "head_set_paper_size.json"
    if path.exists():
        hs = HeadSet.load(path, model=model)
    else:
        counts = {t: min(args.per_task, len(t.load(data, t.train_split))) for t in tasks}
        calib = calibration_mix(counts, sum(counts.values()), data=data, seed=0)
        schedule = Halving(
            first=args.first, growth=args.growth, keep=args.keep, min_heads=args.min_heads
        )
        t0 = time.perf_counter()
        config = SearchConfig(schedule="halving", halving=schedule, progress=False,
                              checkpoint=out / "search.ckpt")  # fmt: skip
        hs = search_heads(
            model, calib, selection=Selection(val_fraction=args.val_fraction), config=config
        ).head_set
        hs = hs.with_provenance(search_s=time.perf_counter() - t0, command=command,
                                per_task={t.name: n for t, n in counts.items()})  # fmt: skip
        hs.save(path)
    prov = hs.provenance
    print(hs.summary(), f"search {prov['search_s'] / 60:.1f} min", flush=True)
    small_path = Path(args.compare_with) / "head_set_mixed.json"
    small = HeadSet.load(small_path, model=model) if small_path.exists() else None
    lines = [
        f"# Paper-size search (`{prov.get('command', command)}`)", "",
        f"{prov['calibration']['n']} search prompts ({prov.get('per_task')} per task before the "
        f"validation split), {prov['validation_set']['n']} validation prompts; "
        f"{prov['evaluations']} head-prompt evaluations ({prov['exhaustive_evaluations'] / prov['evaluations']:.1f}x "
        f"fewer than exhaustive), {prov['search_s'] / 60:.1f} min; set: {hs.summary()}", "",
        "| round | new prompts | prompts seen | heads in | heads kept | evaluations |", "|---|---|---|---|---|---|",
        *[f"| {r['round']} | {r['new_prompts']} | {r['prompts_seen']} | {r['heads_in']} | {r['heads_kept']} | {r['evaluations']} |"
          for r in prov["rounds"]],
        "", "| task | n | base | paper-size set | delta, p | small mixed set | delta, p |", "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for t in tasks:
        base = _eval(model, t, data, args.limit, None, out / f"{t.name}_baseline.json")
        big = _eval(model, t, data, args.limit, ActConfig(hs), out / f"{t.name}_paper_size.json")
        c = compare(base, big)
        cells = [f"{100 * big.accuracy:.1f}", f"{100 * c.delta:+.1f}, p={c.p_value:.2g}"]
        if small is not None:
            sm = _eval(
                model, t, data, args.limit, ActConfig(small), out / f"{t.name}_small_mixed.json"
            )
            cs = compare(base, sm)
            cells += [f"{100 * sm.accuracy:.1f}", f"{100 * cs.delta:+.1f}, p={cs.p_value:.2g}"]
        else:
            cells += ["-", "-"]
        lines.append(
            f"| {t.name} | {base.n} | {100 * base.accuracy:.1f} | " + " | ".join(cells) + " |"
        )
        print(lines[-1], flush=True)
    (out / "table.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(
        json.dumps({"rounds": prov["rounds"], "search_s": prov["search_s"]}, indent=2)
    )
    return 0


def _eval(model, task, data, limit, hooks, path: Path) -> EvalResult:
    if path.exists():
        return EvalResult.load(path)
    res = evaluate(model, task, data=data, limit=limit, intervention=hooks, progress=False)
    res.save(path)
    return res


if __name__ == "__main__":
    raise SystemExit(main())
