"""Output-level baselines to compare ACT with.

Contextual calibration (Zhao et al. 2021, "Calibrate Before Use"): divide the label
probabilities by those the model gives a content-free input (e.g. "N/A") in the same prompt,
then take the argmax. It corrects a prior bias toward some labels without touching attention.
"""

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from act_lens.act import HookSpec
from act_lens.errors import ConfigError
from act_lens.evaluate import EvalResult, build_prompts, score_prompts
from act_lens.stats import accuracy_interval
from act_lens.tasks import Example, Task, get_task

CONTENT_FREE = ("N/A", "", "[MASK]")


def content_free_scores(
    model: Any, task: "str | Task", *, shots: int = 0, seed: int = 0, data: Any = None,
    hooks: "HookSpec | None" = None, content_free: Sequence[str] = CONTENT_FREE,
) -> torch.Tensor:
    """Mean label probabilities for content-free inputs (every text field replaced), ``[n_labels]``."""
    task = get_task(task) if isinstance(task, str) else task
    if task.kind != "classification":
        raise ConfigError("contextual calibration applies to classification tasks")
    pool = task.load(data, task.eval_split)[:1]
    template = pool[0]
    examples = [
        Example(f"{task.name}:cf:{i}", {k: text for k in template.fields}, 0, meta={})
        for i, text in enumerate(content_free)
    ]
    prompts = build_prompts(task, examples, shots=shots, seed=seed, data=data)
    scores, _ = score_prompts(model, task, prompts, hooks=hooks, progress=False)
    probs = torch.softmax(torch.tensor(scores), dim=-1)
    return probs.mean(0)


def contextual_calibration(result: EvalResult, cf_probs: torch.Tensor) -> EvalResult:
    """Re-decide ``result``'s predictions with the content-free correction (same examples)."""
    scores = torch.tensor(result.scores)
    if scores.shape[-1] != cf_probs.shape[-1]:
        raise ConfigError("content-free probabilities do not match the number of labels")
    logp = torch.log_softmax(scores, dim=-1) - torch.log(cf_probs.clamp(min=1e-12))
    preds = tuple(int(i) for i in logp.argmax(-1))
    correct = [p == y for p, y in zip(preds, result.labels, strict=True)]
    return replace(
        result, predictions=preds, scores=tuple(tuple(float(x) for x in row) for row in logp),
        interval=accuracy_interval(correct),
        info={**result.info, "contextual_calibration": [float(x) for x in cf_probs]},
    )
