"""One table comparing training-free calibrations on equal terms: ACT, ZeroTuning, CC.

    python analyses/compare_methods.py [--model smollm2-135m] [--tasks sst2,trec] [--mc]
        [--limit 300] [--calib 48] [--screen 60] [--out figures/methods]

Per task, on the same calibration prompts (``--calib`` class-balanced training prompts, seed
0, the paper's prompts) and the same held-out examples (fixed subsample of ``--limit``):

* baseline; contextual calibration (CC);
* ACT with the task's head set (joint selection; reused from ``--act-from`` when the
  reproduction already searched it there, else searched here);
* ZeroTuning supervised (heads profiled and gamma chosen by ``choice_logprob``) and
  unsupervised (by the entropy over the choices; labels never read by the search);
* ACT + ZeroTuning (ACT first, then the initial-token scaling of the supervised set).

Each with the paired bootstrap interval and exact McNemar p against the baseline, and the
share of the most frequent prediction (how much of each gain is a label-bias correction).
With ``--mc`` the multiple-choice tasks are added (one set per method, searched on the six
MC tasks with a training split). Files are reused like in ``reproduce_paper.py``.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reproduce_paper import (  # noqa: E402
    CLS,
    MC,
    MC_TRAIN,
    REPO,
    Runner,
    _row,
    add_common_flags,
    pool_size,
)  # fmt: skip

from act_lens import load_model  # noqa: E402
from act_lens.analysis.calibration_set import calibration_mix  # noqa: E402
from act_lens.analysis.search_config import SearchConfig  # noqa: E402
from act_lens.analysis.zerotuning_search import zerotuning_search  # noqa: E402
from act_lens.hooks.act import ActConfig  # noqa: E402
from act_lens.hooks.headset import HeadSet  # noqa: E402
from act_lens.hooks.interventions import Compose  # noqa: E402
from act_lens.hooks.zerotuning import ZeroTuningConfig  # noqa: E402
from act_lens.runtime.pool import pool_scope  # noqa: E402

METHODS = ("cc", "act", "zt_sup", "zt_unsup", "act+zt")
LABELS = {"cc": "CC", "act": "ACT", "zt_sup": "ZeroTuning (sup.)", "zt_unsup": "ZeroTuning (unsup.)",
          "act+zt": "ACT + ZeroTuning"}  # fmt: skip


class MethodRunner(Runner):
    def evaluation(self, task: str, name: str, hooks: Any = None, **kw: Any) -> Any:
        # The reproduction's baseline and ACT results are the same runs (same examples, same
        # head set): read them from there instead of evaluating again.
        shared = Path(self.args.act_from) / f"{task}_{name}.json"
        own = self.out / f"{task}_{name}.json"  # the study shares its folder: read it once
        if (name in ("baseline", "act") and not kw and self.args.model == "smollm2-135m"
                and shared.resolve() != own.resolve()):  # fmt: skip
            res = self.saved(shared)
            if res is not None:
                return res
        return super().evaluation(task, name, hooks, **kw)

    def act_set(self, tag: str, tasks: tuple[str, ...], per_task: int, seed: int) -> HeadSet:
        reuse = Path(self.args.act_from) / f"head_set_{tag}.json"
        if reuse.exists() and self.args.model == "smollm2-135m":
            return HeadSet.load(reuse, model=self.model)
        return self.head_set(tag, tasks, per_task, seed)

    def zt_set(
        self, tag: str, tasks: tuple[str, ...], per_task: int, seed: int, supervised: bool
    ) -> HeadSet:
        name = f"zt{'sup' if supervised else 'unsup'}_{tag}"
        path = self.out / f"head_set_{name}.json"
        if path.exists() and not self.args.fresh:
            return HeadSet.load(path, model=self.model)
        t0 = time.perf_counter()
        # The same calibration prompts as ACT's search (same tasks, size, seed, balance).
        calib = calibration_mix(
            [self.task(t) for t in tasks], per_task * len(tasks), data=self.data, seed=seed
        )
        # How ACT's search runs (workers, precision), so both methods are searched alike.
        config = SearchConfig(screen=self.args.screen, workers=self.args.workers,
                              precision=self.args.precision, batch_size=self.args.batch_size,
                              progress=False,
                              checkpoint=self.out / f"search_{name}.ckpt")  # fmt: skip
        hs = zerotuning_search(self.model, calib, supervised=supervised, layers=self.layers(),
                               config=config)  # fmt: skip
        hs = hs.with_provenance(
            tasks=list(tasks), search_s=time.perf_counter() - t0, command=self.args.command
        )
        hs.save(path)
        print(
            f"[zt {tag} sup={supervised}] {hs.summary()} ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        return hs


def cc_share(base: Any, treated: Any, cc: Any) -> float | None:
    """Of the examples ``treated`` fixes (wrong at baseline, right with it), the share that
    contextual calibration also gets right: how much of a gain a label-prior correction gets
    too (None: nothing fixed)."""
    fixed = [i for i, (b, t) in enumerate(zip(base.correct, treated.correct, strict=True))
             if t and not b]  # fmt: skip
    return sum(cc.correct[i] for i in fixed) / len(fixed) if fixed else None


def compare_task(
    run: MethodRunner, task: str, act: HeadSet, zt_sup: HeadSet, zt_unsup: HeadSet
) -> dict[str, Any]:
    base = run.evaluation(task, "baseline")
    configs = {
        "act": ActConfig(act),
        "zt_sup": ZeroTuningConfig(zt_sup),
        "zt_unsup": ZeroTuningConfig(zt_unsup),
        "act+zt": Compose(ActConfig(act), ZeroTuningConfig(zt_sup)),
    }
    results = {name: run.evaluation(task, name, cfg) for name, cfg in configs.items()}
    cc = run.cc(task, base, None)
    rows = {
        name: _row(base, r) | {"cc_share": cc_share(base, r, cc)} for name, r in results.items()
    }
    rows["cc"] = _row(base, cc)
    sizes = {"act": len(act), "zt_sup": len(zt_sup), "zt_unsup": len(zt_unsup)}
    gammas = {"zt_sup": zt_sup.params.get("gamma"), "zt_unsup": zt_unsup.params.get("gamma")}
    print(
        task,
        f"base {100 * base.accuracy:.1f}",
        {k: round(100 * v["treated"], 1) for k, v in rows.items()},
        flush=True,
    )
    return {"task": task, "rows": rows, "sizes": sizes, "gammas": gammas,
            "directions": {"zt_sup": zt_sup.params.get("direction"), "zt_unsup": zt_unsup.params.get("direction")}}  # fmt: skip


def write_table(out: Path) -> str:
    lines = [f"# Calibration methods compared ({out.name})", ""]
    for prefix, title in (
        ("cls", "Classification, zero-shot"),
        ("mc", "Multiple choice, zero-shot, option letters"),
    ):
        files = sorted(out.glob(f"{prefix}_*.json"))
        if not files:
            continue
        lines += [f"## {title}", "", "| task | n | base | " + " | ".join(LABELS[m] for m in METHODS) + " | top label: base / " + " / ".join(LABELS[m] for m in METHODS) + " |",
                  "|---|---|---|" + "---|" * (2 * len(METHODS) - len(METHODS) + 1)]  # fmt: skip
        means = {m: [] for m in METHODS}
        wins = {m: 0 for m in METHODS}
        for f in files:
            d = json.loads(f.read_text())
            r = d["rows"]
            cells = []
            for m in METHODS:
                x = r[m]
                lo, hi = x["interval"]
                extra = ""
                if m in d["sizes"]:
                    extra = f"; {d['sizes'][m]} heads"
                if m in d.get("gammas", {}):
                    extra += f", gamma {d['gammas'][m]:g}"
                cells.append(
                    f"{100 * x['treated']:.1f} ({100 * x['delta']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}], p={x['p_value']:.2g}{extra})"
                )
                means[m].append(x["delta"])
                wins[m] += x["p_value"] < 0.05 and x["delta"] > 0
            top = " / ".join(f"{100 * max(r[m]['treated_prediction_rate']):.0f}%" for m in METHODS)
            a = r["act"]
            lines.append(f"| {d['task']} | {a['n']} | {100 * a['baseline']:.1f} | " + " | ".join(cells)
                         + f" | {100 * max(a['baseline_prediction_rate']):.0f}% / {top} |")  # fmt: skip
        lines += ["", "Mean delta vs baseline (points), significant gains (p < 0.05): "
                  + "; ".join(f"{LABELS[m]} {100 * sum(v) / len(v):+.1f}, {wins[m]}/{len(v)}" for m, v in means.items()), ""]  # fmt: skip
    text = "\n".join(lines)
    (out / "table.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_flags(parser, screen=60)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", default=",".join(CLS))
    parser.add_argument("--mc", action="store_true", help="add the multiple-choice tasks")
    parser.add_argument("--calib", type=int, default=48)
    parser.add_argument("--mc-per-task", type=int, default=16)
    parser.add_argument(
        "--act-from",
        default=str(REPO / "figures" / "paper_v2"),
        help="reuse ACT head sets searched by reproduce_paper.py (bundled model only)",
    )
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--out", default=str(REPO / "figures" / "methods"))
    args = parser.parse_args(argv)
    args.tasks = tuple(t for t in args.tasks.split(",") if t)
    if set(args.tasks) - set(CLS):
        parser.error(f"--tasks: {sorted(set(args.tasks) - set(CLS))} are not classification tasks")
    out = Path(args.out)
    if args.table_only:
        print(write_table(out))
        return 0
    if not Path(args.data_dir).is_dir():
        print(f"data directory {args.data_dir} not found; pass --data-dir", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    args.prompts = "paper"
    args.command = "python analyses/compare_methods.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    run = MethodRunner(args, load_model(args.model))
    with pool_scope(run.model, pool_size(args.workers)):  # searches and evaluations share it
        run_all(run, args, out)
    print(write_table(out))
    return 0


def run_all(run: MethodRunner, args: argparse.Namespace, out: Path) -> None:
    for task in args.tasks:
        act = run.act_set(task, (task,), args.calib, seed=0)
        zs = run.zt_set(task, (task,), args.calib, 0, supervised=True)
        zu = run.zt_set(task, (task,), args.calib, 0, supervised=False)
        (out / f"cls_{task}.json").write_text(
            json.dumps(compare_task(run, task, act, zs, zu), indent=2)
        )
    if args.mc:
        act = run.act_set("mc", MC_TRAIN, args.mc_per_task, seed=1)
        zs = run.zt_set("mc", MC_TRAIN, args.mc_per_task, 1, supervised=True)
        zu = run.zt_set("mc", MC_TRAIN, args.mc_per_task, 1, supervised=False)
        for task in MC:
            (out / f"mc_{task}.json").write_text(
                json.dumps(compare_task(run, task, act, zs, zu), indent=2)
            )


if __name__ == "__main__":
    raise SystemExit(main())
