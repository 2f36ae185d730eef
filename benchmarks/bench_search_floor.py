"""How far a finished search is from the hardware: its FLOPs per phase against its wall time.

    python benchmarks/bench_search_floor.py --head-set figures/study/smollm2-135m_c48/head_set_sst2.json

Reads a saved head set (its provenance: task, prompts, calibration size and seed, candidate
layers, the screened heads, the schedule, the validation curve's sizes, the workers and the
recorded phase times), rebuilds the same ranking and validation prompts, and counts what each
phase of the search had to compute on the bundled model:

- screen: one forward and one backward (about 3 forwards) of every ranking prompt;
- exact effects: for each evaluated (head, prompt), the blocks from the head's layer to the last
  on every token, plus the unembedding of the last position; and, apart, the clean forward
  each work unit repeats (:mod:`act_lens.analysis.units`);
- validation curve: one forward of every validation prompt per set size.

FLOPs per token and block are 2 x the block's parameters (as ``bench_workers.py``). The floor of
a phase is its FLOPs at the pace of a plain batched forward of the same ranking prompts (measured
here, one torch thread, the search's precision, best of three) times the workers: the time an
engine with no overhead beyond a forward's would need on these cores. Run it on a quiet machine.
Result: ``benchmarks/results/search_floor.json``.
"""

import argparse
import json
import time
from pathlib import Path

import torch
from _common import write_result
from bench_workers import flops_per_token

from act_lens import load_model
from act_lens.analysis.calibration_set import calibration_split
from act_lens.analysis.units import plan_units
from act_lens.evaluation.batching import encode
from act_lens.evaluation.scoring import last_token_logprobs
from act_lens.evaluation.tasks import get_task
from act_lens.runtime.precision import precision_context

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--head-set", required=True)
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--seed", type=int, default=0, help="the calibration draw of the search")
    args = ap.parse_args()
    prov = json.loads(Path(args.head_set).read_text())["provenance"]
    if prov["search"]["schedule"] != "exhaustive":
        raise SystemExit("bench_search_floor: only exhaustive searches (no halving rounds) so far")
    torch.set_num_threads(1)
    model = load_model("smollm2-135m")
    n_layers = int(model.cfg.n_layers)
    per_token = flops_per_token(model)
    unembed = 2.0 * int(model.cfg.d_model) * int(model.cfg.d_vocab)
    tasks = [get_task(t, prov["prompts"]) for t in prov["tasks"]]
    n = prov["calibration"]["n"] + prov["validation_set"]["n"]
    ranking, validation = calibration_split(tasks, n, data=args.data_dir, seed=args.seed)
    if len(ranking) != prov["calibration"]["n"] or len(validation) != prov["validation_set"]["n"]:
        raise SystemExit("bench_search_floor: the rebuilt calibration split does not match")
    tokens = encode(model.tokenizer, [p.text for p in ranking])
    t_rank = [len(t) for t in tokens]
    t_val = [len(t) for t in encode(model.tokenizer, [p.text for p in validation])]
    precision = prov["precision"]
    with precision_context(precision, model):
        last_token_logprobs(model, tokens[:8])  # warm-up
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            last_token_logprobs(model, tokens)
            times.append(time.perf_counter() - t0)
    pace = per_token * n_layers * sum(t_rank) / min(times)
    heads = [tuple(int(x) for x in k.split(".")) for k in prov["screening"]]
    layers = sorted({la for la, _ in heads})

    screen = 3 * per_token * n_layers * sum(t_rank)
    effects = sum(per_token * (n_layers - la) * sum(t_rank) + unembed * len(t_rank)
                  for la, _ in heads)  # fmt: skip
    units = plan_units(layers, len(ranking))
    clean = sum(per_token * n_layers * sum(t_rank[a:b]) for _, (a, b) in units)
    sizes = len(prov["curve"])  # the validation curve's rows: no heads, then each set size
    curve = per_token * n_layers * sum(t_val) * sizes
    workers = int(prov["workers"])
    timings = prov["timings"]
    phases = {
        "screen": (screen, timings["screen_s"]),
        "effects": (effects + clean, timings["effects_s"]),
        "curve": (curve, timings["curve_s"]),
    }
    rows = {}
    for name, (flops, wall) in phases.items():
        floor = flops / (pace * workers)
        rows[name] = {"gflop": flops / 1e9, "floor_s": floor, "recorded_s": wall,
                      "recorded_over_floor": wall / floor}  # fmt: skip
    rows["effects"]["of_which_unit_clean_passes_gflop"] = clean / 1e9
    total_flops = sum(f for f, _ in phases.values())
    result = {
        "head_set": args.head_set,
        "tasks": prov["tasks"],
        "ranking_prompts": len(ranking),
        "validation_prompts": len(validation),
        "ranking_tokens": sum(t_rank),
        "validation_tokens": sum(t_val),
        "evaluated_heads": len(heads),
        "head_prompt_evaluations": prov["evaluations"],
        "curve_sizes": sizes,
        "workers": workers,
        "precision": precision,
        "plain_forward_gflops_per_worker": pace / 1e9,
        "phases": rows,
        "floor_s_all_phases": total_flops / (pace * workers),
        "recorded_s_all_phases": sum(w for _, w in phases.values()),
        "recorded_total_s": timings["total_s"],
        "search_s_with_model_and_pool": prov.get("search_s"),
        "command": "cd benchmarks && python bench_search_floor.py --head-set " + args.head_set,
    }
    write_result("search_floor", result)


if __name__ == "__main__":
    main()
