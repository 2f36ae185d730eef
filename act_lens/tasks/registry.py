"""Task registry: look tasks up by name."""

from __future__ import annotations

from functools import cache

from act_lens.errors import ConfigError
from act_lens.tasks.base import Task
from act_lens.tasks.builtin import BUILTIN_NAME, builtin_task
from act_lens.tasks.classification import classification_tasks
from act_lens.tasks.multiple_choice import multiple_choice_tasks

BUILTIN_TASK: str = BUILTIN_NAME


@cache
def _tasks() -> dict[str, Task]:
    # Built on first use; task objects are frozen and read nothing until ``load``.
    tasks: list[Task] = [*classification_tasks(), *multiple_choice_tasks(), builtin_task()]
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


def get_task(name: str) -> Task:
    """The task registered under ``name``.

    Args:
        name: a registry name (see :func:`task_names`).

    Returns:
        The (shared, immutable) task object.

    Raises:
        ConfigError: unknown name; the message lists the known ones.

    Example:
        >>> task = get_task("trec")
        >>> task.kind, task.label_words[0]
        ('classification', 'Abbreviation')
    """
    tasks = _tasks()
    if name not in tasks:
        raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(tasks)}")
    return tasks[name]
