"""What ``act-lens run`` saves for ``report.html`` beyond its results: the attention of a few
evaluation prompts before and after the intervention in the selected heads
(``attention_examples.json``) and the text of every example whose prediction changed
(``flip_prompts.json``). ``report.html`` is then built from files alone
(:mod:`act_lens.app.report_html`), so ``act-lens figures`` needs no model.
"""

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from act_lens.analysis.census import SinkCensus
from act_lens.analysis.patterns import record_attention
from act_lens.app.config import RunConfig
from act_lens.evaluation.evaluate import EvalResult, build_prompts, subsample
from act_lens.evaluation.task_result import TaskResult
from act_lens.evaluation.tasks import Prompt, get_task
from act_lens.hooks.headset import HeadSet, head_set_for
from act_lens.io import atomic_write_text

EXAMPLES_FILE, FLIPS_FILE = "attention_examples.json", "flip_prompts.json"
N_EXAMPLES = 3
# Longer prompts are passed over when shorter ones exist: the page grows as heads x tokens^2.
MAX_TOKENS = 160
MAX_HEADS = 24
CENSUS_HEADS = 6  # heads shown when the search kept none: the census's top heads


def save_view_data(
    cfg: RunConfig,
    model: Any,
    sets: Mapping[str | None, HeadSet],
    results: Mapping[str, TaskResult],
    out: Path,
    *,
    data: Any,
    intervention: Callable[[HeadSet], Any],
) -> list[Path]:
    """Write ``flip_prompts.json`` and ``attention_examples.json`` into ``out``.

    The prompts are rebuilt exactly as the evaluation built them (same ``data``, subsample,
    shots and seed). The attention examples come from the first evaluated task: examples ACT
    fixed, then broke, then the rest, at most ``MAX_TOKENS`` tokens when such exist, with
    ``intervention(head_set)`` (what the evaluation applied) in the set's heads.

    Returns:
        The paths written.
    """
    flip_texts: dict[str, dict[str, Any]] = {}
    examples: dict[str, Any] | None = None
    for key, row in results.items():
        stem = key.replace("/", "_")
        if not (out / "eval" / f"{stem}_act.json").exists():
            continue
        base = EvalResult.load(out / "eval" / f"{stem}_baseline.json")
        treated = EvalResult.load(out / "eval" / f"{stem}_act.json")
        prompts = _prompts(cfg, data, row.task, row.seed, base)
        changes = _changes(base, treated)
        flip_texts[key] = {
            uid: {"text": prompts[uid].text, "choices": list(prompts[uid].choices)}
            for uid in changes
            if uid in prompts
        }
        if examples is None:
            head_set = head_set_for(sets, row.task)
            examples = _attention_examples(
                model,
                head_set,
                intervention,
                [prompts[u] for u in base.uids if u in prompts],
                changes,
                key,
                out,
            )
    written = [atomic_write_text(out / FLIPS_FILE, json.dumps(flip_texts, indent=1))]
    if examples is not None:
        written.append(atomic_write_text(out / EXAMPLES_FILE, json.dumps(examples)))
    return written


def _prompts(
    cfg: RunConfig, data: Any, name: str, seed: int, base: EvalResult
) -> dict[str, Prompt]:
    task = get_task(name, cfg.prompts)
    examples = subsample(task.load(data, base.split), cfg.limit)
    prompts = build_prompts(task, examples, shots=cfg.shots, seed=seed, data=data)
    return {p.uid: p for p in prompts}


def _changes(base: EvalResult, treated: EvalResult) -> dict[str, str]:
    """uid -> ``fixed``, ``broken`` or ``other`` for every example whose prediction changed."""
    out = {}
    for uid, y, pb, pt in zip(
        base.uids, base.labels, base.predictions, treated.predictions, strict=True
    ):
        if pb != pt:
            out[uid] = "fixed" if pt == y else "broken" if pb == y else "other"
    return out


def _attention_examples(
    model: Any,
    head_set: HeadSet,
    make_intervention: Callable[[HeadSet], Any],
    prompts: list[Prompt],
    changes: Mapping[str, str],
    key: str,
    out: Path,
) -> dict[str, Any]:
    rank = {"fixed": 0, "broken": 1, "other": 2}
    ordered = sorted(prompts, key=lambda p: rank.get(changes.get(p.uid, ""), 3))
    lengths = {p.uid: len(model.tokenizer(p.text).input_ids) for p in ordered}
    short = [p for p in ordered if lengths[p.uid] <= MAX_TOKENS]
    chosen = short[:N_EXAMPLES]
    taken = {p.uid for p in chosen}
    longer = sorted((p for p in ordered if p.uid not in taken), key=lambda p: lengths[p.uid])
    chosen += longer[: N_EXAMPLES - len(chosen)]  # the shortest of the rest when too few fit
    pairs, intervention, note = list(head_set)[:MAX_HEADS], None, ""
    if pairs:
        intervention = make_intervention(head_set)
        if len(head_set) > MAX_HEADS:
            note = f"the first {MAX_HEADS} of the set's {len(head_set)} heads"
    else:
        census_path = out / "census.json"
        top = SinkCensus.load(census_path).top(CENSUS_HEADS) if census_path.exists() else []
        pairs = [(t["layer"], t["head"]) for t in top] or [(0, h) for h in range(CENSUS_HEADS)]
        pairs = [(la, h) for la, h in pairs if h < int(model.cfg.n_heads)]
        note = "the search kept no head: the census's top heads, without an intervention"
    return {
        "format": "act_lens.AttentionExamples/1",
        "task": key,
        "heads": head_set.summary(),
        "note": note,
        "examples": [
            {
                "uid": p.uid,
                "change": changes.get(p.uid, "unchanged"),
                "gold": p.choices[p.label].strip(),
                "patterns": record_attention(
                    model, p.text, sorted(pairs), intervention=intervention,
                    settings=getattr(intervention, "settings", None),
                ).to_dict(),
            }
            for p in chosen
        ],
    }  # fmt: skip
