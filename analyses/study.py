"""The evidence study: per-task searches over calibration draws, with controls, and its results page.

    python analyses/study.py [--models smollm2-135m] [--tasks sst2,trec] [--calib-sizes 128]
        [--draws 3] [--methods act,zt] [--kshot-tasks sst2,trec] [--mc-tasks all]
        [--mc-scoring both] [--limit 300]
        [--workers auto] [--out figures/study] [--page docs/evidence.md]

For every model, calibration size and draw (the draw is the calibration seed: another sample of
the training split, split again into ranking and validation prompts) and every task: the
task's own search (the library's defaults: joint selection by paired validation accuracy with
its exact lower bound), then on the same fixed ``--limit`` eval examples: the baseline, ACT,
a random set of the same size, contextual calibration (CC) and CC on top of ACT. With ``zt`` in
``--methods`` also ZeroTuning (supervised and unsupervised) and ACT + ZeroTuning, on draw 0;
with ``--kshot-tasks`` draw 0's sets on k-shot prompts (``--shots``, ``--seeds``); with
``--mc-tasks`` (or ``all``) one search on the multiple-choice training splits and every listed MC
task, scored by letters and by full continuations (``--mc-scoring letters``: letters only),
with the controls. Searches and
evaluations share one set of Ray workers per model (``--workers``).

Everything is a file under ``<out>/<model>_c<calib>/`` (the layout of ``reproduce_paper.py``;
draw 0 uses its names, draw d > 0 adds ``_d<d>``), reused when present, so the study resumes
where it stopped and can run in pieces. ``--page`` regenerates the results page (tables, the
forest plot and the draw-to-draw spread) from the files alone: ``--page-only`` needs no model.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
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
    content_blind,
    part_kshot,
    pool_size,
    task_list,
)  # fmt: skip

from act_lens import load_model  # noqa: E402
from act_lens.evaluation.controls import random_head_set  # noqa: E402
from act_lens.hooks.act import ActConfig  # noqa: E402
from act_lens.hooks.headset import HeadSet  # noqa: E402
from act_lens.runtime.pool import pool_scope  # noqa: E402

METHODS = ("act", "zt")


def _suffix(draw: int) -> str:
    return "" if draw == 0 else f"_d{draw}"


def _row_files(rec: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Row -> (baseline file, treated file) of a study record (``study_*`` or ``mc_study_*``): the
    evaluation files its rows were computed from (an empty set's runs are the baseline's)."""
    task, empty = rec["task"], not rec["heads"]
    if "draw" in rec:  # a classification draw
        s = _suffix(rec["draw"])
        pairs = {"act": ("baseline", f"act{s}"), "random": ("baseline", f"random{s}")}
    else:  # multiple choice: letters, and full continuations unless run with letters only
        tags = ("", "_full") if "act_full" in rec["rows"] else ("",)
        pairs = {f"{k}{t}": (f"baseline{t}", f"{k}{t}") for t in tags for k in ("act", "random")}
    return {row: (f"{task}_{b}.json", f"{task}_{b if empty else t}.json")
            for row, (b, t) in pairs.items()}  # fmt: skip


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _sources(folder: Path, rec: dict[str, Any]) -> dict[str, str]:
    """The digests of the evaluation files a record's rows come from (stored in the record)."""
    names = sorted({n for pair in _row_files(rec).values() for n in pair})
    return {n: _digest(folder / n) for n in names}


def stale(folder: Path, rec: dict[str, Any]) -> list[str]:
    """The evaluation files that changed (or went missing) since the record was built from them
    (by their digests where the record stored them, else by the accuracies in its rows), and
    those saved under other numerics than the baseline. A stale record is rebuilt by the next
    run with the model; the page says which ones are stale."""
    out, numerics, read = [], {}, {}
    for row, (b, t) in _row_files(rec).items():
        for name, field in ((b, "baseline"), (t, "treated")):
            path = folder / name
            if not path.exists():
                out.append(f"{name} (missing)")
                continue
            if name not in read:  # a baseline serves several rows: read and hash it once
                data = path.read_bytes()
                read[name] = (json.loads(data), hashlib.sha256(data).hexdigest()[:16])
            saved, digest = read[name]
            numerics[name] = saved.get("info", {}).get("numerics")
            if "sources" in rec:
                if rec["sources"].get(name) != digest:
                    out.append(name)
            elif abs(saved["accuracy"] - rec["rows"][row][field]) > 1e-9:
                out.append(name)
    # a delta is read between two runs of one setting: the baseline's
    base = numerics.get(f"{rec['task']}_baseline.json")
    out += [f"{n} (other numerics than the baseline)" for n, v in numerics.items() if v != base]
    return sorted(set(out))


