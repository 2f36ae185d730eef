"""Loading a task from the Hugging Face hub (``data="hf:<name>[:<config>]"``).

``datasets`` is imported only here and only when called. Each task has a row converter
from the HF schema to a :class:`Record` with the same fields and label ids as the local
readers, so prompts are identical whichever source is used. Without network the call
fails with a :class:`DataError` that points to the local data directory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from act_lens.errors import DataError
from act_lens.evaluation.tasks.loaders import TREC_COARSE
from act_lens.evaluation.tasks.loaders_json import CB_LABELS, COPA_QUESTIONS
from act_lens.evaluation.tasks.records import Record

Row = Mapping[str, Any]
Converter = Callable[[Row, Any], Record]

# canonical split -> HF split name, per task; other names are passed through unchanged.
HF_SPLITS: dict[str, dict[str, str]] = {
    "agnews": {"eval": "test"},
    "trec": {"eval": "test"},
    "dbpedia": {"eval": "test"},
    "openbookqa": {"eval": "validation"},
    "mmlu": {"train": "dev", "eval": "validation"},
}
DEFAULT_SPLITS = {"train": "train", "eval": "validation"}


def _text(row: Row, *keys: str) -> str:
    for key in keys:
        if isinstance(row.get(key), str):
            return row[key].strip()
    raise DataError(f"hub row has none of the fields {list(keys)}; got {sorted(row)}")


def _single(key: str) -> Converter:
    def convert(row: Row, features: Any) -> Record:
        return Record({key: _text(row, "sentence", "text")}, int(row["label"]))

    return convert


def _trec(row: Row, features: Any) -> Record:
    # Map through the ClassLabel names, so the id order of the hub copy does not matter.
    column = "coarse_label" if "coarse_label" in row else "label-coarse"
    value = row[column]
    names = getattr(features.get(column), "names", None) if features is not None else None
    coarse = names[value] if names else TREC_COARSE[value]
    return Record(
        {"question": _text(row, "text")}, TREC_COARSE.index(coarse), meta={"coarse": coarse}
    )


def _boolq(row: Row, features: Any) -> Record:
    label = row["label"] if "label" in row else row["answer"]
    return Record(
        {"passage": _text(row, "passage"), "question": _text(row, "question")}, int(label)
    )


def _cb(row: Row, features: Any) -> Record:
    label = row["label"]
    label = CB_LABELS[label] if isinstance(label, str) else int(label)
    return Record({"premise": _text(row, "premise"), "hypothesis": _text(row, "hypothesis")}, label)


def _choices(row: Row, key: str = "answerKey") -> tuple[tuple[str, ...], int]:
    choices = row["choices"]
    labels = [str(x) for x in choices["label"]]
    return tuple(t.strip() for t in choices["text"]), labels.index(str(row[key]))


def _qa(stem: str) -> Converter:
    def convert(row: Row, features: Any) -> Record:
        options, label = _choices(row)
        return Record({"question": _text(row, stem)}, label, options)

    return convert


def _hellaswag_text(text: str) -> str:
    # The lm-eval preprocessing that produced the local text file.
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ").strip()


def _hellaswag(row: Row, features: Any) -> Record:
    ctx = f"{row['ctx_a']} {row['ctx_b'].capitalize()}" if "ctx_a" in row else row["ctx"]
    question = _hellaswag_text(f"{row['activity_label']}: {ctx}")
    options = tuple(_hellaswag_text(e) for e in row["endings"])
    return Record(
        {"question": question},
        int(row["label"]),
        options,
        {"activity_label": row["activity_label"]},
    )


def _piqa(row: Row, features: Any) -> Record:
    return Record(
        {"question": _text(row, "goal")},
        int(row["label"]),
        (row["sol1"].strip(), row["sol2"].strip()),
    )


def _copa(row: Row, features: Any) -> Record:
    premise = _text(row, "premise")
    fields = {
        "question": f"{premise} {COPA_QUESTIONS[row['question']]}",
        "premise": premise,
        "asks": row["question"],
    }
    return Record(fields, int(row["label"]), (row["choice1"].strip(), row["choice2"].strip()))


def _mmlu(row: Row, features: Any) -> Record:
    answer = row["answer"]
    label = "ABCD".index(answer) if isinstance(answer, str) else int(answer)
    options = tuple(str(c).strip() for c in row["choices"])
    return Record(
        {"question": _text(row, "question")},
        label,
        options,
        {"subject": str(row.get("subject", ""))},
    )


CONVERTERS: dict[str, Converter] = {
    "sst2": _single("sentence"),
    "sst5": _single("sentence"),
    "mr": _single("sentence"),
    "subj": _single("sentence"),
    "agnews": _single("text"),
    "trec": _trec,
    "cb": _cb,
    "boolq": _boolq,
    "dbpedia": lambda row, features: Record({"content": _text(row, "content")}, int(row["label"])),
    "hellaswag": _hellaswag,
    "arc_easy": _qa("question"),
    "arc_challenge": _qa("question"),
    "piqa": _piqa,
    "openbookqa": _qa("question_stem"),
    "copa": _copa,
    "commonsense_qa": _qa("question"),
    "mmlu": _mmlu,
}


def load_hub_records(task: str, spec: str, split: str) -> list[Record]:
    """Load ``split`` of a task from the hub with ``datasets.load_dataset``.

    Args:
        task: registry name of the task (selects the row converter).
        spec: ``"<dataset name>[:<config>]"``, e.g. ``"super_glue:cb"``, ``"cais/mmlu:all"``.
        split: canonical split (``"eval"``/``"train"`` are mapped to the HF split names).

    Returns:
        Records in hub order.

    Raises:
        DataError: ``datasets`` missing, hub unreachable, or rows of an unexpected schema.

    Example:
        >>> records = load_hub_records("sst2", "glue:sst2", "eval")
        >>> len(records)
        872
    """
    if task not in CONVERTERS:
        raise DataError(f"task {task!r} cannot be loaded from the hub; pass a local data file")
    name, _, config = spec.partition(":")
    if not name:
        raise DataError(f"expected 'hf:<dataset name>[:<config>]', got 'hf:{spec}'")
    hf_split = HF_SPLITS.get(task, {}).get(split, DEFAULT_SPLITS.get(split, split))
    try:
        import datasets
    except ImportError as err:
        raise DataError(
            "loading 'hf:' data needs the `datasets` package (pip install datasets); "
            "or pass a local data directory laid out like shared/data (--data-dir)"
        ) from err
    try:
        rows = datasets.load_dataset(name, config or None, split=hf_split)
    except Exception as err:  # network, missing dataset, bad config: all reported the same way
        raise DataError(
            f"could not load {name!r} (config {config or None!r}, split {hf_split!r}) from the "
            f"Hugging Face hub ({type(err).__name__}: {err}); the hub may be unreachable: pass a "
            f"local data directory laid out like shared/data instead (--data-dir)"
        ) from err
    features = getattr(rows, "features", None)
    try:
        return [CONVERTERS[task](row, features) for row in rows]
    except (KeyError, ValueError, TypeError, IndexError) as err:
        raise DataError(
            f"hub dataset {name!r} does not have the schema task {task!r} expects: {err!r}"
        ) from err
