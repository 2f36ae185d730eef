"""bf16 autocast vs fp32, side by side: speed and fidelity of the forward, the engine and the screen.

    python benchmarks/bench_precision.py [--prompts 24] [--layers 2-6] [--threads 1]

On the bundled SmolLM2-135M with SST-2 (``--data-dir``) or the built-in ``reviews`` prompts:
a batched forward (speed, largest log-prob difference over the vocabulary, and over the label
words after their log-softmax), ``head_effects`` (speed, Spearman correlation of the per-head
``choice_logprob`` effects, overlap of the top 15) and ``screen_heads`` (speed, Spearman).
What bf16 does to the *chosen sets and their held-out accuracy* is measured by
``analyses/search_study.py`` (its precision table). A third arm, ``bf16 weights``, runs the same
steps on the model loaded with ``load_model(..., dtype=torch.bfloat16)`` (no casts at all: every
activation, norm and residual in bf16; not a ``precision`` of the library, measured here to show
what autocast's casts cost and what full bf16 does to the rankings).
Result: ``benchmarks/results/precision.json``.
"""

import argparse
import time
from pathlib import Path

import torch
from _common import write_result

from act_lens import load_model
from act_lens.analysis.ablation import head_effects
from act_lens.analysis.calibration_set import calibration_mix
from act_lens.analysis.screening import screen_heads
from act_lens.evaluation.batching import encode
from act_lens.evaluation.scoring import first_token_ids, last_token_logprobs
from act_lens.runtime.options import RunOptions
from act_lens.runtime.precision import bf16_supported, precision_context

REPO = Path(__file__).resolve().parents[1]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().float(), b.argsort().argsort().float()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--layers", default="2-6")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    a, b = (int(x) for x in args.layers.split("-"))
    layers = list(range(a, b + 1))
    model = load_model("smollm2-135m")
    task = "sst2" if Path(args.data_dir, "sst2").exists() else "reviews"
    prompts = calibration_mix([task], args.prompts, data=args.data_dir)
    tokens = encode(model.tokenizer, [p.text for p in prompts])
    out: dict = {"task": task, "prompts": len(prompts), "layers": layers,
                 "threads": args.threads, "bf16_native": bf16_supported()}  # fmt: skip
    res = {}
    native = load_model("smollm2-135m", dtype=torch.bfloat16)
    for arm, precision, m in (("fp32", "fp32", model), ("bf16", "bf16", model),
                              ("bf16_weights", "bf16", native)):  # fmt: skip
        with precision_context(precision, m):
            last_token_logprobs(m, tokens[:4])  # warm-up
            lp, t_fwd = timed(lambda m=m: last_token_logprobs(m, tokens).float())
            eff, t_eff = timed(
                lambda m=m: head_effects(m, prompts, layers=layers, run=RunOptions(progress=False))
            )
        est, t_scr = timed(
            lambda p=precision, m=m: screen_heads(
                m, prompts, layers=layers, run=RunOptions(precision=p)
            )
        )
        res[arm] = {"lp": lp, "eff": eff, "est": est, "t": (t_fwd, t_eff, t_scr)}
    f, h = res["fp32"], res["bf16"]
    choices = torch.tensor(first_token_ids(model.tokenizer, prompts[0].choices))
    lab32 = torch.log_softmax(f["lp"][:, choices], -1)
    lab16 = torch.log_softmax(h["lp"][:, choices], -1)
    e32 = f["eff"].effects["choice_logprob"].flatten()
    e16 = h["eff"].effects["choice_logprob"].flatten()
    top32 = set(torch.argsort(e32, descending=True)[:15].tolist())
    top16 = set(torch.argsort(e16, descending=True)[:15].tolist())
    out.update(
        forward_speedup=f["t"][0] / h["t"][0],
        engine_speedup=f["t"][1] / h["t"][1],
        screen_speedup=f["t"][2] / h["t"][2],
        seconds_fp32={"forward": f["t"][0], "engine": f["t"][1], "screen": f["t"][2]},
        seconds_bf16={"forward": h["t"][0], "engine": h["t"][1], "screen": h["t"][2]},
        max_logprob_diff_vocab=float((f["lp"] - h["lp"]).abs().max()),
        max_logprob_diff_labels=float((lab32 - lab16).abs().max()),
        spearman_effects=spearman(e32, e16),
        top15_overlap=len(top32 & top16),
        spearman_screen=spearman(f["est"].flatten(), h["est"].flatten()),
    )
    w = res["bf16_weights"]
    ew = w["eff"].effects["choice_logprob"].flatten().float()
    topw = set(torch.argsort(ew, descending=True)[:15].tolist())
    labw = torch.log_softmax(w["lp"][:, choices], -1)
    out["bf16_weights"] = {
        "forward_speedup_vs_fp32": f["t"][0] / w["t"][0],
        "forward_speedup_vs_autocast": h["t"][0] / w["t"][0],
        "engine_speedup_vs_fp32": f["t"][1] / w["t"][1],
        "engine_speedup_vs_autocast": h["t"][1] / w["t"][1],
        "screen_speedup_vs_autocast": h["t"][2] / w["t"][2],
        "seconds": {"forward": w["t"][0], "engine": w["t"][1], "screen": w["t"][2]},
        "max_logprob_diff_vocab": float((f["lp"] - w["lp"]).abs().max()),
        "max_logprob_diff_labels": float((lab32 - labw).abs().max()),
        "spearman_effects": spearman(e32, ew),
        "top15_overlap": len(top32 & topw),
        "spearman_screen": spearman(f["est"].flatten(), w["est"].flatten().float()),
    }
    # Pairs whose ablated value is exactly the clean one: heads without a hidden sink in the
    # prompt (the engine stops them after their layer) and, in bf16, edits rounded away by
    # the last layer (computed in full).
    out["share_of_pairs_at_clean_value"] = {
        arm: float((r["eff"].per_example["choice_logprob"]
                    == r["eff"].baseline["choice_logprob"][None, None, :]).float().mean())
        for arm, r in res.items()
    }  # fmt: skip
    out["command"] = "cd benchmarks && python bench_precision.py"
    write_result("precision", out)


if __name__ == "__main__":
    main()