def _reuse(path: Path, fresh: bool) -> dict[str, Any] | None:
    """The record at ``path`` unless absent, ``fresh``, or built from evaluations since changed."""
    if fresh or not path.exists():
        return None
    rec = json.loads(path.read_text())
    if not (changed := stale(path.parent, rec)):
        return rec
    print(f"{path.name} no longer matches its evaluation files ({', '.join(changed)}); "
          "rebuilding it", flush=True)  # fmt: skip
    return None


def run_draw(run: Runner, task: str, draw: int) -> dict[str, Any]:
    """One task, one calibration draw: search, ACT, random set, CC, CC + ACT -> rows."""
    out = run.out / f"study_{task}{_suffix(draw)}.json"
    if (rec := _reuse(out, run.args.fresh)) is not None:
        return rec
    hs = run.head_set(f"{task}{_suffix(draw)}", (task,), run.args.calib, seed=draw)
    m = run.model.cfg
    base = run.evaluation(task, "baseline")
    # an empty set edits nothing: its run is the baseline's (same examples, same batches)
    act = run.evaluation(task, f"act{_suffix(draw)}", ActConfig(hs)) if len(hs) else base
    rnd_set = random_head_set(hs, m.n_layers, m.n_heads, seed=draw)
    rnd = run.evaluation(task, f"random{_suffix(draw)}", ActConfig(rnd_set)) if len(hs) else base
    cc = run.cc(task, base, None)
    rows = {
        "act": _row(base, act) | {"heads": len(hs)},
        "random": _row(base, rnd) | {"heads": len(rnd_set)},
        "cc": _row(base, cc),
        "cc+act": _row(base, run.cc(task, act, ActConfig(hs))),
        "act_vs_cc": _row(cc, act),
    }
    record = {
        "task": task, "draw": draw, "heads": [f"{la}.{h}" for la, h in hs],
        "decision": hs.provenance.get("decision"), "search_s": hs.provenance.get("search_s"),
        "rows": rows,
    }  # fmt: skip
    record["sources"] = _sources(run.out, record)
    out.write_text(json.dumps(record, indent=1))
    print(
        f"[{run.out.name} {task} d{draw}] {len(hs)} heads, ACT {100 * rows['act']['delta']:+.1f}",
        flush=True,
    )
    return record


def run_methods(run: Runner, task: str) -> None:
    """ZeroTuning (sup./unsup.) and ACT + ZeroTuning on draw 0, via compare_methods.py."""
    from compare_methods import MethodRunner, compare_task

    mrun = MethodRunner(run.args, run.model)
    if (run.out / f"methods_{task}.json").exists() and not run.args.fresh:
        return
    act = HeadSet.load(run.out / f"head_set_{task}.json", model=run.model)
    zs = [mrun.zt_set(task, (task,), run.args.calib, 0, supervised=s) for s in (True, False)]
    (run.out / f"methods_{task}.json").write_text(
        json.dumps(compare_task(mrun, task, act, *zs), indent=1)
    )


