"""Per-model sink census on SST-2 dev prompts, and optionally SST-2 accuracy with a searched head set.

    python analyses/model_census.py gemma3-270m [--data ../shared/data] [--n 100]
        [--prompts paper] [--eval-limit 300] [--search] [--calib 48] [--screen 30] [--out figures]

The search is the default one (``choice_logprob``, class-balanced calibration, joint selection
on the validation half), screened to ``--screen`` heads to keep it short; the evaluation adds a random
head set of the same size and contextual calibration as controls.

Writes ``figures/census_<model>.json``, the census figures (``<model>_*.png``) and
``figures/measure_<model>.json`` (timings, hidden-sink head count, accuracies). The census uses
``layer_windows(model)`` automatically (sliding-window layers).
"""

import argparse
import json
import time
from pathlib import Path
from typing import Any

from act_lens import load_model
from act_lens.analysis.census import sink_census
from act_lens.analysis.search import SearchConfig, calibration_mix, search_heads
from act_lens.app.figures import save_census_figures
from act_lens.evaluation.baselines import content_free_scores, contextual_calibration
from act_lens.evaluation.controls import random_head_set
from act_lens.evaluation.evaluate import build_prompts, compare, evaluate, subsample
from act_lens.evaluation.tasks import get_task
from act_lens.hooks.act import ActConfig
from act_lens.hooks.arch import layer_windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser.add_argument("--n", type=int, default=100, help="SST-2 dev prompts for the census")
    parser.add_argument(
        "--eval-limit", type=int, default=0, help="SST-2 dev examples to evaluate (0: skip)"
    )
    parser.add_argument(
        "--search", action="store_true", help="search a head set and evaluate with it"
    )
    parser.add_argument("--prompts", choices=("paper", "plain"), default="paper")
    parser.add_argument("--calib", type=int, default=48)
    parser.add_argument("--screen", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", default="figures")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"model": args.model}
    summary = out / f"measure_{args.model}.json"

    def save() -> None:
        summary.write_text(json.dumps(result, indent=2))
        print(json.dumps(result), flush=True)

    t0 = time.perf_counter()
    model = load_model(args.model)
    result["load_s"] = time.perf_counter() - t0
    result["sliding_layers"] = sorted(layer_windows(model))
    task = get_task("sst2", args.prompts)
    result["prompts"] = args.prompts
    prompts = [p.text for p in build_prompts(task, subsample(task.load(args.data), args.n))]
    t0 = time.perf_counter()
    census = sink_census(model, prompts, batch_size=args.batch_size)
    result["census_s"] = time.perf_counter() - t0
    result["n_prompts"] = census.n_prompts
    result["heads_with_hidden_sinks_0.5"] = census.n_heads_with_hidden_sinks(0.5)
    result["n_heads_total"] = int(census.hidden_sink_freq.numel())
    result["top_heads"] = census.top(5)
    result["top_tokens"] = list(census.top_tokens[:10])
    census.save(out / f"census_{args.model}.json")
    save_census_figures(census, out, prefix=f"{args.model}_")
    save()
    if args.eval_limit:
        t0 = time.perf_counter()
        base = evaluate(
            model, task, data=args.data, limit=args.eval_limit, batch_size=args.batch_size
        )
        result["eval_s"] = time.perf_counter() - t0
        result["sst2_acc"] = base.accuracy
        save()
        if args.search:
            t0 = time.perf_counter()
            calib = calibration_mix([task], args.calib, data=args.data)
            config = SearchConfig(screen=args.screen, batch_size=args.batch_size)
            heads = search_heads(model, calib, config=config).head_set
            result["search_s"] = time.perf_counter() - t0
            result["head_set"] = {str(k): list(v) for k, v in heads.heads.items()}
            result["selected_size"] = heads.provenance["selected_size"]
            result["candidates"] = len(heads.provenance["candidate_order"])
            heads.save(out / f"headset_{args.model}.json")
            kw: dict[str, Any] = dict(
                data=args.data, limit=args.eval_limit, batch_size=args.batch_size
            )
            treated = evaluate(model, task, intervention=ActConfig(heads), **kw)
            rand = random_head_set(heads, model.cfg.n_layers, model.cfg.n_heads, seed=0)
            random_run = evaluate(model, task, intervention=ActConfig(rand), **kw)
            cc = contextual_calibration(base, content_free_scores(model, task, data=args.data))
            result["sst2_acc_act"] = treated.accuracy
            result["compare"] = str(compare(base, treated))
            result["random_set"] = str(compare(base, random_run))
            result["cc"] = str(compare(base, cc))
            result["act_vs_cc"] = str(compare(cc, treated))
            save()


if __name__ == "__main__":
    main()
