"""Classify sink tokens by what they are, from their decoded text (tokenizer-agnostic).

| class           | rule (applied in this order)                                                  |
|-----------------|-------------------------------------------------------------------------------|
| `first`         | the first real token of the input (BOS or position 0)                         |
| `special`       | a tokenizer special token, or text shaped like `<|...|>`, `<s>`, `</s>`, `[INST]` |
| `newline`       | only whitespace, containing at least one line break                           |
| `delimiter`     | only whitespace without a line break, or only delimiter characters: `: ; " ' ( ) [ ] { } < > | / \\ - – — _ = * # @ &` and backticks |
| `punctuation`   | only punctuation characters (Unicode category P*, e.g. `. , ! ? …`), possibly mixed with delimiters |
| `function_word` | a closed-class English word (articles, prepositions, pronouns, auxiliaries...) |
| `content`       | anything else                                                                 |

Text is the token decoded on its own; SentencePiece's `▁` and byte-level BPE's `Ġ`/`Ċ` markers
are mapped back to a space and a newline first, so both tokenizer families give the same class.
"""

import re
import unicodedata

TOKEN_CLASSES = (
    "first",
    "special",
    "newline",
    "delimiter",
    "punctuation",
    "function_word",
    "content",
)
HIDDEN_CLASSES = TOKEN_CLASSES[1:]

_DELIMITERS = set(":;\"'()[]{}<>|/\\-–—_=*#@&`")
_SPECIAL_RE = re.compile(r"^(<\|[^|]*\|>|</?s>|<[a-z_]+>|\[/?INST\]|<<SYS>>|<</SYS>>)$")
FUNCTION_WORDS = frozenset(
    """a an the this that these those some any each every no
    of to in on at by for from with about into onto over under as than up down out off
    and or but nor so yet if then because while although though
    i you he she it we they me him her us them my your his its our their mine yours
    is am are was were be been being do does did have has had will would shall should
    can could may might must not there here what which who whom whose when where why how
    all both either neither very too also just only""".split()
)


def normalise_token_text(text: str) -> str:
    """Map tokenizer space/newline markers back to characters."""
    return text.replace("▁", " ").replace("Ġ", " ").replace("Ċ", "\n").replace("<0x0A>", "\n")


def classify_token(text: str, *, is_first: bool = False, is_special: bool = False) -> str:
    """The class of one token (see the module table).

    Args:
        text: the token's text (decoded alone, or its raw piece).
        is_first: the token is the first real token of the input.
        is_special: the tokenizer lists it among its special tokens.

    Example:
        >>> classify_token("\\n"), classify_token(" :"), classify_token("."), classify_token(" the")
        ('newline', 'delimiter', 'punctuation', 'function_word')
    """
    if is_first:
        return "first"
    raw = normalise_token_text(text)
    stripped = raw.strip()
    if is_special or (stripped and _SPECIAL_RE.match(stripped)):
        return "special"
    if not stripped:
        return "newline" if ("\n" in raw or "\r" in raw) else "delimiter"
    if all(ch in _DELIMITERS for ch in stripped):
        return "delimiter"
    if all(ch in _DELIMITERS or unicodedata.category(ch).startswith("P") for ch in stripped):
        return "punctuation"
    if stripped.lower() in FUNCTION_WORDS:
        return "function_word"
    return "content"
