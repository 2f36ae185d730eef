"""Multiple-choice tasks: prompt format and the eight benchmark definitions.

Prompt = instruction, blank line, demonstrations, then the query block::

    Question: <question>
    A. <option 0>
    B. <option 1>
    Answer:

scored by the next token, the option letter (``choices = (" A", " B", ...)``). Demos end
``"Answer: B"``. ``Prompt.context`` is the same prompt in lm-eval cloze style (no
lettered options; demos answered with the option text) and ``Prompt.continuations`` are
``" " + option text``, for log-likelihood scoring of whole options.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

from act_lens.errors import DataError
from act_lens.evaluation.tasks.base import Example, Prompt, Task
from act_lens.evaluation.tasks.loaders import hellaswag_txt, mmlu_csv
from act_lens.evaluation.tasks.loaders_json import copa_jsonl, piqa_jsonl, question_jsonl
from act_lens.evaluation.tasks.records import FileReader
from act_lens.evaluation.tasks.splits import FileSplits

LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class MultipleChoiceTask(Task):
    """A task scored by the logit of the gold option letter.

    ``instruction`` may contain ``{subject}``, filled from ``meta["subject"]`` with
    underscores as spaces (MMLU).

    Attributes:
        question_format: the question line as a format string over the example's fields
            (``"{question}"``; COPA's paper prompt ``"{premise} What is the {asks}?"``).
        question_prefix: text before the question line (``"Question: "``; ``""`` in the
            paper prompts).
    """

    question_format: str = "{question}"
    question_prefix: str = "Question: "

    def instruction_for(self, example: Example) -> str:
        """The instruction, with ``{subject}`` filled for ``example`` when present."""
        if "{subject}" not in self.instruction:
            return self.instruction
        subject = example.meta.get("subject", "")
        return self.instruction.format(subject=subject.replace("_", " ") or "general knowledge")

    def render(self, example: Example, answered: bool, lettered: bool = True) -> str:
        """The question block of ``example``: lettered options or cloze style.

        Args:
            example: the item.
            answered: append the answer (the letter, or the option text in cloze style).
            lettered: list the options as ``"A. ..."`` lines (``False``: lm-eval cloze context).

        Raises:
            DataError: no question field, too many options, or a label out of range.
        """
        if "question" not in example.fields or not example.options:
            raise DataError(
                f"example {example.uid} needs a 'question' field and options for task {self.name!r}"
            )
        if len(example.options) > len(LETTERS):
            raise DataError(
                f"example {example.uid} has {len(example.options)} options; at most 26 are supported"
            )
        try:
            question = self.question_format.format(**example.fields)
        except KeyError as err:
            raise DataError(
                f"example {example.uid} lacks field {err} of task {self.name!r}"
            ) from err
        lines = [f"{self.question_prefix}{question}"]
        if lettered:
            lines += [f"{LETTERS[i]}. {option}" for i, option in enumerate(example.options)]
        answer = "Answer:"
        if answered:
            if not 0 <= example.label < len(example.options):
                raise DataError(
                    f"example {example.uid} has label {example.label} for {len(example.options)} options"
                )
            answer += " " + (LETTERS[example.label] if lettered else example.options[example.label])
        return "\n".join([*lines, answer])

    def build(self, example: Example, demos: Sequence[Example] = ()) -> Prompt:
        """Fill the prompt for ``example`` after the ``demos``.

        Args:
            example: the query.
            demos: demonstrations, answered with their option letter (text in ``context``).

        Returns:
            A prompt with ``choices`` ``(" A", " B", ...)`` and cloze ``context`` /
            ``continuations``.

        Raises:
            DataError: see :meth:`render`.

        Example:
            >>> task = get_task("piqa")
            >>> ex = Example("piqa:eval:0", {"question": "Open a jar."}, 1, ("Bite it.", "Twist the lid."))
            >>> task.build(ex).text.splitlines()[-3:]
            ['A. Bite it.', 'B. Twist the lid.', 'Answer:']
        """
        head = f"{self.instruction_for(example)}\n\n"
        blocks = [self.render(d, answered=True) for d in demos]
        text = head + "\n\n".join([*blocks, self.render(example, answered=False)])
        cloze = [self.render(d, answered=True, lettered=False) for d in demos]
        context = head + "\n\n".join([*cloze, self.render(example, answered=False, lettered=False)])
        choices = tuple(f" {LETTERS[i]}" for i in range(len(example.options)))
        continuations = tuple(f" {option}" for option in example.options)
        return Prompt(
            example.uid, text, choices, example.label, context, continuations, dict(example.meta)
        )


def _mc(
    name: str,
    instruction: str,
    description: str,
    layout: FileSplits,
    read_file: FileReader,
    aliases: dict[str, str],
    train_split: str | None = "train",
) -> MultipleChoiceTask:
    return MultipleChoiceTask(
        name=name, kind="multiple_choice", label_words=(), instruction=instruction,
        train_split=train_split, eval_split="eval", description=description, folder=name,
        layout=layout, read_file=read_file, aliases=aliases,
    )  # fmt: skip


def multiple_choice_tasks() -> list[MultipleChoiceTask]:
    """The eight benchmark multiple-choice tasks of the paper.

    Returns:
        New task objects (nothing is read from disk).

    Example:
        >>> [t.name for t in multiple_choice_tasks()][:2]
        ['hellaswag', 'arc_easy']
    """
    science = "Answer the science question by choosing the correct option."
    arc = "ARC-{}: train {}, eval = validation {} (raw ARC jsonl); test in llm-foundry format"
    return [
        _mc("hellaswag", "Choose the ending that best continues the text.",
            "HellaSwag validation 10042 (lm-eval preprocessed text); no train split",
            FileSplits({"eval": ("hellaswag_val_full.txt",)}), hellaswag_txt,
            {"validation": "eval"}, train_split=None),
        _mc("arc_easy", science, arc.format("Easy", 2251, 570),
            FileSplits({"train": ("ARC-Easy-Train.jsonl",), "eval": ("ARC-Easy-Dev.jsonl",),
                        "test": ("llm-foundry/arc_easy.jsonl",)}),
            question_jsonl, {"validation": "eval", "dev": "eval"}),
        _mc("arc_challenge", science, arc.format("Challenge", 1119, 299),
            FileSplits({"train": ("ARC-Challenge-Train.jsonl",), "eval": ("ARC-Challenge-Dev.jsonl",),
                        "test": ("llm-foundry/arc_challenge.jsonl",)}),
            question_jsonl, {"validation": "eval", "dev": "eval"}),
        _mc("piqa", "Choose the better solution to reach the goal.",
            "PIQA validation 1838; no train split",
            FileSplits({"eval": ("valid.jsonl",)}), piqa_jsonl,
            {"validation": "eval", "valid": "eval"}, train_split=None),
        _mc("openbookqa", science,
            "OpenBookQA main: train 4957; eval = TEST 500 (the validation split is not available)",
            FileSplits({"train": ("train.jsonl",), "eval": ("test.jsonl",)}), question_jsonl,
            {"test": "eval"}),
        _mc("copa", "Choose the more plausible cause or effect of the premise.",
            "COPA (SuperGLUE): eval = validation 100; train = 64 FewGLUE examples only",
            FileSplits({"train": ("train.jsonl", "dev32.jsonl"), "eval": ("val.jsonl",)}), copa_jsonl,
            {"validation": "eval", "val": "eval"}),
        _mc("commonsense_qa", "Answer the commonsense question by choosing the correct option.",
            "CommonsenseQA: train 9741, eval = validation 1221",
            FileSplits({"train": ("train_rand_split.jsonl",), "eval": ("dev_rand_split.jsonl",)}),
            question_jsonl, {"validation": "eval", "dev": "eval"}),
        _mc("mmlu", "The following is a multiple choice question about {subject}. Choose the correct answer.",
            "MMLU 57 subjects: train = dev 285 (5 per subject), eval = val 1531 (not test)",
            FileSplits({"train": ("dev/*_dev.csv",), "eval": ("val/*_val.csv",), "test": ("test/*_test.csv",)}),
            mmlu_csv, {"dev": "train", "val": "eval", "validation": "eval"}),
    ]  # fmt: skip
