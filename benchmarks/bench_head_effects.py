"""Per-head ablation engine vs the naive loop, and ACT screening vs the exact engine.

Runs on the bundled SmolLM2-135M (30 layers x 9 heads = 270 heads), side by side in one run:

1. ``head_effects`` (the engine) on every head of ``--layers``;
2. ``head_effects_naive`` (one full forward per head per prompt) on ``--naive-layers``
   (default: the same layers), and the largest difference of the effects per metric;
3. ``screen_heads`` (first-order ACT estimate), its cost against the exact engine, and its
   agreement: Spearman correlation over all heads and overlap of the top-k helpful heads.

Prompts are zero-shot prompts of the built-in ``reviews`` task (train split; no data needed),
or of SST-2 with ``--data-dir``. Numbers go to ``benchmarks/results/head_effects.json``.

Usage:
    python benchmarks/bench_head_effects.py --prompts 16 --layers all
    python benchmarks/bench_head_effects.py --naive-layers 0,14,29     # naive on 3 layers only
    python benchmarks/bench_head_effects.py --skip-naive               # engine + screening only
"""

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from act_lens import load_model
from act_lens.analysis.ablation import head_effects, head_effects_naive
from act_lens.analysis.effects import METRICS
from act_lens.analysis.search import calibration_mix, screen_heads
from act_lens.core.settings import SinkSettings
from act_lens.runtime.options import RunOptions

RESULTS = Path(__file__).resolve().parent / "results" / "head_effects.json"


def parse_layers(text: str, n_layers: int) -> list[int]:
    """``all``, ``a-b`` (inclusive) or ``0,3,7``."""
    if text == "all":
        return list(range(n_layers))
    if "-" in text and "," not in text:
        lo, hi = (int(x) for x in text.split("-"))
        return list(range(lo, hi + 1))
    return sorted({int(x) for x in text.split(",")})


def ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 0..n-1 (ties are broken by order: effects are continuous, ties do not occur)."""
    out = torch.empty_like(x, dtype=torch.float64)
    out[torch.argsort(x)] = torch.arange(len(x), dtype=torch.float64)
    return out


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = ranks(a.flatten()), ranks(b.flatten())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def top_k(values: torch.Tensor, layers: list[int], k: int) -> list[tuple[int, int]]:
    n_heads = values.shape[1]
    order = torch.argsort(values.flatten(), descending=True)[:k].tolist()
    return [(layers[i // n_heads], i % n_heads) for i in order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--layers", default="all", help="engine layers: all, a-b or 0,3,7")
    parser.add_argument(
        "--naive-layers", default=None, help="naive-loop layers (default: --layers)"
    )
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--data-dir", default=None, help="use SST-2 from this data directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_model("smollm2-135m")
    n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
    layers = parse_layers(args.layers, n_layers)
    naive_layers = (
        layers if args.naive_layers is None else parse_layers(args.naive_layers, n_layers)
    )
    task = "sst2" if args.data_dir else "reviews"
    prompts = calibration_mix([task], args.prompts, data=args.data_dir, seed=args.seed)
    lengths = [len(model.tokenizer(p.text).input_ids) for p in prompts]
    print(
        f"model smollm2-135m: {n_layers} layers x {n_heads} heads; {len(prompts)} {task} prompts, "
        f"{min(lengths)}-{max(lengths)} tokens; torch threads {torch.get_num_threads()}"
    )
    settings = SinkSettings(beta=0.4, threshold=0.1)
    common = dict(strategy="act", settings=settings)
    quiet = RunOptions(batch_size=args.batch_size, progress=False)

    # Warm-up (first-call allocations and the pattern-edit self-check) outside the timings.
    head_effects(model, prompts[:2], layers=[n_layers - 1], run=RunOptions(2, False), **common)

    t0 = time.perf_counter()
    eng = head_effects(model, prompts, layers=layers, run=quiet, **common)
    t_engine = time.perf_counter() - t0
    n_engine = len(layers) * n_heads
    print(
        f"engine: {n_engine} heads x {len(prompts)} prompts in {t_engine:.1f} s "
        f"({1e3 * t_engine / n_engine:.1f} ms/head)"
    )
    result: dict = {
        "model": "smollm2-135m",
        "task": task,
        "n_prompts": len(prompts),
        "prompt_tokens": [min(lengths), max(lengths)],
        "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "engine": {"layers": layers, "n_heads": n_engine, "seconds": t_engine},
    }

    if not args.skip_naive:
        t0 = time.perf_counter()
        naive = head_effects_naive(model, prompts, layers=naive_layers, progress=False, **common)
        t_naive = time.perf_counter() - t0
        n_naive = len(naive_layers) * n_heads
        rows = [layers.index(layer) for layer in naive_layers]
        diffs = {m: float((eng.effects[m][rows] - naive.effects[m]).abs().max()) for m in METRICS}
        per_example = {
            m: float((eng.per_example[m][rows] - naive.per_example[m]).abs().max()) for m in METRICS
        }
        # Per-head time is the fair comparison when the naive loop covers fewer layers.
        ratio = (t_naive / n_naive) / (t_engine / n_engine)
        same = "same heads" if naive_layers == layers else f"naive on layers {naive_layers} only"
        print(
            f"naive : {n_naive} heads x {len(prompts)} prompts in {t_naive:.1f} s "
            f"({1e3 * t_naive / n_naive:.1f} ms/head; {same})"
        )
        print(f"speed ratio (naive / engine, per head): {ratio:.1f}x   (target >= 5x)")
        for m in METRICS:
            print(
                f"  max |engine - naive| {m:13s}: effect {diffs[m]:.2e}, per example {per_example[m]:.2e}"
            )
        result["naive"] = {"layers": naive_layers, "n_heads": n_naive, "seconds": t_naive}
        result["speed_ratio_per_head"] = ratio
        result["max_abs_diff_effect"] = diffs
        result["max_abs_diff_per_example"] = per_example

    t0 = time.perf_counter()
    est = screen_heads(model, prompts, layers=layers, settings=settings, run=quiet)
    t_screen = time.perf_counter() - t0
    exact = eng.effects["gold_logprob"]
    rho = spearman(est, exact)
    k = args.top_k
    top_exact, top_est = top_k(exact, layers, k), top_k(est, layers, k)
    overlap = len(set(top_exact) & set(top_est))
    print(
        f"screening: {t_screen:.1f} s = {t_screen / t_engine:.3f} x the exact engine "
        f"({t_engine / t_screen:.0f}x cheaper)"
    )
    print(
        f"  Spearman(estimate, exact ACT effect on gold_logprob) over {exact.numel()} heads: {rho:.3f}"
    )
    print(f"  top-{k} helpful heads: overlap {overlap}/{k}")
    print(f"    exact   : {top_exact}")
    print(f"    screened: {top_est}")
    result["screening"] = {
        "seconds": t_screen,
        "cost_vs_engine": t_screen / t_engine,
        "spearman": rho,
        "top_k": k,
        "top_k_overlap": overlap,
        "top_exact": top_exact,
        "top_screened": top_est,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