def run_mc(run: Runner, task: str) -> dict[str, Any]:
    """One multiple-choice task with the MC set (one search over the MC training splits): the
    letters as the paper scores them (baseline, ACT, random set, CC, CC + ACT, the content-blind
    guess at each letter rate) and, unless ``--mc-scoring letters``, the full continuations
    (lm-eval's acc and acc_norm; each option's text is scored: about four forwards an example)."""
    out = run.out / f"mc_study_{task}.json"
    full = run.args.mc_scoring == "both"
    if (rec := _reuse(out, run.args.fresh)) is not None and (not full or "act_full" in rec["rows"]):
        return rec
    per_task = max(2, run.args.calib // len(MC_TRAIN))
    hs = run.head_set("mc", MC_TRAIN, per_task, seed=0)
    m = run.model.cfg
    rnd_set = random_head_set(hs, m.n_layers, m.n_heads, seed=0)
    rows: dict[str, Any] = {}
    for scoring, tag in (("first_token", ""), ("full", "_full"))[: 2 if full else 1]:
        kw = {"scoring": scoring}
        base = run.evaluation(task, f"baseline{tag}", **kw)
        act = run.evaluation(task, f"act{tag}", ActConfig(hs), **kw) if len(hs) else base
        rnd = run.evaluation(task, f"random{tag}", ActConfig(rnd_set), **kw) if len(hs) else base
        rows[f"act{tag}"] = _row(base, act) | {"heads": len(hs)}
        rows[f"random{tag}"] = _row(base, rnd) | {"heads": len(rnd_set)}
        if scoring == "full":
            rows["norm_full"] = {k: r.accuracy_norm for k, r in
                                 (("baseline", base), ("act", act), ("random", rnd))}  # fmt: skip
            continue
        cc = run.cc(task, base, None)
        rows["cc"] = _row(base, cc)
        rows["cc+act"] = _row(base, run.cc(task, act, ActConfig(hs)))
        rows["act_vs_cc"] = _row(cc, act)
        rows["blind"] = {"baseline": content_blind(base), "act": content_blind(act)}
    record = {"task": task, "heads": [f"{la}.{h}" for la, h in hs], "rows": rows,
              "decision": hs.provenance.get("decision")}  # fmt: skip
    record["sources"] = _sources(run.out, record)
    out.write_text(json.dumps(record, indent=1))
    a, f = rows["act"], rows.get("act_full")
    print(f"[{run.out.name} {task}] {len(hs)} heads, ACT {_pts(a['delta'])} (letters), "
          f"{_pts(f['delta']) if f else 'not run'} (full)", flush=True)  # fmt: skip
    return record


def _args(a: argparse.Namespace, model: str, calib: int, out: Path) -> SimpleNamespace:
    """What reproduce_paper.Runner (and compare_methods.MethodRunner) read."""
    return SimpleNamespace(
        data_dir=a.data_dir, model=model, prompts="paper", limit=a.limit, calib=calib,
        screen=a.screen, precision=a.precision, workers=a.workers, confidence=a.confidence,
        layers=a.layers, batch_size=a.batch_size, fresh=a.fresh, out=str(out), act_from=str(out),
        command=a.command, kshot_tasks=a.kshot_tasks, shots=a.shots, seeds=a.seeds,
        kshot_search=a.kshot_search, mc_scoring=a.mc_scoring,
    )  # fmt: skip


# --- the page --------------------------------------------------------------------------------


def _jaccard(sets: list[set[str]]) -> float | None:
    pairs = [(a, b) for a, b in itertools.combinations(sets, 2) if a or b]
    if not pairs:
        return None
    return sum(len(a & b) / len(a | b) for a, b in pairs) / len(pairs)


def summarize(folder: Path) -> list[dict[str, Any]]:
    """Per task of one ``<model>_c<calib>`` folder: every draw's rows and the spread."""
    tasks = []
    for task in CLS:
        draws = sorted(folder.glob(f"study_{task}.json")) + sorted(
            folder.glob(f"study_{task}_d*.json")
        )
        if not draws:
            continue
        recs = [json.loads(p.read_text()) for p in draws]
        deltas = [r["rows"]["act"]["delta"] for r in recs]
        methods = folder / f"methods_{task}.json"
        tasks.append({
            "task": task, "draws": recs, "deltas": deltas, "mean": sum(deltas) / len(deltas),
            "overlap": _jaccard([set(r["heads"]) for r in recs]),
            "methods": json.loads(methods.read_text())["rows"] if methods.exists() else None,
        })  # fmt: skip
    return tasks


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _ci(r: dict[str, Any]) -> str:
    lo, hi = r["interval"]
    return f"{_pts(r['delta'])} [{_pts(lo)}, {_pts(hi)}]"


def _table(tasks: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| task | n | base | ACT, draw 0: delta [95% CI], p | heads per draw | mean delta over draws (min..max) | overlap | random | CC | CC+ACT | ACT vs CC |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tasks:
        r0 = t["draws"][0]["rows"]
        a = r0["act"]
        heads = ", ".join(str(len(d["heads"])) for d in t["draws"])
        ov = "-" if t["overlap"] is None else f"{t['overlap']:.2f}"
        lines.append(
            f"| {t['task']} | {a['n']} | {100 * a['baseline']:.1f} | {_ci(a)}, p={a['p_value']:.2g} | {heads} | "
            f"{_pts(t['mean'])} ({_pts(min(t['deltas']))}..{_pts(max(t['deltas']))}) | {ov} | "
            f"{_pts(r0['random']['delta'])} | {_pts(r0['cc']['delta'])} | {_pts(r0['cc+act']['delta'])} | "
            f"{_pts(r0['act_vs_cc']['delta'])} |"
        )
    d0 = [t["draws"][0]["rows"]["act"] for t in tasks]
    means = [t["mean"] for t in tasks]
    sig = sum(a["p_value"] < 0.05 and a["delta"] > 0 for a in d0)
    vs_cc = [t["draws"][0]["rows"]["act_vs_cc"]["delta"] for t in tasks]
    lines += [
        "",
        f"Draw 0: mean ACT delta {_pts(sum(a['delta'] for a in d0) / len(d0))} points over "
        f"{len(d0)} tasks, significant gains (p < 0.05) on {sig} of {len(d0)}, worst task "
        f"{_pts(min(a['delta'] for a in d0))}, mean ACT vs CC {_pts(sum(vs_cc) / len(vs_cc))}. "
        f"Over all draws: mean {_pts(sum(means) / len(means))}, worst single draw "
        f"{_pts(min(min(t['deltas']) for t in tasks))}. Per draw (tasks with that draw): "
        + "; ".join(_draw_summary(tasks, d) for d in range(max(len(t["draws"]) for t in tasks)))
        + ".",
        "",
    ]
    return lines


def _draw_summary(tasks: list[dict[str, Any]], draw: int) -> str:
    acts = [t["draws"][draw]["rows"]["act"] for t in tasks if len(t["draws"]) > draw]
    sig = sum(a["p_value"] < 0.05 and a["delta"] > 0 for a in acts)
    mean = sum(a["delta"] for a in acts) / len(acts)
    return f"draw {draw} mean {_pts(mean)}, {sig} of {len(acts)} significant, worst {_pts(min(a['delta'] for a in acts))}"


def _methods_table(tasks: list[dict[str, Any]]) -> list[str]:
    rows = [t for t in tasks if t["methods"]]
    if not rows:
        return []
    names = ("cc", "act", "zt_sup", "zt_unsup", "act+zt")
    lines = ["| task | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for t in rows:
        lines.append(f"| {t['task']} | " + " | ".join(_ci(t["methods"][n]) for n in names) + " |")
    lines.append(f"| mean of {len(rows)} | " + " | ".join(
        _pts(sum(t["methods"][n]["delta"] for t in rows) / len(rows)) for n in names) + " |")  # fmt: skip
    shares = {n: [t["methods"][n].get("cc_share") for t in rows] for n in names[1:]}
    lines += ["", "Share of the examples each method fixes that CC also gets right (mean over the "
              "tasks where it fixes any): " + "; ".join(
                  f"{n} {100 * sum(v) / len(v):.0f}% ({len(v)} tasks)"
                  for n, v in ((n, [x for x in xs if x is not None]) for n, xs in shares.items()) if v)]  # fmt: skip
    return lines + [""]


def _kshot_table(folder: Path) -> list[str]:
    files = sorted(folder.glob("kshot_*.json"))
    if not files:
        return []
    recs = [json.loads(f.read_text()) for f in files]
    searched = any("delta_k" in d["summary"] for d in recs)
    lines = [
        "k-shot: prompts with k demonstrations from the training split; mean over the "
        "demonstration seeds (min..max). ACT is draw 0's set searched on zero-shot prompts"
        + (", ACT (k-shot search) a set searched on k-shot calibration prompts (draw 0)."
           if searched else "."),
        "",
        "| task | k | seeds | baseline | ACT | delta | CC | CC + ACT |"
        + (" heads zero-shot / k-shot | ACT (k-shot search) | delta | CC + ACT (k-shot search) |"
           if searched else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|---|---|---|" if searched else ""),
    ]  # fmt: skip
    for d in recs:
        s = d["summary"]
        cells = [_seed_cell(s[k], k == "delta") for k in
                 ("baseline", "treated", "delta", "cc", "cc+act")]  # fmt: skip
        if searched:
            heads = d.get("heads", {})
            cells.append(f"{heads.get('act', '?')} / {heads.get('act_k', '-')}")
            cells += [_seed_cell(s[k], k == "delta_k") if k in s else "-"
                      for k in ("treated_k", "delta_k", "cc+act_k")]  # fmt: skip
        lines.append(
            f"| {d['task']} | {d['shots']} | {len(d['per_seed'])} | " + " | ".join(cells) + " |"
        )
    return lines + [""]


def _mc_table(folder: Path) -> list[str]:
    files = [folder / f"mc_study_{t}.json" for t in MC if (folder / f"mc_study_{t}.json").exists()]
    if not files:
        return []
    recs = [json.loads(f.read_text()) for f in files]
    lines = [
        f"Multiple choice: one set searched on the {len(MC_TRAIN)} MC training splits (option "
        f"letters, {len(recs[0]['heads'])} heads; the search's decision: "
        f"{(recs[0].get('decision') or {}).get('reason', '?')}), every MC eval split. Letters: the paper's "
        "scoring (next-token log-prob of the option letter), with the content-blind guess (answer "
        "with each letter at the rate the model uses it: what the letter bias alone scores). Full: "
        "log-likelihood of each option's text (lm-eval's acc, and acc_norm per byte).",
        "",
        "| task | n | base (letters) | ACT delta [95% CI], p | random | CC | CC+ACT | content-blind base / ACT | base full (norm) | ACT full delta (norm) | random full |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in recs:
        w = r["rows"]
        a, bl = w["act"], w["blind"]
        if "act_full" in w:
            f, nf = w["act_full"], w["norm_full"]
            full = (f"{100 * f['baseline']:.1f} ({100 * nf['baseline']:.1f}) | {_ci(f)} "
                    f"({_pts(nf['act'] - nf['baseline'])}) | {_pts(w['random_full']['delta'])}")  # fmt: skip
        else:  # run with --mc-scoring letters
            full = "not run | not run | not run"
        lines.append(
            f"| {r['task']} | {a['n']} | {100 * a['baseline']:.1f} | {_ci(a)}, p={a['p_value']:.2g} | "
            f"{_pts(w['random']['delta'])} | {_pts(w['cc']['delta'])} | {_pts(w['cc+act']['delta'])} | "
            f"{100 * bl['baseline']:.1f} / {100 * bl['act']:.1f} | {full} |"
        )
    mean = {k: sum(r["rows"][k]["delta"] for r in recs) / len(recs) for k in ("act", "cc")}
    fulls = [r["rows"]["act_full"]["delta"] for r in recs if "act_full" in r["rows"]]
    sig = sum(r["rows"]["act"]["p_value"] < 0.05 and r["rows"]["act"]["delta"] > 0 for r in recs)
    full_mean = (f"{_pts(sum(fulls) / len(fulls))} (full continuations"
                 f"{'' if len(fulls) == len(recs) else f', {len(fulls)} tasks'})" if fulls else
                 "full continuations not run")  # fmt: skip
    lines += ["", f"Mean over {len(recs)} tasks: ACT {_pts(mean['act'])} (letters; significant gains "
              f"on {sig}), {full_mean}; CC {_pts(mean['cc'])}.", ""]  # fmt: skip
    return lines


def _seed_cell(s: dict[str, Any], signed: bool) -> str:
    fmt = _pts if signed else (lambda x: f"{100 * x:.1f}")
    return f"{fmt(s['mean'])} ({fmt(s['min'])}..{fmt(s['max'])})"


def forest_plot(tasks: list[dict[str, Any]], path: Path, title: str) -> None:
    """Delta with its 95% interval per task: ACT (draw 0, black), CC and the random set (grey),
    every draw's ACT delta as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.55 * len(tasks) + 1.2))
    for i, t in enumerate(tasks):
        y = len(tasks) - i
        rows = t["draws"][0]["rows"]
        for off, key, color in (
            (0.2, "act", "black"),
            (0.0, "cc", "0.55"),
            (-0.2, "random", "0.75"),
        ):
            r = rows[key]
            lo, hi = r["interval"]
            ax.plot([100 * lo, 100 * hi], [y + off] * 2, color=color, lw=2)
            ax.plot([100 * r["delta"]], [y + off], "o", color=color, ms=5,
                    label=key.upper() if i == 0 else None)  # fmt: skip
        ax.plot([100 * d for d in t["deltas"]], [y + 0.3] * len(t["deltas"]), "|", color="tab:red",
                ms=9, label="ACT, each draw" if i == 0 else None)  # fmt: skip
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(range(len(tasks), 0, -1), [t["task"] for t in tasks])
    ax.set_xlabel("held-out accuracy delta (points), 95% interval")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _link(fig: Path, page: Path) -> str:
    """``fig`` as the page links it: through the docs' ``figures`` link to the repository's
    figures/ when it lies there (the site copies only what is under docs/), else relative."""
    fig, docs = fig.resolve(), page.parent.resolve()
    shared = (docs / "figures").resolve()
    if fig.is_relative_to(shared):
        return f"figures/{fig.relative_to(shared).as_posix()}"
    return os.path.relpath(fig, docs)


def result_files(out: Path) -> dict[str, int]:
    """The study's result files (in its per-model folders; not checkpoints) -> modification time."""
    return {str(p): p.stat().st_mtime_ns for p in out.glob("*/**/*")
            if p.is_file() and p.suffix != ".ckpt"}  # fmt: skip


def record_command(out: Path, command: str, before: dict[str, int] | None = None) -> None:
    """Add ``command`` to ``<out>/command.txt``, the commands that wrote the folder's files; with
    ``before`` (:func:`result_files` at the start) only once it has written or rewritten one."""
    if command in commands(out) or (before is not None and result_files(out) == before):
        return
    with open(out / "command.txt", "a") as f:
        f.write(command + "\n")


def commands(out: Path) -> list[str]:
    path = out / "command.txt"
    return [c for c in path.read_text().splitlines() if c.strip()] if path.exists() else []


def write_page(out: Path, page: Path, commands: list[str]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO).stdout.strip() or "?"  # fmt: skip
    lines = [
        "# Evidence: every task, every draw",
        "",
        "Generated by `analyses/study.py` from the files in "
        f"`{out.relative_to(REPO) if out.is_relative_to(REPO) else out}` (commit {commit}, "
        f"{platform.machine()}, {platform.python_version()}); rerun the study to refresh it. "
        "Commands that wrote these files, in order: " + "; ".join(f"`{c}`" for c in commands) + ".",
        "",
        "Each row: the task's own search at the library's defaults of the time (paper prompts, class-balanced "
        "ranking prompts, validation prompts with the task's label mix, joint selection by paired "
        "validation accuracy with its exact 90% lower bound), then the same fixed eval examples "
        "for every method. A draw is another calibration sample (seed); draw 0's interval is the "
        "paired bootstrap 95% interval, p the exact McNemar test. Overlap: mean pairwise Jaccard "
        "index of the selected sets over draws (pairs where both are empty left out).",
        "",
    ]
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        tasks = summarize(folder)
        mc = _mc_table(folder)
        if not tasks and not mc:
            continue
        model, _, calib = folder.name.rpartition("_c")
        lines += [f"## {model}, {calib} calibration prompts per task", "", _how(folder), ""]
        lines += _stale_lines(folder)
        if tasks:
            lines += _table(tasks)
            fig = out / f"forest_{folder.name}.png"
            forest_plot(tasks, fig, f"{model}, {calib} calibration prompts")
            lines += [f"![forest plot {folder.name}]({_link(fig, page)})", ""]
        methods = _methods_table(tasks)
        if methods:
            lines += ["Methods on equal terms (draw 0): delta [95% CI] vs baseline.", ""] + methods
        lines += _kshot_table(folder)
        lines += mc
    text = "\n".join(lines)
    page.write_text(text)
    return text


def _stale_lines(folder: Path) -> list[str]:
    """A warning (on the page and on stderr) for every record whose evaluations changed since."""
    found = {}
    for path in sorted(folder.glob("study_*.json")) + sorted(folder.glob("mc_study_*.json")):
        if changed := stale(folder, json.loads(path.read_text())):
            found[path.name] = changed
    if not found:
        return []
    text = ("**Stale:** " + "; ".join(f"`{n}`: {', '.join(c)}" for n, c in found.items())
            + ". These summaries no longer match their evaluation files, and their rows below "
            "may be wrong; rerun the study's command with the model to rebuild them.")  # fmt: skip
    print(f"{folder.name}: {text}", file=sys.stderr)
    return [text, ""]


def _how(folder: Path) -> str:
    """How the folder's sets were searched, from their provenance (defaults change over time)."""
    screens, precisions = set(), set()
    for path in folder.glob("head_set_*.json"):
        prov = json.loads(path.read_text()).get("provenance", {})
        if prov.get("method") != "act_lens.search_heads":
            continue  # ZeroTuning's sets
        screens.add(str(prov.get("search", {}).get("screen", "?")))
        precisions.add(str(prov.get("precision", "?")))
    return (f"Searches: screen {', '.join(sorted(screens))} heads exact, "
            f"{', '.join(sorted(precisions))} (from the sets' provenance). "
            + _numerics_line(folder))  # fmt: skip


def _numerics_line(folder: Path) -> str:
    """The numerics the folder's evaluations recorded (a delta is only read between two runs of
    one setting: the scripts evaluate again a result saved under another)."""
    seen: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.json")):
        d = json.loads(path.read_text())
        if not (isinstance(d, dict) and str(d.get("format", "")).startswith("act_lens.EvalResult")):
            continue
        rec = d.get("info", {}).get("numerics")
        key = ("unrecorded" if rec is None else
               f"{rec['precision']}, {rec['threads']} thread(s) per forward, batch {rec['batch_size']}"
               f", kernels {rec.get('kernels', 'unrecorded')}")  # fmt: skip
        seen.setdefault(key, []).append(path.stem)
    if not seen:
        return ""
    parts, tasks = [], sorted(CLS + MC, key=len, reverse=True)
    for i, (key, stems) in enumerate(sorted(seen.items(), key=lambda kv: -len(kv[1]))):
        if i == 0:  # the main setting: a count; the others: which runs, by kind
            parts.append(f"{key} ({len(stems)} runs)")
            continue
        kinds = sorted({next((st[len(t) + 1:] for t in tasks if st.startswith(t + "_")), st)
                        for st in stems})  # fmt: skip
        parts.append(f"{key} ({len(stems)} runs: {', '.join(kinds)}; not read where a delta is "
                     "taken against a recorded run)" if key == "unrecorded" else
                     f"{key} ({len(stems)} runs: {', '.join(kinds)})")  # fmt: skip
    return "Evaluations: " + "; ".join(parts) + "."


def _kshot_done(folder: Path, task: str, searched: bool) -> bool:
    path = folder / f"kshot_{task}.json"
    return path.exists() and (not searched or "delta_k" in json.loads(path.read_text())["summary"])


def run_model(
    a: argparse.Namespace,
    model: Any,
    name: str,
    sizes: list[int],
    methods: list[str],
    tasks: list[str],
) -> None:
    """Every calibration size, draw and task of one model; the page after every folder."""
    out = Path(a.out)
    for calib in sizes:
        folder = out / f"{name}_c{calib}"
        folder.mkdir(parents=True, exist_ok=True)
        run = Runner(_args(a, name, calib, folder), model)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        for draw, task in itertools.product(range(a.draws), tasks):
            run_draw(run, task, draw)
        if "zt" in methods:
            for task in tasks:
                run_methods(run, task)
        # draw 0's zero-shot sets (and with --kshot-search k-shot sets) on k-shot prompts
        run.args.kshot_tasks = tuple(
            t for t in a.kshot_tasks if a.fresh or not _kshot_done(folder, t, a.kshot_search)
        )
        if run.args.kshot_tasks:
            part_kshot(run)  # type: ignore[arg-type]
        for task in a.mc_tasks:
            run_mc(run, task)
        print(f"{folder.name}: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
        record_command(out, a.command, a.before)
        write_page(out, Path(a.page), commands(out))  # after every folder: a partial page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_flags(parser)
    parser.add_argument("--models", default="smollm2-135m")
    parser.add_argument("--tasks", default=",".join(CLS))
    parser.add_argument("--methods", default="act", help=f"comma list of {', '.join(METHODS)}")
    parser.add_argument(
        "--calib-sizes",
        default="128",
        help="calibration prompts per task (half rank, half validate)",
    )
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument(
        "--kshot-tasks", default="", help="comma list: draw 0's set on k-shot prompts"
    )
    parser.add_argument(
        "--kshot-search", action="store_true",
        help="also search each --kshot-tasks set on k-shot calibration prompts (draw 0)",
    )  # fmt: skip
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument(
        "--seeds", type=int, default=3, help="demonstration seeds for --kshot-tasks"
    )
    parser.add_argument(
        "--mc-tasks",
        default="",
        help=f"comma list of multiple-choice tasks, or 'all' ({','.join(MC)})",
    )
    parser.add_argument(
        "--mc-scoring", choices=("both", "letters"), default="both",
        help="letters: score --mc-tasks by option letters only, without the full continuations "
        "(each option's text: about four forwards an example)",
    )  # fmt: skip
    parser.add_argument("--out", default=str(REPO / "figures" / "study"))
    parser.add_argument("--page", default=str(REPO / "docs" / "evidence.md"))
    parser.add_argument("--page-only", action="store_true", help="only regenerate the page")
    a = parser.parse_args(argv)
    a.command = "python analyses/study.py " + " ".join(argv if argv is not None else sys.argv[1:])
    tasks = list(task_list(parser, "--tasks", a.tasks, CLS, "classification"))
    a.kshot_tasks = tuple(t for t in a.kshot_tasks.split(",") if t)
    if set(a.kshot_tasks) - set(tasks):
        parser.error("--kshot-tasks must be among --tasks (their zero-shot sets are applied)")
    a.mc_tasks = task_list(
        parser, "--mc-tasks", ",".join(MC) if a.mc_tasks == "all" else a.mc_tasks, MC,
        "multiple-choice",
    )  # fmt: skip
    methods = [m for m in a.methods.split(",") if m]
    try:
        sizes = [int(s) for s in a.calib_sizes.split(",") if s]
    except ValueError:
        parser.error(f"--calib-sizes: comma list of integers, got {a.calib_sizes!r}")
    if set(methods) - set(METHODS) or "act" not in methods:
        parser.error(f"--methods: comma list of {', '.join(METHODS)}, including act")
    if a.draws < 1 or not sizes or min(sizes) < 4:
        parser.error("--draws must be >= 1 and every --calib-sizes value >= 4")
    out, page = Path(a.out), Path(a.page)
    if not a.page_only:
        if not Path(a.data_dir).is_dir():
            parser.error(f"data directory {a.data_dir} not found; pass --data-dir")
        out.mkdir(parents=True, exist_ok=True)
        a.before = result_files(out)  # listed in command.txt once it has written a result
        try:
            for name in (m for m in a.models.split(",") if m):
                model = load_model(name)
                with pool_scope(model, pool_size(a.workers)):  # one set of workers per model
                    run_model(a, model, name, sizes, methods, tasks)
        finally:  # also when interrupted: the results it did write are its
            record_command(out, a.command, a.before)

    if not out.is_dir():
        parser.error(f"{out} does not exist: run the study first")
    print(write_page(out, page, commands(out) or [a.command]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
