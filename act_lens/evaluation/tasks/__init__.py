"""Benchmark tasks: raw-data loaders, splits and prompt building.

Every task of the paper (9 classification, 8 multiple choice) reads the raw files of a
directory laid out like ``shared/data``; the built-in ``reviews`` task ships with the
package and needs no data. Tasks are data (no torch, no model). May import:
``act_lens.errors`` only.

Example:
    >>> from act_lens.evaluation.tasks import get_task
    >>> task = get_task("sst2")
    >>> dev = task.load("/work/shared/data")            # eval split
    >>> demos = task.sample_demos(task.load("/work/shared/data", "train"), k=1, seed=0)
    >>> prompt = task.build(dev[0], demos)
    >>> prompt.choices
    (' negative', ' positive')
"""

from act_lens.evaluation.tasks.base import Example, Prompt, Task
from act_lens.evaluation.tasks.classification import ClassificationTask
from act_lens.evaluation.tasks.multiple_choice import MultipleChoiceTask
from act_lens.evaluation.tasks.registry import BUILTIN_TASK, get_task, task_names

__all__ = [
    "BUILTIN_TASK",
    "ClassificationTask",
    "Example",
    "MultipleChoiceTask",
    "Prompt",
    "Task",
    "get_task",
    "task_names",
]
