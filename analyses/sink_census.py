"""Sink census of the bundled model on the prompts of the benchmark tasks; writes figures/.

    python analyses/sink_census.py [--data-dir ../shared/data] [--per-task 24] [--out figures]

Prompts: zero-shot prompts (instruction + template) of a fixed subsample of each task's eval
split; the example map is the SST-2 prompt (first of the set). Writes
``figures/census_smollm2-135m.json`` and the five census figures (``figures/smollm2-135m_*.png``).
"""

import argparse
import json
import sys
import time
from pathlib import Path

from act_lens import load_model
from act_lens.analysis.census import sink_census
from act_lens.app.figures import save_census_figures
from act_lens.evaluation.evaluate import build_prompts, subsample
from act_lens.evaluation.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TASKS = (
    "sst2",
    "sst5",
    "mr",
    "subj",
    "agnews",
    "trec",
    "cb",
    "boolq",
    "dbpedia",
    "arc_easy",
    "arc_challenge",
    "piqa",
    "openbookqa",
    "commonsense_qa",
    "hellaswag",
    "copa",
    "mmlu",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--per-task", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", default=str(REPO / "figures"))
    args = parser.parse_args()
    data = Path(args.data_dir)
    if not data.is_dir():
        print(f"data directory {data} not found; pass --data-dir", file=sys.stderr)
        return 2
    prompts, per_task = [], {}
    for name in TASKS:
        task = get_task(name)
        examples = subsample(task.load(data, task.eval_split), args.per_task)
        texts = [p.text for p in build_prompts(task, examples)]
        prompts += texts
        per_task[name] = len(texts)
    model = load_model(args.model)
    t0 = time.perf_counter()
    census = sink_census(model, prompts, batch_size=args.batch_size)
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    census.save(out / f"census_{args.model}.json")
    save_census_figures(census, out, prefix=f"{args.model}_")
    summary = {
        "model": args.model,
        "prompts": per_task,
        "n_prompts": census.n_prompts,
        "seconds": round(seconds, 1),
        "heads_with_hidden_sink_in_half_of_prompts": census.n_heads_with_hidden_sinks(0.5),
        "class_totals": census.class_totals(),
        "top_tokens": census.top_tokens[:15],
        "first_mass_by_layer": [round(float(x), 3) for x in census.first_mass.mean(1)],
        "hidden_mass_by_layer": [round(float(x), 3) for x in census.hidden_mass.mean(1)],
        "hidden_freq_by_layer": [round(float(x), 3) for x in census.hidden_sink_freq.mean(1)],
    }
    (out / f"census_{args.model}_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
