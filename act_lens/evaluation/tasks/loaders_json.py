"""Readers for the JSON-lines raw formats of ``shared/data``.

SuperGLUE files (CB, BoolQ, COPA), MetaICL "DataICL" files (AG News, BoolQ; these are
prompt-formatted and parsed back into fields), the ARC-style question files (ARC,
OpenBookQA, CommonsenseQA), llm-foundry's converted ``{query, choices, gold}`` files
(ARC test) and PIQA (objects + a line-aligned labels file).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from act_lens.evaluation.tasks._io import fail, get_str, iter_jsonl, read_lines, source
from act_lens.evaluation.tasks.records import FileReader, Record

CB_LABELS = {"entailment": 0, "contradiction": 1, "neutral": 2}
COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}
AGNEWS_PREFIX, AGNEWS_SUFFIX = "Article: ", "\nAnswer:"
BOOLQ_TEXT, BOOLQ_QUESTION = "\n\nText: ", "\nQuestion: "


def _label(obj: dict[str, Any], path: Path, line: int) -> Any:
    if "label" not in obj:
        fail(path, line, "no 'label' field: unlabelled (test) files cannot be evaluated")
    return obj["label"]


def cb_jsonl(path: Path) -> list[Record]:
    """Read SuperGLUE CB: ``premise``, ``hypothesis``, ``label`` (entailment/contradiction/neutral).

    Label ids follow HF ``super_glue/cb``: entailment 0, contradiction 1, neutral 2.
    """
    out = []
    for number, obj in iter_jsonl(path):
        label = _label(obj, path, number)
        if label not in CB_LABELS:
            fail(path, number, f"expected label in {list(CB_LABELS)}, got {label!r}")
        fields = {k: get_str(obj, k, path, number).strip() for k in ("premise", "hypothesis")}
        out.append(Record(fields, CB_LABELS[label], meta=source(path, number)))
    return out


def _boolq_metaicl(obj: dict[str, Any], path: Path, line: int) -> Record:
    # "Exercise: ...\n\nText: <passage>\nQuestion: <question>?" -> fields; the title is gone.
    text = get_str(obj, "input", path, line)
    head, sep, rest = text.partition(BOOLQ_TEXT)
    passage, sep2, question = rest.rpartition(BOOLQ_QUESTION)
    output = obj.get("output")
    if not sep or not sep2 or output not in ("no", "yes"):
        fail(
            path,
            line,
            "expected MetaICL BoolQ input '...\\n\\nText: ...\\nQuestion: ...' and output no/yes",
        )
    fields = {"passage": passage.strip(), "question": question.strip().removesuffix("?")}
    return Record(fields, int(output == "yes"), meta={**source(path, line), "format": "dataicl"})


def boolq_jsonl(path: Path) -> list[Record]:
    """Read BoolQ: SuperGLUE lines (``question``, ``passage``, boolean ``label``) or DataICL lines.

    DataICL lines (``{"input": "Exercise: ...\\n\\nText: <passage>\\nQuestion: <question>?",
    "output": "yes"|"no"}``) are parsed back: passage between ``Text:`` and the last
    ``Question:``, question without the ``?`` the format appends. Their passages lack the
    ``"<title> -- "`` prefix of the SuperGLUE files. Labels: False 0, True 1.
    """
    out = []
    for number, obj in iter_jsonl(path):
        if "input" in obj:
            out.append(_boolq_metaicl(obj, path, number))
            continue
        label = _label(obj, path, number)
        if not isinstance(label, bool):
            fail(path, number, f"expected a JSON boolean label, got {label!r}")
        fields = {k: get_str(obj, k, path, number).strip() for k in ("passage", "question")}
        out.append(Record(fields, int(label), meta=source(path, number)))
    return out


def agnews_metaicl(label_words: Sequence[str]) -> FileReader:
    """Reader for AG News DataICL lines ``{"input": "Article: <text>\\nAnswer:", "output": <word>}``.

    Args:
        label_words: AG News label words in id order; ``output`` must be one of them.

    Returns:
        A reader of one file; the text is the HF ``text`` (prefix and suffix stripped).
    """
    index = {w: i for i, w in enumerate(label_words)}

    def read(path: Path) -> list[Record]:
        out = []
        for number, obj in iter_jsonl(path):
            text = get_str(obj, "input", path, number)
            if (
                not (text.startswith(AGNEWS_PREFIX) and text.endswith(AGNEWS_SUFFIX))
                or obj.get("output") not in index
            ):
                fail(
                    path,
                    number,
                    f"expected input 'Article: ...\\nAnswer:' and output in {list(index)}",
                )
            body = text[len(AGNEWS_PREFIX) : -len(AGNEWS_SUFFIX)].strip()
            out.append(
                Record(
                    {"text": body},
                    index[obj["output"]],
                    meta={**source(path, number), "format": "dataicl"},
                )
            )
        return out

    return read


def copa_jsonl(path: Path) -> list[Record]:
    """Read SuperGLUE COPA; the question is the premise plus "What was the cause?" or
    "What happened as a result?", the options ``choice1``, ``choice2``.
    """
    out = []
    for number, obj in iter_jsonl(path):
        label, asks = _label(obj, path, number), obj.get("question")
        if label not in (0, 1) or asks not in COPA_QUESTIONS:
            fail(
                path,
                number,
                f"expected label 0/1 and question cause/effect, got {label!r}, {asks!r}",
            )
        premise = get_str(obj, "premise", path, number).strip()
        options = tuple(get_str(obj, k, path, number).strip() for k in ("choice1", "choice2"))
        fields = {"question": f"{premise} {COPA_QUESTIONS[asks]}", "premise": premise, "asks": asks}
        out.append(Record(fields, label, options, meta=source(path, number)))
    return out


def _choices(obj: dict[str, Any], path: Path, line: int) -> tuple[list[str], list[str]]:
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        fail(path, line, "expected a non-empty list 'choices' of {text, label}")
    labels, texts = [], []
    for choice in choices:
        if not isinstance(choice, dict):
            fail(path, line, "expected each choice to be an object {text, label}")
        labels.append(str(choice.get("label")))
        texts.append(get_str(choice, "text", path, line).strip())
    return labels, texts


def question_jsonl(path: Path) -> list[Record]:
    """Read ARC / OpenBookQA / CommonsenseQA lines, or llm-foundry's converted lines.

    Native: ``{"id", "question": {"stem", "choices": [{"text", "label"}...]}, "answerKey"}``;
    the label is the position of the choice whose label equals ``answerKey`` (ARC uses
    ``A``-``E`` or ``1``-``4``). Converted: ``{"query": "Question: <stem>", "choices": [...],
    "gold": <index>}``.
    """
    out = []
    for number, obj in iter_jsonl(path):
        meta = source(path, number)
        if "query" in obj:
            choices, gold = obj.get("choices"), obj.get("gold")
            if (
                not isinstance(choices, list)
                or not isinstance(gold, int)
                or not 0 <= gold < len(choices)
            ):
                fail(
                    path, number, "expected converted format {query, choices, gold (0-based index)}"
                )
            stem = get_str(obj, "query", path, number).strip().removeprefix("Question:").strip()
            out.append(
                Record({"question": stem}, gold, tuple(str(c).strip() for c in choices), meta)
            )
            continue
        question = obj.get("question")
        if not isinstance(question, dict):
            fail(path, number, "expected an object 'question' with 'stem' and 'choices'")
        labels, texts = _choices(question, path, number)
        key = obj.get("answerKey")
        if key is None:
            fail(path, number, "no 'answerKey': unlabelled (test) files cannot be evaluated")
        if str(key) not in labels:
            fail(path, number, f"answerKey {key!r} is not one of the choice labels {labels}")
        meta = {**meta, "id": str(obj.get("id", ""))}
        if "question_concept" in question:
            meta["concept"] = str(question["question_concept"])
        fields = {"question": get_str(question, "stem", path, number).strip()}
        out.append(Record(fields, labels.index(str(key)), tuple(texts), meta))
    return out


def piqa_jsonl(path: Path) -> list[Record]:
    """Read PIQA ``{"goal", "sol1", "sol2"}`` lines with the labels of ``<stem>-labels.lst``.

    ``valid.jsonl`` takes its labels from the line-aligned ``valid-labels.lst`` next to it
    (0: sol1, 1: sol2).
    """
    labels_path = path.with_name(f"{path.stem}-labels.lst")
    if not labels_path.is_file():
        fail(
            path,
            None,
            f"no labels file {labels_path.name} next to it (PIQA test files are unlabelled)",
        )
    labels = read_lines(labels_path)
    out = []
    for number, obj in iter_jsonl(path):
        if number > len(labels) or labels[number - 1].strip() not in ("0", "1"):
            fail(
                labels_path,
                number,
                "expected a label 0 or 1 on this line, aligned with the jsonl file",
            )
        options = tuple(get_str(obj, k, path, number).strip() for k in ("sol1", "sol2"))
        fields = {"question": get_str(obj, "goal", path, number).strip()}
        out.append(Record(fields, int(labels[number - 1]), options, source(path, number)))
    if len(out) != len(labels):
        fail(labels_path, None, f"has {len(labels)} labels for {len(out)} items in {path.name}")
    return out
