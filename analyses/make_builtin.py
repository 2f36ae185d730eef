"""Generate the built-in ``reviews`` task file (``act_lens/evaluation/tasks/data/reviews.jsonl``).

Short product reviews labelled negative / positive, built from templates and word lists
with a fixed seed, so the file is reproducible byte for byte::

    python analyses/make_builtin.py          # rewrites the packaged file
    python analyses/make_builtin.py --check  # fails if the packaged file differs

Each review follows one pattern (``meta["pattern"]``) of graded difficulty for a small
model: ``plain`` (one opinion), ``negated`` (``"not <adjective>"`` flips it), ``contrast``
(an opinion on one aspect and an overall verdict of the other polarity, before or after
it; the verdict decides the label) and ``implicit`` (an action that implies the opinion, no opinion word).
Labels are balanced within each pattern and split.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

SEED = 20240613
PER_PATTERN = {"plain": 40, "negated": 60, "contrast": 140, "implicit": 60}  # per split
SPLITS = ("train", "eval")
OUT = (
    Path(__file__).resolve().parents[1]
    / "act_lens"
    / "evaluation"
    / "tasks"
    / "data"
    / "reviews.jsonl"
)

PRODUCTS = (
    "blender", "laptop", "backpack", "coffee maker", "phone case", "desk lamp", "pair of headphones",
    "vacuum cleaner", "rain jacket", "tent", "keyboard", "water bottle", "toaster", "monitor",
    "suitcase", "speaker", "office chair", "kettle", "camera", "mattress",
)  # fmt: skip
ASPECTS = (
    "battery", "screen", "sound", "build quality", "price", "design", "packaging", "manual",
    "color", "handle", "zipper", "cable", "lid", "finish", "fabric", "buttons",
)  # fmt: skip
GOOD = (
    "excellent",
    "great",
    "sturdy",
    "reliable",
    "wonderful",
    "impressive",
    "solid",
    "superb",
    "lovely",
    "fantastic",
)
BAD = (
    "awful",
    "flimsy",
    "terrible",
    "disappointing",
    "poor",
    "unreliable",
    "horrible",
    "useless",
    "dreadful",
    "shoddy",
)
VERDICT = {
    1: (
        "overall I am really happy with it.", "I would still buy it again.", "in the end I love it.",
        "I would recommend it to a friend.", "overall it was worth every penny.", "I am glad I bought it.",
    ),
    0: (
        "overall I regret buying it.", "I would not buy it again.", "in the end I am sending it back.",
        "I would not recommend it to anyone.", "overall it was a waste of money.", "I wish I had bought something else.",
    ),
}  # fmt: skip
ACTION = {
    1: (
        "I ordered a second {p} for my sister the same week.", "I have used this {p} every day for a year now.",
        "My whole family now wants the same {p}.", "I would pick this {p} again without thinking twice.",
        "After three years the {p} still works like the first day.", "I told all my friends to get this {p}.",
    ),
    0: (
        "I returned the {p} after two days.", "The {p} stopped working after a week.",
        "The {p} went straight back into its box.", "I asked for a refund for the {p} the next morning.",
        "Within a month the {p} had to be repaired twice.", "I threw the {p} away after one use.",
    ),
}  # fmt: skip


def _plain(rng: random.Random, label: int) -> str:
    adj = rng.choice(GOOD if label else BAD)
    return rng.choice(
        (
            f"The {rng.choice(ASPECTS)} of this {rng.choice(PRODUCTS)} is {adj}.",
            f"This {rng.choice(PRODUCTS)} is {adj}.",
            f"What a {adj} {rng.choice(PRODUCTS)}.",
        )
    )


def _negated(rng: random.Random, label: int) -> str:
    adj = rng.choice(BAD if label else GOOD)  # "not <bad word>" is positive
    return rng.choice(
        (
            f"The {rng.choice(ASPECTS)} of this {rng.choice(PRODUCTS)} is not {adj} at all.",
            f"This {rng.choice(PRODUCTS)} is not {adj}.",
            f"Honestly, the {rng.choice(PRODUCTS)} is not {adj}.",
        )
    )


def _contrast(rng: random.Random, label: int) -> str:
    adj = rng.choice(BAD if label else GOOD)  # the first clause has the other polarity
    joint = rng.choice(("but", "yet", "although", "even though"))
    aspect, product, verdict = rng.choice(ASPECTS), rng.choice(PRODUCTS), rng.choice(VERDICT[label])
    if joint == "although":
        return f"Although the {aspect} of the {product} is {adj}, {verdict}"
    if joint == "even though":  # verdict first: the last words have the wrong polarity
        return f"{verdict[0].upper()}{verdict[1:-1]}, even though the {aspect} of the {product} is {adj}."
    return f"The {aspect} of the {product} is {adj}, {joint} {verdict}"


def _implicit(rng: random.Random, label: int) -> str:
    return rng.choice(ACTION[label]).format(p=rng.choice(PRODUCTS))


PATTERNS: dict[str, Callable[[random.Random, int], str]] = {
    "plain": _plain,
    "negated": _negated,
    "contrast": _contrast,
    "implicit": _implicit,
}


def generate(seed: int = SEED) -> list[dict[str, str]]:
    """All rows of the built-in task, deterministic for ``seed``.

    Args:
        seed: seed of the word choices.

    Returns:
        Rows ``{"split", "review", "label", "pattern"}`` with ``label`` "negative"/"positive";
        no review text occurs twice, train before eval.

    Example:
        >>> rows = generate()
        >>> len(rows), rows[0]["split"]
        (600, 'train')
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    for split in SPLITS:
        block = []
        for pattern, count in PER_PATTERN.items():
            for i in range(count):
                label = i % 2
                for _ in range(1000):  # redraw duplicates
                    text = PATTERNS[pattern](rng, label)
                    if text not in seen:
                        break
                else:
                    raise RuntimeError(f"pattern {pattern!r} ran out of distinct texts")
                seen.add(text)
                word = ("negative", "positive")[label]
                block.append({"split": split, "review": text, "label": word, "pattern": pattern})
        rng.shuffle(block)
        rows.extend(block)
    return rows


def render(rows: list[dict[str, str]]) -> str:
    """The JSONL text of ``rows`` (one object per line, keys in fixed order)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) the packaged file; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=OUT, help="output file (default: the packaged file)"
    )
    parser.add_argument("--check", action="store_true", help="only compare with the existing file")
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        same = args.out.is_file() and args.out.read_text(encoding="utf-8") == text
        print(f"{args.out}: {'up to date' if same else 'DIFFERS from the generator'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10))} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
