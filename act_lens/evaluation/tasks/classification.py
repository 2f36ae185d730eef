"""Classification tasks: prompt format and the nine benchmark definitions.

Prompt = instruction, blank line, demonstrations (each the filled template with its
answer word after one space), blank-line separated, then the query template ending right
before the answer, e.g. ``"Sentence: ...\\nSentiment:"``. Field names and label words
follow the task table of the paper (``docs/models.md``, *Tasks*).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from act_lens.errors import DataError
from act_lens.evaluation.tasks.base import Example, Prompt, Task
from act_lens.evaluation.tasks.loaders import (
    TREC_COARSE,
    agnews_csv,
    dbpedia_csv,
    label_lines,
    suffix_lines,
    trec_lines,
)
from act_lens.evaluation.tasks.loaders_json import agnews_metaicl, boolq_jsonl, cb_jsonl
from act_lens.evaluation.tasks.records import FileReader, Record
from act_lens.evaluation.tasks.splits import DerivedSplits, FileSplits, mr_rule, subj_rule

# Each TREC coarse label name (HF `trec` coarse_label order) maps to the word at its position.
TREC_WORDS = ("Abbreviation", "Entity", "Description", "Person", "Location", "Number")
AGNEWS_CLASSES = ("World", "Sports", "Business", "Science/Tech")  # classes.txt, 1-based order
AGNEWS_WORDS = ("World", "Sports", "Business", "Technology")
# DBPedia-14 official classes (classes.txt order = HF dbpedia_14 ids) and their label words.
DBPEDIA_CLASSES = (
    "Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder",
    "MeanOfTransportation", "Building", "NaturalPlace", "Village", "Animal", "Plant",
    "Album", "Film", "WrittenWork",
)  # fmt: skip
DBPEDIA_WORDS = (
    "company", "school", "artist", "sport", "politics", "transportation", "building",
    "nature", "village", "animal", "plant", "album", "film", "book",
)  # fmt: skip
# Class names in the id order of the unofficial DHIM subset (its meta.txt; SOURCE.md table).
DBPEDIA_DHIM_CLASSES = (
    "Artist", "Company", "OfficeHolder", "Building", "Village", "Plant",
    "EducationalInstitution", "Animal", "Album", "WrittenWork", "NaturalPlace",
    "MeanOfTransportation", "Athlete", "Film",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ClassificationTask(Task):
    """A task scored by the next-token logits of its label words.

    Attributes:
        template: ``(display name, field key)`` per template line, e.g. ``(("Sentence", "sentence"),)``.
        answer_name: name of the answer line, e.g. ``"Sentiment"``.
        format: a format string over the example's fields that replaces the line-per-field
            template, ending right before the answer (the ``paper`` prompts); None: use
            ``template`` and ``answer_name``.
    """

    template: tuple[tuple[str, str], ...]
    answer_name: str
    format: str | None = None

    def render(self, example: Example, answered: bool) -> str:
        """The filled template of ``example``, with its answer word when ``answered``.

        Raises:
            DataError: a template field is missing or the label is out of range.
        """
        if self.format is not None:
            try:
                answer = self.format.format(**example.fields)
            except KeyError as err:
                raise DataError(
                    f"example {example.uid} lacks field {err} of task {self.name!r}"
                ) from err
            lines: list[str] = []
        else:
            missing = [key for _, key in self.template if key not in example.fields]
            if missing:
                raise DataError(
                    f"example {example.uid} lacks fields {missing} of task {self.name!r}"
                )
            lines = [f"{name}: {example.fields[key]}" for name, key in self.template]
            answer = f"{self.answer_name}:"
        if answered:
            if not 0 <= example.label < len(self.label_words):
                raise DataError(
                    f"example {example.uid} has label {example.label}, outside 0..{len(self.label_words) - 1}"
                )
            answer += f" {self.label_words[example.label]}"
        return "\n".join([*lines, answer])

    def build(self, example: Example, demos: Sequence[Example] = ()) -> Prompt:
        """Fill the prompt for ``example`` after the ``demos``.

        Args:
            example: the query.
            demos: demonstrations, rendered with their answers in the given order.

        Returns:
            A prompt whose ``choices`` are the label words with a leading space.

        Raises:
            DataError: a field is missing or a demo's label is out of range.

        Example:
            >>> task = get_task("sst2")
            >>> p = task.build(Example("sst2:eval:0", {"sentence": "fine ."}, 1))
            >>> p.text.splitlines()[-2:], p.choices
            (['Sentence: fine .', 'Sentiment:'], (' negative', ' positive'))
        """
        blocks = [self.render(d, answered=True) for d in demos] + [
            self.render(example, answered=False)
        ]
        text = f"{self.instruction}\n\n" + "\n\n".join(blocks)
        choices = tuple(f" {w}" for w in self.label_words)
        return Prompt(example.uid, text, choices, example.label, text, choices, dict(example.meta))


def _by_suffix(jsonl: FileReader, other: FileReader) -> FileReader:
    """Read ``.jsonl`` files with ``jsonl`` (DataICL format), anything else with ``other``."""

    def read(path: Path) -> list[Record]:
        return jsonl(path) if path.suffix == ".jsonl" else other(path)

    return read


def classification_tasks() -> list[ClassificationTask]:
    """The nine benchmark classification tasks of the paper, in the table's order.

    Returns:
        New task objects (nothing is read from disk).

    Example:
        >>> [t.name for t in classification_tasks()][:3]
        ['sst2', 'sst5', 'mr']
    """
    sentence = (("Sentence", "sentence"),)
    return [
        ClassificationTask(
            name="sst2", kind="classification", label_words=("negative", "positive"),
            instruction="Classify the sentiment of each sentence as negative or positive.",
            train_split="train", eval_split="eval", folder="sst2",
            description="SST-2 sentence level: train 6920 (not the 67k GLUE phrases), eval = SST dev 872",
            layout=FileSplits({"train": ("stsa.binary.train",), "eval": ("stsa.binary.dev",), "test": ("stsa.binary.test",)}),
            read_file=label_lines(2), aliases={"dev": "eval", "validation": "eval"},
            template=sentence, answer_name="Sentiment",
        ),
        ClassificationTask(
            name="sst5", kind="classification",
            label_words=("terrible", "negative", "neutral", "positive", "great"),
            instruction="Classify the sentiment of each sentence as terrible, negative, neutral, positive or great.",
            train_split="train", eval_split="eval", folder="sst5",
            description="SST-5 sentence level: train 8544, eval = dev 1101",
            layout=FileSplits({"train": ("stsa.fine.train",), "eval": ("stsa.fine.dev",), "test": ("stsa.fine.test",)}),
            read_file=label_lines(5), aliases={"dev": "eval", "validation": "eval"},
            template=sentence, answer_name="Sentiment",
        ),
        ClassificationTask(
            name="mr", kind="classification", label_words=("negative", "positive"),
            instruction="Classify the sentiment of each movie review as negative or positive.",
            train_split="train", eval_split="eval", folder="mr",
            description="MR (rotten_tomatoes): HF split rule, train 8530 / eval (validation) 1066 / test 1066",
            layout=DerivedSplits(("rt-polarity.pos", "rt-polarity.neg"), ("train", "eval", "test"), mr_rule),
            read_file=suffix_lines({".pos": 1, ".neg": 0}), aliases={"validation": "eval"},
            template=(("Review", "sentence"),), answer_name="Sentiment",
        ),
        ClassificationTask(
            name="subj", kind="classification", label_words=("objective", "subjective"),
            instruction="Classify each input as objective or subjective.",
            train_split="train", eval_split="eval", folder="subj",
            description="SUBJ: our seeded split train 8000 / eval 2000 (sizes of SetFit/subj, not its membership)",
            layout=DerivedSplits(("subj.objective", "subj.subjective"), ("train", "eval"), subj_rule),
            read_file=suffix_lines({".objective": 0, ".subjective": 1}), aliases={"test": "eval"},
            template=(("Input", "sentence"),), answer_name="Type",
        ),
        ClassificationTask(
            name="agnews", kind="classification", label_words=AGNEWS_WORDS,
            instruction="Classify the topic of each news article as World, Sports, Business or Technology.",
            train_split="train", eval_split="eval", folder="agnews",
            description="AG News: eval = test 7600; train = DataICL balanced 1000-example subset",
            layout=FileSplits({"train": ("dataicl/ag_news_500_0_train.jsonl",), "eval": ("test.csv",)}),
            read_file=_by_suffix(
                agnews_metaicl(AGNEWS_WORDS),
                agnews_csv(dict(zip(AGNEWS_CLASSES, range(4), strict=True)), AGNEWS_CLASSES),
            ),
            aliases={"test": "eval"}, template=(("Article", "text"),), answer_name="Category",
        ),
        ClassificationTask(
            name="trec", kind="classification", label_words=TREC_WORDS,
            instruction=(
                "Classify each question by the type of its answer: "
                "Abbreviation, Entity, Description, Person, Location or Number."
            ),
            train_split="train", eval_split="eval", folder="trec",
            description="TREC coarse: train 5452, eval = test 500; labels mapped by coarse name",
            layout=FileSplits({"train": ("TREC.train",), "eval": ("TREC.test",)}),
            read_file=trec_lines(TREC_COARSE), aliases={"test": "eval"},
            template=(("Question", "question"),), answer_name="Type",
        ),
        ClassificationTask(
            name="cb", kind="classification", label_words=("Yes", "No", "Maybe"),
            instruction="Read the premise and decide whether it entails the hypothesis. Answer Yes, No or Maybe.",
            train_split="train", eval_split="eval", folder="cb",
            description="CB (SuperGLUE): train 250, eval = validation 56",
            layout=FileSplits({"train": ("train.jsonl",), "eval": ("val.jsonl",)}),
            read_file=cb_jsonl, aliases={"validation": "eval", "val": "eval"},
            template=(("Premise", "premise"), ("Hypothesis", "hypothesis")), answer_name="Answer",
        ),
        ClassificationTask(
            name="boolq", kind="classification", label_words=("False", "True"),
            instruction="Read the text and answer the question with True or False.",
            train_split="train", eval_split="eval", folder="boolq",
            description=(
                "BoolQ (SuperGLUE): eval = validation 3270; train = DataICL balanced 1000 "
                "(passages without titles); fewglue = the 64 raw FewGLUE examples"
            ),
            layout=FileSplits({
                "train": ("dataicl/boolq_500_0_train.jsonl",),
                "eval": ("val.jsonl",),
                "fewglue": ("train.jsonl", "dev32.jsonl"),
            }),
            read_file=boolq_jsonl, aliases={"validation": "eval", "val": "eval"},
            template=(("Text", "passage"), ("Question", "question")), answer_name="Answer",
        ),
        ClassificationTask(
            name="dbpedia", kind="classification", label_words=DBPEDIA_WORDS,
            instruction="Classify the topic of each input as one of: " + ", ".join(DBPEDIA_WORDS) + ".",
            train_split="train", eval_split="eval", folder="dbpedia",
            description=(
                "DBPedia-14 UNOFFICIAL subset (DHIM re-split, relabelled, commas stripped): "
                "eval = DHIM test 5000, train = DHIM val 5000; not comparable to DBPedia-14 test results"
            ),
            layout=FileSplits({
                "train": ("dhim_subset_NOT_OFFICIAL/val.csv",),
                "eval": ("dhim_subset_NOT_OFFICIAL/test.csv",),
            }),
            read_file=dbpedia_csv(
                dict(zip(DBPEDIA_CLASSES, range(14), strict=True)), DBPEDIA_CLASSES, DBPEDIA_DHIM_CLASSES
            ),
            aliases={"dhim_val": "train", "dhim_test": "eval"},
            template=(("Input", "content"),), answer_name="Type",
        ),
    ]  # fmt: skip
