"""Cold load (GGUF dequantization) vs cached load of a known model, in fresh subprocesses.

python benchmarks/bench_load.py [--model smollm2-135m]
"""

import argparse
import json
import subprocess
import sys
import tempfile

from _common import write_result

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from act_lens import load_model
t1 = time.perf_counter()
load_model(sys.argv[1], cache_dir=sys.argv[2])
print(json.dumps({"import_s": t1 - t0, "load_s": time.perf_counter() - t1}))
"""


def run(model: str, cache: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, model, cache], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        cold = run(args.model, cache)
        warm = run(args.model, cache)
    write_result(
        f"load_{args.model}",
        {
            "model": args.model,
            "cold_load_s": round(cold["load_s"], 2),
            "cached_load_s": round(warm["load_s"], 2),
            "speedup": round(cold["load_s"] / warm["load_s"], 1),
            "import_s": round(warm["import_s"], 2),
        },
    )


if __name__ == "__main__":
    main()
