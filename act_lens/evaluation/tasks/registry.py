"""Task registry: look tasks up by name."""

from __future__ import annotations

from functools import cache

from act_lens.errors import ConfigError
from act_lens.evaluation.tasks.base import Task
from act_lens.evaluation.tasks.builtin import BUILTIN_NAME, builtin_task
from act_lens.evaluation.tasks.classification import classification_tasks
from act_lens.evaluation.tasks.multiple_choice import multiple_choice_tasks
from act_lens.evaluation.tasks.paper_prompts import paper_variant

BUILTIN_TASK: str = BUILTIN_NAME
PROMPT_SETS = ("plain", "paper")
DEFAULT_PROMPTS = "plain"


@cache
def _tasks(prompts: str = DEFAULT_PROMPTS) -> dict[str, Task]:
    # Built on first use; task objects are frozen and read nothing until ``load``.
    if prompts not in PROMPT_SETS:
        raise ConfigError(f"prompts must be one of {', '.join(PROMPT_SETS)}, got {prompts!r}")
    tasks: list[Task] = [*classification_tasks(), *multiple_choice_tasks(), builtin_task()]
    if prompts == "paper":
        tasks = [paper_variant(task) for task in tasks]
    return {task.name: task for task in tasks}


def task_names() -> tuple[str, ...]:
    """Names of all registered tasks: the paper's classification tasks, then MC, then built-in.

    Returns:
        e.g. ``("sst2", "sst5", ..., "mmlu", "reviews")``.

    Example:
        >>> "sst2" in task_names(), BUILTIN_TASK in task_names()
        (True, True)
    """
    return tuple(_tasks())


def get_task(name: str, prompts: str = DEFAULT_PROMPTS) -> Task:
    """The task registered under ``name``, building the prompts of the chosen set.

    Args:
        name: a registry name (see :func:`task_names`).
        prompts: ``"plain"`` (act_lens's own instructions and templates) or ``"paper"`` (the
            official ACT prompts; see ``act_lens.evaluation.tasks.paper_prompts``). Tasks without an
            official prompt (the built-in ones) are the same in both sets.

    Returns:
        The (shared, immutable) task object.

    Raises:
        ConfigError: unknown name; the message lists the known ones.

    Example:
        >>> task = get_task("trec")
        >>> task.kind, task.label_words[0]
        ('classification', 'Abbreviation')
    """
    tasks = _tasks(prompts)
    if name not in tasks:
        raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(tasks)}")
    return tasks[name]
