"""Output-level baselines to compare ACT with.

Contextual calibration (Zhao et al. 2021, "Calibrate Before Use"): divide the label
probabilities by those the model gives a content-free input (e.g. "N/A") in the same prompt,
then take the argmax. It corrects a prior bias toward some labels without touching attention.
For multiple-choice tasks the content-free input is a question and options that are all the
content-free text, and the correction divides the option-letter probabilities (one prior per
number of options, since e.g. ARC mixes 3-, 4- and 5-option questions).
"""

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch

from act_lens.errors import ConfigError, config_from, renamed_keyword
from act_lens.evaluation.config import EvalConfig
from act_lens.evaluation.evaluate import EvalResult, build_prompts, score_prompts
from act_lens.evaluation.stats import accuracy_interval
from act_lens.evaluation.tasks import Example, Task, get_task
from act_lens.hooks.interventions import as_intervention

CONTENT_FREE = ("N/A", "", "[MASK]")


def content_free_scores(
    model: Any,
    task: "str | Task",
    intervention: Any = None,
    *,
    data: Any = None,
    content_free: Sequence[str] = CONTENT_FREE,
    n_options: int | None = None,
    config: EvalConfig | None = None,
    **options: Any,
) -> torch.Tensor:
    """Mean label probabilities for content-free inputs (every text field replaced).

    Args:
        model: a TransformerBridge.
        task: a registry name or a Task (classification or multiple choice).
        intervention: active while scoring (as in ``evaluate``; CC on top of ACT needs the
            prior of the calibrated model); ``hooks=`` is its deprecated old name.
        data: where the task's data is (as in ``evaluate``): the template example and the
            demonstrations come from it.
        content_free: the content-free texts; their probabilities are averaged.
        n_options: multiple choice: the number of options (default: as many as the first
            example of the split has).
        config: as in ``evaluate`` (:class:`EvalConfig`: the split the template example comes
            from, shots, seed, batch size, progress; scoring is always first-token), or its
            fields as keywords.

    Returns:
        ``[n_labels]`` for a classification task; for a multiple-choice task, the mean
        option-letter probabilities ``[n_options]`` of a prompt whose question and options are
        all the content-free text.

    Raises:
        ConfigError: another kind of task, a bad ``n_options``, ``scoring="full"``, an unknown
            keyword or an option given beside ``config``.

    Example:
        >>> prior = content_free_scores(model, "sst2", data="shared/data")   # doctest: +SKIP
        >>> contextual_calibration(evaluate(model, "sst2", data="shared/data"), prior)  # doctest: +SKIP
    """
    cfg, old = config_from(
        EvalConfig, config, options, where="content_free_scores", deprecated=("hooks",)
    )
    intervention = renamed_keyword(
        "content_free_scores", "intervention", intervention, old, "hooks"
    )
    if cfg.scoring != "first_token":
        raise ConfigError("content_free_scores scores first tokens only; drop scoring='full'")
    task = get_task(task) if isinstance(task, str) else task
    if task.kind not in ("classification", "multiple_choice"):
        raise ConfigError(
            f"contextual calibration needs a classification or multiple-choice task; {task.name!r} is {task.kind!r}"
        )
    if n_options is not None and (task.kind != "multiple_choice" or n_options < 2):
        raise ConfigError("n_options is for multiple-choice tasks and must be >= 2")
    template = task.load(data, task.resolve_split(cfg.split))[0]
    n = n_options or len(template.options)
    examples = [
        Example(
            f"{task.name}:cf:{i}",
            {k: text for k in template.fields},
            0,
            options=(text,) * n if task.kind == "multiple_choice" else (),
            meta=dict(template.meta),
        )
        for i, text in enumerate(content_free)
    ]
    prompts = build_prompts(task, examples, shots=cfg.shots, seed=cfg.seed, data=data)
    applied = as_intervention(intervention).for_model(model)
    scores, _ = score_prompts(
        model, task, prompts, hooks=applied, batch_size=cfg.batch_size, progress=cfg.progress
    )
    probs = torch.softmax(torch.tensor(scores), dim=-1)
    return probs.mean(0)


def contextual_calibration(
    result: EvalResult, cf_probs: "torch.Tensor | Mapping[int, torch.Tensor]"
) -> EvalResult:
    """Re-decide ``result``'s predictions with the content-free correction (same examples).

    Args:
        result: first-token scores of a classification or multiple-choice evaluation.
        cf_probs: ``content_free_scores`` output, or ``{n_choices: probs}`` when the examples
            have different numbers of options (one prior per count).
    """
    single = None if isinstance(cf_probs, Mapping) else cf_probs
    table: dict[int, torch.Tensor] = (
        dict(cf_probs) if isinstance(cf_probs, Mapping) else {int(cf_probs.shape[-1]): cf_probs}
    )
    rows = []
    for uid, row in zip(result.uids, result.scores, strict=True):
        cf = table.get(len(row))
        if cf is None:
            have = sorted(table)
            raise ConfigError(
                f"example {uid} has {len(row)} choices but the content-free probabilities cover {have}; "
                "compute content_free_scores for that number of options"
            )
        scores = torch.tensor(row)
        rows.append(torch.log_softmax(scores, dim=-1) - torch.log(cf.clamp(min=1e-12)))
    preds = tuple(int(r.argmax()) for r in rows)
    correct = [p == y for p, y in zip(preds, result.labels, strict=True)]
    if single is not None:
        prior: Any = [float(x) for x in single]
    else:
        prior = {str(k): [float(x) for x in v] for k, v in sorted(table.items())}
    return replace(
        result,
        predictions=preds,
        scores=tuple(tuple(float(x) for x in r) for r in rows),
        interval=accuracy_interval(correct),
        info={**result.info, "contextual_calibration": prior},
    )
