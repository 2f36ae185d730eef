"""How the head search's schedule and precision change what it finds, measured on held-out data.

    python analyses/search_study.py --data-dir ../shared/data [--tasks sst2,trec,subj,dbpedia]
        [--calib 128] [--screens 24,48,96] [--fp32-tasks sst2,trec,subj] [--limit 300]
        [--workers 2] [--out figures/search_study]

Per task, one calibration draw (``calibration_split``: balanced ranking half, natural-frequency
validation half), then:

* **schedules**: the first-order screen of every candidate head and the exact single-head
  effect of every candidate head (bf16, the workers), once. "screen N" keeps the N best
  screened heads, exactly as ``search_heads(config=SearchConfig(screen=N))`` would (a head's
  exact effect does not depend on which other heads are evaluated); each schedule's candidates
  go through the same joint selection (accuracy, lower bound) on the validation half, and the
  chosen set is evaluated on ``--limit`` held-out examples.
* **screen N + halving** (``--halving 96``, ``--halving-z``): ``search_heads`` itself with
  ``SearchConfig(screen=N, schedule="halving")`` (the default ``Halving``) on the same ranking
  and validation halves, on the workers: its evaluations are the rounds' (each survivor on each
  prompt it saw), its wall time is measured (screen + rounds), its set is evaluated on the
  same held-out examples. Added to a task's file that lacks it (earlier files are extended).
* **precision** (``--fp32-tasks``): the same screened search in fp32 (screen, exact effects of
  the screened heads, validation curve, held-out accuracy), beside bf16 on the same heads: speed
  ratio, Spearman correlation of the effects, overlap of the chosen sets.

Every task writes ``<task>.json`` into ``--out`` when done (reused when present: the study
resumes), and ``table.md`` is rebuilt from those files.
"""

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from act_lens import load_model
from act_lens.analysis.calibration_set import calibration_split, describe_calibration
from act_lens.analysis.halving import Halving
from act_lens.analysis.screening import screen_heads
from act_lens.analysis.search import default_layers, search_heads
from act_lens.analysis.search_config import SearchConfig
from act_lens.analysis.selection import (
    Selection,
    decision,
    head_scores,
    joint_curve,
    ranked_candidates,
)
from act_lens.analysis.units import unit_effects
from act_lens.core.settings import SinkSettings
from act_lens.evaluation.evaluate import compare, evaluate
from act_lens.hooks.act import ActConfig
from act_lens.hooks.arch import fill_windows
from act_lens.hooks.headset import HeadSet
from act_lens.runtime.options import RunOptions
from act_lens.runtime.pool import WorkerPool, pool_scope
from act_lens.runtime.precision import precision_context

REPO = Path(__file__).resolve().parents[1]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().float(), b.argsort().argsort().float()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def choose(model, effects, heads, val, settings, pool, precision, sel: Selection) -> dict[str, Any]:
    """The joint selection over ``heads`` (exact effects from ``effects``)."""
    scores = {lh: s for lh, s in head_scores(effects, "choice_logprob").items() if lh in heads}
    order = ranked_candidates(scores, sel)
    t0 = time.perf_counter()
    curve = joint_curve(model, order, val, settings=settings, confidence=sel.confidence,
                        run=RunOptions(workers=pool, precision=precision))  # fmt: skip
    chosen = decision(curve, "choice_logprob", sel.confidence)
    keep = order[: chosen["selected_size"]]
    return {"heads": [list(h) for h in keep], "decision": chosen, "curve": curve,
            "candidates": len(order), "curve_s": time.perf_counter() - t0}  # fmt: skip


def held_out(model, task, heads, settings, args, precision, cache) -> dict[str, Any]:
    key = (precision, tuple(map(tuple, heads)))
    if key in cache:
        return cache[key]
    with precision_context(precision, model):
        if ("base", precision) not in cache:
            cache[("base", precision)] = evaluate(model, task, data=args.data_dir,
                                                  limit=args.limit, progress=False)  # fmt: skip
        base = cache[("base", precision)]
        if heads:
            hs = HeadSet([tuple(h) for h in heads])
            treated = evaluate(model, task, data=args.data_dir, limit=args.limit,
                               intervention=ActConfig(hs, settings), progress=False)  # fmt: skip
        else:
            treated = base
    cmp = compare(base, treated)
    cache[key] = {"n": base.n, "baseline": base.accuracy, "accuracy": treated.accuracy,
                  "delta": cmp.delta, "interval": list(cmp.interval), "p_value": cmp.p_value}  # fmt: skip
    return cache[key]


