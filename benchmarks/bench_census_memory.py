"""Peak memory of a sink census vs caching every pattern with run_with_cache.

One 2048-token prompt, bundled model. Each variant runs in its own subprocess; the peak
resident memory above a plain forward is compared.

    python benchmarks/bench_census_memory.py [--tokens 2048]
"""

import argparse
import json
import subprocess
import sys

from _common import write_result

CHILD = r"""
import json, resource, sys, torch
from act_lens import load_model
from act_lens.analysis.census import sink_census
mode, n = sys.argv[1], int(sys.argv[2])
model = load_model("smollm2-135m")
words = ("The film was long, but the acting: superb. Still, I left early!\nWhy? " * 400).strip()
ids = model.tokenizer(words).input_ids[:n]
text = model.tokenizer.decode(ids[1:]) if ids[0] == model.tokenizer.bos_token_id else model.tokenizer.decode(ids)
tokens = torch.tensor([model.tokenizer(text).input_ids[:n]])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.inference_mode():
    if mode == "plain":
        model(tokens)
    elif mode == "census":
        sink_census(model, [text], progress=False, example_index=None)
    elif mode == "cache":
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
        assert len([k for k in cache.keys() if k.endswith("hook_pattern")]) == model.cfg.n_layers
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"mode": mode, "tokens": tokens.shape[1], "rss_before_mb": before / 1024, "peak_mb": peak / 1024}))
"""


def run(mode: str, tokens: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(tokens)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=2048)
    args = parser.parse_args()
    plain, census, cache = (run(m, args.tokens) for m in ("plain", "census", "cache"))
    extra_census = census["peak_mb"] - plain["peak_mb"]
    extra_cache = cache["peak_mb"] - plain["peak_mb"]
    write_result(
        "census_memory",
        {
            "tokens": plain["tokens"],
            "plain_forward_peak_mb": round(plain["peak_mb"]),
            "census_peak_mb": round(census["peak_mb"]),
            "run_with_cache_peak_mb": round(cache["peak_mb"]),
            "census_extra_mb": round(extra_census),
            "run_with_cache_extra_mb": round(extra_cache),
            "peak_ratio": round(cache["peak_mb"] / census["peak_mb"], 2),
            "extra_ratio": round(extra_cache / max(extra_census, 1.0), 1),
        },
    )


if __name__ == "__main__":
    main()
