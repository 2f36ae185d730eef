"""ACT overhead: a calibrated forward (every head of layers 2..L-2) vs a plain forward.

Bundled model, batch 8 x 128 tokens; the two are timed interleaved in one run (median of
repeats) and reported as a ratio. Target: at most 1.15x.

    python benchmarks/bench_act_overhead.py [--repeats 7]
"""

import argparse
import time

import torch
from _common import write_result

from act_lens import load_model
from act_lens.hooks.act import act_hooks
from act_lens.hooks.headset import HeadSet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    model = load_model("smollm2-135m")
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    head_set = HeadSet({layer: range(n_heads) for layer in range(2, n_layers - 1)})
    hooks = act_hooks(head_set)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(100, 40000, (args.batch, args.tokens), generator=gen)
    plain, calibrated = [], []
    with torch.inference_mode():
        model(tokens)  # warm-up
        model.run_with_hooks(tokens, fwd_hooks=hooks)
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            model(tokens)
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            model.run_with_hooks(tokens, fwd_hooks=hooks)
            calibrated.append(time.perf_counter() - t0)
    p, c = sorted(plain)[len(plain) // 2], sorted(calibrated)[len(calibrated) // 2]
    write_result(
        "act_overhead",
        {
            "batch": args.batch,
            "tokens": args.tokens,
            "heads_calibrated": len(head_set),
            "plain_s": round(p, 4),
            "act_s": round(c, 4),
            "ratio": round(c / p, 3),
            "target": 1.15,
            "torch_threads": torch.get_num_threads(),
        },
    )


if __name__ == "__main__":
    main()
