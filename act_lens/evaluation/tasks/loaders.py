"""Readers for the line- and CSV-based raw formats of ``shared/data``.

Each factory returns a reader ``Path -> list[Record]`` for one file. Label ids are the
task's own ids (index into its label words), mapped by name wherever the file names the
class (TREC coarse labels, AG News and DBPedia class lists), never by position alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from act_lens.evaluation.tasks._io import fail, iter_csv, read_lines, source
from act_lens.evaluation.tasks.records import FileReader, Record

TREC_RE = re.compile(r"^([A-Z]+):(\S+) (.+)$")
# HF `trec` coarse_label order (the label ids TREC files are read into).
TREC_COARSE = ("ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM")


def label_lines(n_labels: int, field: str = "sentence") -> FileReader:
    """Reader for ``"<label> <text>"`` lines (SST-2, SST-5), UTF-8.

    Args:
        n_labels: labels must be integers in ``[0, n_labels)``.
        field: key of the text in ``Example.fields``.

    Returns:
        A reader of one file.

    Example:
        >>> read = label_lines(2)
        >>> read(Path("sst2/stsa.binary.dev"))[0].label
        0
    """

    def read(path: Path) -> list[Record]:
        out = []
        for number, line in enumerate(read_lines(path), start=1):
            head, _, text = line.partition(" ")
            if not head.isdigit() or int(head) >= n_labels or not text.strip():
                fail(
                    path,
                    number,
                    f"expected '<label 0..{n_labels - 1}> <sentence>', got {line[:60]!r}",
                )
            out.append(Record({field: text.strip()}, int(head), meta=source(path, number)))
        return out

    return read


def suffix_lines(
    labels: Mapping[str, int], encoding: str = "latin-1", field: str = "sentence"
) -> FileReader:
    """Reader for one-sentence-per-line files whose suffix names the class (MR, SUBJ).

    Lines are decoded as ``encoding`` (latin-1 for MR and SUBJ), split on ``"\\n"`` only and
    stripped, as the HF ``rotten_tomatoes`` loader does.

    Args:
        labels: file suffix -> label id, e.g. ``{".pos": 1, ".neg": 0}``.
        encoding: text encoding of the files.
        field: key of the text in ``Example.fields``.

    Returns:
        A reader of one file.

    Example:
        >>> read = suffix_lines({".pos": 1, ".neg": 0})
        >>> {r.label for r in read(Path("mr/rt-polarity.pos"))}
        {1}
    """

    def read(path: Path) -> list[Record]:
        if path.suffix not in labels:
            fail(
                path,
                None,
                f"cannot tell the class from the file name: expected a suffix in {sorted(labels)}",
            )
        label = labels[path.suffix]
        out = []
        for number, line in enumerate(read_lines(path, encoding), start=1):
            if not line.strip():
                fail(path, number, "empty line; expected one sentence per line")
            out.append(Record({field: line.strip()}, label, meta=source(path, number)))
        return out

    return read


def trec_lines(coarse_labels: Sequence[str]) -> FileReader:
    """Reader for TREC ``"COARSE:fine question"`` lines (latin-1: ``TREC.train`` has a 0xF0 byte).

    Args:
        coarse_labels: coarse names in label-id order, e.g. ``("ABBR", "ENTY", ...)``; the
            label is the position of the line's coarse name in it.

    Returns:
        A reader of one file; ``meta`` holds ``coarse`` and ``fine``.

    Example:
        >>> read = trec_lines(("ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"))
        >>> read(Path("trec/TREC.test"))[0].meta["coarse"]
        'NUM'
    """
    index = {name: i for i, name in enumerate(coarse_labels)}

    def read(path: Path) -> list[Record]:
        out = []
        for number, line in enumerate(read_lines(path, "latin-1"), start=1):
            match = TREC_RE.match(line)
            if match is None or match.group(1) not in index:
                fail(
                    path,
                    number,
                    f"expected 'COARSE:fine question' with COARSE in {list(index)}, got {line[:60]!r}",
                )
            coarse, fine, question = match.groups()
            meta = {**source(path, number), "coarse": coarse, "fine": fine}
            out.append(Record({"question": question.strip()}, index[coarse], meta=meta))
        return out

    return read


def class_list(path: Path) -> list[str]:
    """Class names of a ``classes.txt`` in 1-based id order.

    Accepts one name per line (DBPedia) or one line ``"1-World, 2-Sports, ..."`` (the AG News
    copy in shared/data).
    """
    lines = [line.strip() for line in read_lines(path) if line.strip()]
    if len(lines) == 1 and re.match(r"^1-", lines[0]):
        names = []
        for i, item in enumerate(lines[0].split(","), start=1):
            head, _, name = item.strip().partition("-")
            if head != str(i) or not name:
                fail(path, 1, f"expected '1-Name, 2-Name, ...', got {lines[0]!r}")
            names.append(name)
        return names
    return lines


def _names_to_labels(path: Path, names: Sequence[str], words: Mapping[str, int]) -> dict[str, int]:
    unknown = [n for n in names if n not in words]
    if unknown:
        fail(path, None, f"unknown class names {unknown}; expected names from {sorted(words)}")
    return {str(i): words[n] for i, n in enumerate(names, start=1)}


def agnews_csv(class_labels: Mapping[str, int], default_classes: Sequence[str]) -> FileReader:
    """Reader for AG News ``test.csv``: ``Class Index,Title,Description`` (header optional).

    The class index is mapped through the sibling ``classes.txt`` (``default_classes`` when
    absent), then from class name to label id. The text is ``title + " " + description`` as in
    HF ``ag_news``; backslash escapes are kept, as HF keeps them.

    Args:
        class_labels: class name -> label id, e.g. ``{"Science/Tech": 3, ...}``.
        default_classes: class names in 1-based id order, used without ``classes.txt``.

    Returns:
        A reader of one file.
    """

    def read(path: Path) -> list[Record]:
        classes_file = path.with_name("classes.txt")
        names = class_list(classes_file) if classes_file.is_file() else list(default_classes)
        ids = _names_to_labels(classes_file, names, class_labels)
        out = []
        for number, row in iter_csv(path):
            if number == 1 and row and row[0] == "Class Index":
                continue
            if len(row) != 3 or row[0] not in ids:
                fail(
                    path,
                    number,
                    f"expected 3 columns 'class index (1-{len(ids)}),title,description', got {row[:1]}",
                )
            text = f"{row[1].strip()} {row[2].strip()}".strip()
            out.append(Record({"text": text}, ids[row[0]], meta=source(path, number)))
        return out

    return read


def dbpedia_csv(
    class_labels: Mapping[str, int], official: Sequence[str], dhim: Sequence[str]
) -> FileReader:
    """Reader for DBPedia CSV files, in either of two layouts.

    * 2 columns ``label,content``: the unofficial DHIM re-split, whose label ids differ from
      the official ones; ids go through the sibling ``meta.txt`` (``"1: Artist"`` lines) or,
      without it, through ``dhim`` (the table of ``shared/data/dbpedia/SOURCE.md``).
      ``meta["subset"]`` is ``"dhim_unofficial"``.
    * 3 columns ``label,title,content``: the official ``dbpedia_csv`` files, 1-based ids in
      ``official`` order (``classes.txt``).

    Args:
        class_labels: class name (``"EducationalInstitution"``) -> label id.
        official: class names in official 1-based id order.
        dhim: class names in DHIM 1-based id order.

    Returns:
        A reader of one file; the text is the content column (DHIM has no title).
    """

    def dhim_names(path: Path) -> list[str]:
        meta_file = path.with_name("meta.txt")
        if not meta_file.is_file():
            return list(dhim)
        names: list[str] = []
        for number, line in enumerate(read_lines(meta_file), start=1):
            head, sep, name = line.partition(":")
            if sep and head.strip().isdigit():
                if int(head) != len(names) + 1:
                    fail(
                        meta_file, number, f"expected class id {len(names) + 1}, got {head.strip()}"
                    )
                names.append(name.strip())
        return names

    def read(path: Path) -> list[Record]:
        rows = list(iter_csv(path))
        width = len(rows[0][1]) if rows else 2
        names = dhim_names(path) if width == 2 else list(official)
        ids = _names_to_labels(path, names, class_labels)
        subset = {"subset": "dhim_unofficial"} if width == 2 else {}
        out = []
        for number, row in rows:
            if len(row) != width or row[0] not in ids:
                fail(
                    path,
                    number,
                    f"expected {width} columns starting with a class id 1-{len(ids)}, got {row[:1]}",
                )
            meta = {**source(path, number), "class": names[int(row[0]) - 1], **subset}
            out.append(Record({"content": row[-1].strip()}, ids[row[0]], meta=meta))
        return out

    return read


def mmlu_csv(path: Path) -> list[Record]:
    """Read one MMLU file: headerless CSV ``question,A,B,C,D,answer`` (answer in A-D).

    The subject is the file name without ``_dev.csv`` / ``_val.csv`` / ``_test.csv``.

    Example:
        >>> mmlu_csv(Path("mmlu/val/anatomy_val.csv"))[0].meta["subject"]
        'anatomy'
    """
    subject = re.sub(r"_(dev|val|test)$", "", path.stem)
    out = []
    for number, row in iter_csv(path):
        if len(row) != 6 or row[5].strip() not in ("A", "B", "C", "D"):
            fail(
                path,
                number,
                f"expected 6 columns 'question,A,B,C,D,answer' with answer A-D, got {len(row)} columns",
            )
        meta = {**source(path, number), "subject": subject}
        options = tuple(cell.strip() for cell in row[1:5])
        out.append(
            Record({"question": row[0].strip()}, "ABCD".index(row[5].strip()), options, meta)
        )
    return out


def hellaswag_txt(path: Path) -> list[Record]:
    """Read the llama.cpp HellaSwag text: 6 lines per item (context, gold 0-3, 4 endings).

    The context line is ``"<activity_label>: <ctx>"`` (lm-eval preprocessed); it is the
    question, and ``meta["activity_label"]`` keeps the label.

    Example:
        >>> hellaswag_txt(Path("hellaswag/hellaswag_val_full.txt"))[0].options[3]
        'starts pulling up roofing on a roof.'
    """
    lines = read_lines(path)
    if len(lines) % 6:
        fail(path, len(lines), f"expected 6 lines per item, but the file has {len(lines)} lines")
    out = []
    for start in range(0, len(lines), 6):
        context, gold, *endings = lines[start : start + 6]
        if gold.strip() not in ("0", "1", "2", "3"):
            fail(path, start + 2, f"expected the gold ending index 0-3, got {gold[:40]!r}")
        if not context.strip() or not all(e.strip() for e in endings):
            fail(path, start + 1, "empty context or ending in this 6-line item")
        activity = context.split(": ", 1)[0] if ": " in context else ""
        meta = {**source(path, start + 1), "activity_label": activity}
        out.append(
            Record(
                {"question": context.strip()}, int(gold), tuple(e.strip() for e in endings), meta
            )
        )
    return out
