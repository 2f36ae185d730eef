"""The per-head engine on 1 vs N workers, side by side, and its distance to the hardware.

    python benchmarks/bench_workers.py [--prompts 24] [--layers 2-10] [--workers 2]
        [--precision bf16]

On the bundled SmolLM2-135M with SST-2 (``--data-dir``) or the built-in ``reviews`` prompts:

1. a plain batched forward (the hardware's pace for this model: GFLOP/s from 2 x non-embedding
   parameters x tokens, plus the unembedding of the last position);
2. ``head_effects`` in-process with one torch thread (what one worker does);
3. ``head_effects(workers=N)`` on N Ray actors (one thread each), the pool started beforehand
   and timed apart (Ray start and model loads are a one-off cost per search);

and prints the speed ratio, the largest difference of the effects (parallel must equal
serial), and the engine's throughput in head-prompt evaluations per second and as GFLOP/s
(each evaluation re-runs the layers from the ablated one to the last, on every position).
Result: ``benchmarks/results/workers.json``.
"""

import argparse
import platform
import time
from pathlib import Path

import torch
from _common import write_result

from act_lens import load_model
from act_lens.analysis.ablation import head_effects
from act_lens.analysis.calibration_set import calibration_mix
from act_lens.runtime.options import RunOptions
from act_lens.runtime.pool import WorkerPool
from act_lens.runtime.precision import precision_context

REPO = Path(__file__).resolve().parents[1]


def flops_per_token(model) -> float:
    """2 x the parameters of one layer stack (attention + MLP) per token, per layer."""
    per_layer = sum(p.numel() for p in model.blocks[0].parameters())
    return 2.0 * per_layer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--layers", default="2-10")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    a, b = (int(x) for x in args.layers.split("-"))
    layers = list(range(a, b + 1))
    torch.set_num_threads(1)
    model = load_model("smollm2-135m")
    task = "sst2" if Path(args.data_dir, "sst2").exists() else "reviews"
    prompts = calibration_mix([task], args.prompts, data=args.data_dir)
    n_tokens = sum(len(model.tokenizer(p.text)["input_ids"]) for p in prompts)
    n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
    per_token = flops_per_token(model)
    # one plain forward of every prompt: the hardware's pace on this model
    from act_lens.evaluation.batching import encode
    from act_lens.evaluation.scoring import last_token_logprobs

    tokens = encode(model.tokenizer, [p.text for p in prompts])
    with precision_context(args.precision, model):
        last_token_logprobs(model, tokens[:8])  # warm-up
        t0 = time.perf_counter()
        last_token_logprobs(model, tokens)
        t_fwd = time.perf_counter() - t0
    fwd_gflops = per_token * n_layers * n_tokens / t_fwd / 1e9

    with precision_context(args.precision, model):
        t0 = time.perf_counter()
        serial = head_effects(model, prompts, layers=layers, run=RunOptions(progress=False))
        t_serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    pool = WorkerPool(model, args.workers)
    pool.map("act_lens.runtime.pool:weights_digest", [{}] * args.workers)  # actors loaded
    t_start = time.perf_counter() - t0
    try:
        with precision_context(args.precision, model):
            t0 = time.perf_counter()
            parallel = head_effects(
                model, prompts, layers=layers, run=RunOptions(progress=False, workers=pool)
            )
            t_parallel = time.perf_counter() - t0
    finally:
        pool.close()
    evals = len(layers) * n_heads * len(prompts)
    # FLOPs of the ablated passes: each (head, prompt) re-runs layers l..L-1 on every token
    engine_flops = sum(per_token * (n_layers - la) * n_heads * n_tokens for la in layers)
    diff = max(float((serial.effects[m] - parallel.effects[m]).abs().max()) for m in serial.effects)
    result = {
        "machine": platform.machine(),
        "precision": args.precision,
        "task": task,
        "prompts": len(prompts),
        "tokens": n_tokens,
        "layers": layers,
        "head_prompt_evaluations": evals,
        "plain_forward_gflops": fwd_gflops,
        "serial_1_thread_s": t_serial,
        "parallel_s": t_parallel,
        "workers": args.workers,
        "pool_start_s": t_start,
        "speedup": t_serial / t_parallel,
        "speedup_with_pool_start": t_serial / (t_parallel + t_start),
        "evaluations_per_s_serial": evals / t_serial,
        "evaluations_per_s_parallel": evals / t_parallel,
        "engine_gflops_serial": engine_flops / t_serial / 1e9,
        "engine_fraction_of_forward_pace": engine_flops / t_serial / 1e9 / fwd_gflops,
        "max_abs_diff_effects": diff,
    }
    write_result("workers", result)


if __name__ == "__main__":
    main()
