"""lm-eval through act_lens's adapter vs lm-eval's own HFLM: same model, task and examples, no hooks.

    OMP_NUM_THREADS=1 python benchmarks/bench_lm_eval.py [--task arc_easy] [--n 100] [--repeats 3]

Target: the adapter no slower than 1.2x HFLM, with identical accuracies.

* Same requests: act_lens's prompts for ``--n`` examples (its fixed subsample) are written as an
  lm-eval task (``act_lens.integrations.lm_eval_tasks.write_task``), so lm-eval builds the same
  ``(context, continuation)`` requests for both models.
* Same weights, separate models: HFLM loads the bundled model's converted checkpoint from
  act_lens's weight cache with ``AutoModelForCausalLM.from_pretrained`` (its own loading path,
  float32, CPU, attention chosen by transformers); the bridge's wrapped HF model cannot be used
  since it shares its attention modules with the bridge. The adapter runs the bridge (eager
  attention, which act_lens needs to edit patterns).
* Same tokens: act_lens's tokenizer puts the model's BOS first in every context; HFLM is given
  ``add_bos_token=True`` (lm-eval's switch for it). Before timing, every context and
  continuation is encoded both ways (HFLM's ``_encode_pair`` against act_lens's
  ``encode_request``) and the run stops if any differs.
* Timing: ``simple_evaluate`` end to end (request building, scoring, metrics), the two models
  alternating in one process, ``--repeats`` times after a warm-up; the median of the per-round
  ratios is reported. Both use ``--batch-size``.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import write_result
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from act_lens import load_model
from act_lens.evaluation.evaluate import build_prompts, subsample
from act_lens.evaluation.tasks import get_task
from act_lens.integrations.lm_eval import ActLensLM
from act_lens.integrations.lm_eval_requests import encode_request
from act_lens.integrations.lm_eval_tasks import write_task
from act_lens.models.registry import KNOWN_MODELS
from act_lens.models.weight_cache import WeightCache, default_cache_dir, file_sha256

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # beside the repository


def cache_folder(spec: str) -> str:
    """The weight-cache folder ``load_model(spec)`` reads (a single-file known model)."""
    known = KNOWN_MODELS[spec]
    (gguf,) = known.part_paths()
    folder = default_cache_dir() / "models" / (known.sha256 or file_sha256(gguf))[:24]
    if not WeightCache(folder).is_valid():
        raise SystemExit(f"no valid weight cache at {folder}; run load_model({spec!r}) once")
    return str(folder)


def run(lm, name: str, tasks: TaskManager, limit: int | None = None) -> tuple[dict, list, float]:
    t0 = time.perf_counter()
    out = simple_evaluate(
        model=lm, tasks=[name], task_manager=tasks, limit=limit, log_samples=True, verbosity="ERROR"
    )
    seconds = time.perf_counter() - t0
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    return out["results"][name], samples, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="arc_easy")
    parser.add_argument("--data-dir", default=str(DATA))
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    task = get_task(args.task)
    prompts = build_prompts(task, subsample(task.load(args.data_dir), args.n))
    bridge = load_model(args.model)
    ours = ActLensLM(bridge, batch_size=args.batch_size)
    folder = cache_folder(args.model)
    theirs = HFLM(
        pretrained=folder,
        tokenizer=folder,
        add_bos_token=True,
        device="cpu",
        dtype="float32",
        batch_size=args.batch_size,
    )
    for p in prompts:
        for cont in p.continuations:
            if list(theirs._encode_pair(p.context, cont)) != list(
                encode_request(bridge.tokenizer, p.context, cont)
            ):
                raise SystemExit(f"HFLM and act_lens tokenize {p.uid} {cont!r} differently")
    name = f"al_{args.task}"
    with tempfile.TemporaryDirectory() as tmp:
        write_task(prompts, tmp, name)
        tasks = TaskManager(include_path=tmp, include_defaults=False)
        run(ours, name, tasks, limit=2)  # warm-up: dataset cache, first forwards
        run(theirs, name, tasks, limit=2)
        rounds = []
        for _ in range(args.repeats):
            res_theirs, s_theirs, t_theirs = run(theirs, name, tasks)
            res_ours, s_ours, t_ours = run(ours, name, tasks)
            rounds.append((t_theirs, t_ours))
    lls = [
        (float(a[0][0]), float(b[0][0]))
        for x, y in zip(s_ours, s_theirs, strict=True)
        for a, b in zip(x["resps"], y["resps"], strict=True)
    ]
    metrics = ("acc", "acc_norm", "acc_bytes")
    write_result(
        "lm_eval",
        {
            "model": args.model,
            "task": args.task,
            "n": len(prompts),
            "requests": len(lls),
            "batch_size": args.batch_size,
            "act_lens": {m: res_ours[f"{m},none"] for m in metrics},
            "hflm": {m: res_theirs[f"{m},none"] for m in metrics},
            "same_per_example": all(
                x[m] == y[m] for x, y in zip(s_ours, s_theirs, strict=True) for m in metrics
            ),
            "max_abs_loglikelihood_diff": max(abs(a - b) for a, b in lls),
            "hflm_s": [round(t, 2) for t, _ in rounds],
            "act_lens_s": [round(t, 2) for _, t in rounds],
            "ratio_median": round(statistics.median(o / t for t, o in rounds), 3),
            "target": 1.2,
            "hflm_attention": theirs.model.config._attn_implementation,
            "torch_threads": torch.get_num_threads(),
        },
    )


if __name__ == "__main__":
    main()
