"""Write act_lens prompts as an lm-evaluation-harness task (a JSONL of docs and a YAML config).

lm-eval then scores exactly the contexts and continuations ``act_lens.evaluate(...,
scoring="full")`` scores: each doc holds a prompt's ``context``, its ``continuations`` (with
their leading space, so the task's ``target_delimiter`` is empty) and the gold index. The
YAML points at the JSONL with ``dataset_path: json``, so nothing is fetched from a hub.
"""

import json
import os
from collections.abc import Sequence
from pathlib import Path

from act_lens.errors import ConfigError
from act_lens.evaluation.tasks import Prompt
from act_lens.io import atomic_write_text

METRICS = ("acc", "acc_norm", "acc_bytes")


def write_task(prompts: Sequence[Prompt], folder: "str | os.PathLike[str]", name: str) -> Path:
    """Write ``name.jsonl`` and ``name.yaml`` (an lm-eval multiple-choice task) into ``folder``.

    Args:
        prompts: act_lens prompts (``task.build(example)``); their ``context`` and
            ``continuations`` become the docs.
        folder: where to write; pass it to ``TaskManager(include_path=...)`` or
            ``lm_eval --include_path``.
        name: the lm-eval task name (letters, digits, ``_``).

    Returns:
        The YAML path.

    Raises:
        ConfigError: no prompts, or a name lm-eval cannot use as a file and task name.

    Example:
        >>> task = get_task("arc_easy")                                  # doctest: +SKIP
        >>> prompts = [task.build(e) for e in task.load(data_dir)[:20]]
        >>> write_task(prompts, "lm_tasks", "al_arc_easy")
        PosixPath('lm_tasks/al_arc_easy.yaml')
    """
    if not prompts:
        raise ConfigError("write_task needs at least one prompt")
    if not name.replace("_", "").isalnum():
        raise ConfigError(f"task name {name!r} must be letters, digits and '_' only")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    docs = folder / f"{name}.jsonl"
    lines = [
        json.dumps(
            {"uid": p.uid, "context": p.context, "choices": list(p.continuations), "label": p.label}
        )
        for p in prompts
    ]
    atomic_write_text(docs, "\n".join(lines) + "\n")
    metrics = "".join(
        f"  - metric: {m}\n    aggregation: mean\n    higher_is_better: true\n" for m in METRICS
    )
    # JSON strings are valid YAML double-quoted scalars: paths with any character stay exact.
    config = (
        f"task: {name}\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        f"    test: {json.dumps(str(docs.resolve()))}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "doc_to_text: context\n"
        "doc_to_choice: choices\n"
        "doc_to_target: label\n"
        'target_delimiter: ""\n'
        f"metric_list:\n{metrics}"
        "metadata:\n  version: 1.0\n"
    )
    return atomic_write_text(folder / f"{name}.yaml", config)