def run_task(model, pool, task: str, args, cache: dict[Any, Any]) -> dict[str, Any]:
    settings = fill_windows(SinkSettings(), model)
    sel = Selection(confidence=args.confidence)
    rank, val = calibration_split([task], args.calib, data=args.data_dir, seed=args.seed)
    layers = default_layers(int(model.cfg.n_layers))
    n_heads = int(model.cfg.n_heads)
    out: dict[str, Any] = {"task": task, "calibration": describe_calibration(rank),
                           "validation": describe_calibration(val), "layers": layers}  # fmt: skip
    t0 = time.perf_counter()
    est = screen_heads(model, rank, layers=layers, settings=settings,
                       run=RunOptions(workers=pool, precision="bf16"))  # fmt: skip
    out["screen_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    every = {la: list(range(n_heads)) for la in layers}
    eff = unit_effects(model, rank, strategy="act", heads=every, settings=settings,
                       run=RunOptions(workers=pool, precision="bf16"))  # fmt: skip
    out["exhaustive_s"] = time.perf_counter() - t0
    out["exhaustive_evaluations"] = len(layers) * n_heads * len(rank)
    by_est = [(layers[i // n_heads], i % n_heads)
              for i in torch.argsort(est.flatten(), descending=True).tolist()]  # fmt: skip
    schedules = {"exhaustive": set(by_est)}
    schedules.update({f"screen {n}": set(by_est[:n]) for n in args.screens})
    out["schedules"] = {}
    for name, heads in schedules.items():
        res = choose(model, eff, heads, val, settings, pool, "bf16", sel)
        res["evaluations"] = len(heads) * len(rank)
        res["est_wall_s"] = (out["screen_s"] if name != "exhaustive" else 0.0) + out[
            "exhaustive_s"
        ] * len(heads) / len(by_est)
        res["held_out"] = held_out(model, task, res["heads"], settings, args, "bf16", cache)
        out["schedules"][name] = res
        print(f"  {task} {name}: {len(res['heads'])} heads, held-out "
              f"{100 * res['held_out']['delta']:+.1f}", flush=True)  # fmt: skip
    if task in args.fp32_tasks:
        out["precision"] = precision_part(model, pool, task, rank, val, layers, settings, sel,
                                          args, cache)  # fmt: skip
    return out


def halving_name(screen: int, z: float) -> str:
    return f"screen {screen} + halving" + ("" if z == Halving().z else f" (z={z:g})")


def halving_part(
    model, pool, task: str, screen: int, args, cache: dict[Any, Any]
) -> dict[str, Any]:
    """The search itself with ``screen`` heads under successive halving (see the module)."""
    settings = fill_windows(SinkSettings(), model)
    sel = Selection(confidence=args.confidence)
    rank, val = calibration_split([task], args.calib, data=args.data_dir, seed=args.seed)
    config = SearchConfig(screen=screen, schedule="halving", halving=Halving(z=args.halving_z),
                          workers=args.workers, precision="bf16", progress=False)  # fmt: skip
    with pool_scope(model, pool):
        hs = search_heads(model, rank, validation=val, layers=default_layers(int(model.cfg.n_layers)),
                          settings=settings, selection=sel, config=config).head_set  # fmt: skip
    prov = hs.provenance
    t = prov["timings"]
    heads = [list(h) for h in hs]
    res = {"heads": heads, "decision": prov["decision"], "curve": prov["curve"],
           "candidates": len(prov["candidate_order"]), "curve_s": t["curve_s"],
           "rounds": prov["rounds"], "evaluations": prov["evaluations"],
           "est_wall_s": t["screen_s"] + t["effects_s"], "measured": True}  # fmt: skip
    res["held_out"] = held_out(model, task, heads, settings, args, "bf16", cache)
    print(f"  {task} {halving_name(screen, args.halving_z)}: {len(heads)} heads, {res['evaluations']} "
          f"evaluations, held-out {100 * res['held_out']['delta']:+.1f}", flush=True)  # fmt: skip
    return res


def precision_part(model, pool, task, rank, val, layers, settings, sel, args, cache):
    n_heads, n = int(model.cfg.n_heads), args.fp32_screen
    res: dict[str, Any] = {"screen": n}
    per = {}
    for precision in ("fp32", "bf16"):
        t0 = time.perf_counter()
        est = screen_heads(model, rank, layers=layers, settings=settings,
                           run=RunOptions(workers=pool, precision=precision))  # fmt: skip
        t_screen = time.perf_counter() - t0
        order = torch.argsort(est.flatten(), descending=True)[:n].tolist()
        heads = [(layers[i // n_heads], i % n_heads) for i in order]
        per[precision] = {"est": est, "heads": heads, "screen_s": t_screen}
    # exact effects of the same heads (fp32's screened set) in both precisions, side by side
    heads = per["fp32"]["heads"]
    hbl: dict[int, list[int]] = {}
    for la, h in heads:
        hbl.setdefault(la, []).append(h)
    for precision in ("fp32", "bf16"):
        t0 = time.perf_counter()
        eff = unit_effects(model, rank, strategy="act", heads=hbl, settings=settings,
                           run=RunOptions(workers=pool, precision=precision))  # fmt: skip
        per[precision]["effects_s"] = time.perf_counter() - t0
        per[precision]["eff"] = eff
        chosen = choose(model, eff, set(per[precision]["heads"]), val, settings, pool,
                        precision, sel)  # fmt: skip
        chosen["held_out"] = held_out(model, task, chosen["heads"], settings, args, precision,
                                      cache)  # fmt: skip
        per[precision]["chosen"] = chosen
    e32 = torch.tensor([per["fp32"]["eff"].effect(la, h, "choice_logprob") for la, h in heads])
    e16 = torch.tensor([per["bf16"]["eff"].effect(la, h, "choice_logprob") for la, h in heads])
    s32, s16 = per["fp32"]["est"].flatten(), per["bf16"]["est"].flatten()
    a = {tuple(h) for h in per["fp32"]["chosen"]["heads"]}
    b = {tuple(h) for h in per["bf16"]["chosen"]["heads"]}
    res.update(
        effects_speed_ratio=per["fp32"]["effects_s"] / per["bf16"]["effects_s"],
        screen_speed_ratio=per["fp32"]["screen_s"] / per["bf16"]["screen_s"],
        spearman_effects=spearman(e32, e16),
        spearman_screen=spearman(s32, s16),
        screened_overlap=len(set(per["fp32"]["heads"]) & set(per["bf16"]["heads"])),
        chosen_sizes=[len(a), len(b)],
        chosen_overlap=len(a & b),
        **{
            f"{p}_chosen": {k: per[p]["chosen"][k] for k in ("heads", "decision", "held_out")}
            for p in per
        },  # fmt: skip
    )
    return res


def table(out: Path, tasks: list[str]) -> str:
    rows = ["| task | schedule | evaluations | est. wall s | heads | validation gain (lower) "
            "| held-out delta [95% CI] | p |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    prec = ["| task | effects speed (fp32/bf16) | Spearman effects | Spearman screen | "
            "chosen sizes fp32/bf16 (overlap) | held-out fp32 | held-out bf16 |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    per_schedule: dict[str, list[tuple[float, float, int]]] = {}
    for task in tasks:
        path = out / f"{task}.json"
        if not path.exists():
            continue
        d = json.loads(path.read_text())
        full = d["schedules"]["exhaustive"]["held_out"]["delta"]
        for name, s in d["schedules"].items():
            per_schedule.setdefault(name, []).append(
                (s["held_out"]["delta"], s["held_out"]["delta"] - full, s["evaluations"])
            )
            h, dec = s["held_out"], s["decision"]
            rows.append(
                f"| {task} | {name} | {s['evaluations']} | {s['est_wall_s']:.0f} | "
                f"{len(s['heads'])} | {100 * dec['gain']:+.1f} ({100 * dec['lower']:+.1f}) | "
                f"{100 * h['delta']:+.1f} [{100 * h['interval'][0]:+.1f}, "
                f"{100 * h['interval'][1]:+.1f}] | {h['p_value']:.2g} |"
            )
        if "precision" in d:
            p = d["precision"]
            f32, b16 = p["fp32_chosen"]["held_out"], p["bf16_chosen"]["held_out"]
            prec.append(
                f"| {task} | {p['effects_speed_ratio']:.2f}x | {p['spearman_effects']:.3f} | "
                f"{p['spearman_screen']:.3f} | {p['chosen_sizes'][0]}/{p['chosen_sizes'][1]} "
                f"({p['chosen_overlap']}) | {100 * f32['accuracy']:.1f} | "
                f"{100 * b16['accuracy']:.1f} |"
            )
    summary = ["| schedule | tasks | mean held-out delta | mean difference from exhaustive "
               "| worst difference | exact evaluations (share of exhaustive) |",
               "|---|---|---|---|---|---|"]  # fmt: skip
    total = {n: sum(e for *_, e in v) for n, v in per_schedule.items()}
    for name, v in per_schedule.items():
        summary.append(
            f"| {name} | {len(v)} | {100 * sum(x for x, _, _ in v) / len(v):+.1f} | "
            f"{100 * sum(x for _, x, _ in v) / len(v):+.1f} | {100 * min(x for _, x, _ in v):+.1f} | "
            f"{total[name]} ({total[name] / total['exhaustive']:.0%}) |"
        )
    return "\n".join(["## Schedules (bf16)", "", *rows, "", *summary, "", "## Precision (screen "
                      "48, same heads)", "", *prec, ""])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--tasks", default="sst2,trec,subj,dbpedia")
    ap.add_argument("--calib", type=int, default=128)
    ap.add_argument("--screens", default="24,48,96")
    ap.add_argument("--fp32-tasks", default="sst2,trec,subj")
    ap.add_argument("--fp32-screen", type=int, default=48)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--halving", default="96", help="screens to run under successive halving")
    ap.add_argument("--halving-z", type=float, default=Halving().z,
                    help="the halving's z (a head behind the cutoff survives while mean + z x "
                    "stderr reaches it)")  # fmt: skip
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "figures" / "search_study"))
    args = ap.parse_args()
    args.screens = [int(x) for x in args.screens.split(",") if x]
    args.fp32_tasks = [t for t in args.fp32_tasks.split(",") if t]
    args.halving = [int(x) for x in args.halving.split(",") if x]
    tasks = [t for t in args.tasks.split(",") if t]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model("smollm2-135m")
    with WorkerPool(model, args.workers) as pool:
        for task in tasks:
            path = out / f"{task}.json"
            cache: dict[Any, Any] = {}  # held-out runs of this task (the baseline once)
            if path.exists():
                result = json.loads(path.read_text())
                for n in args.halving:
                    name = halving_name(n, args.halving_z)
                    if name not in result["schedules"]:
                        result["schedules"][name] = halving_part(model, pool, task, n, args, cache)
                        result["command"] += f" --halving {n} --halving-z {args.halving_z:g}"
                        path.write_text(json.dumps(result, indent=1))
                        (out / "table.md").write_text(table(out, tasks))
                continue
            t0 = time.perf_counter()
            result = run_task(model, pool, task, args, cache)
            for n in args.halving:
                name = halving_name(n, args.halving_z)
                result["schedules"][name] = halving_part(model, pool, task, n, args, cache)
            result["wall_s"] = time.perf_counter() - t0
            result["command"] = "python analyses/search_study.py " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "data_dir"
            )
            path.write_text(json.dumps(result, indent=1))
            (out / "table.md").write_text(table(out, tasks))
            print(f"{task}: {result['wall_s']:.0f} s", flush=True)
    print(table(out, tasks))


if __name__ == "__main__":
    main()
