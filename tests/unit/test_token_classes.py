"""Unit tests for act_lens.core.token_classes: one table, both tokenizer families."""

import pytest

from act_lens.core.token_classes import (
    HIDDEN_CLASSES,
    TOKEN_CLASSES,
    classify_token,
    normalise_token_text,
)

# (text, is_first, is_special, expected class)
TABLE = [
    # first: wins over every other rule
    ("<s>", True, False, "first"),
    ("<|begin_of_text|>", True, True, "first"),
    ("▁the", True, False, "first"),
    ("Ġcat", True, False, "first"),
    ("\n", True, False, "first"),
    # special: listed by the tokenizer, or shaped like one
    ("<s>", False, False, "special"),
    ("</s>", False, False, "special"),
    ("<unk>", False, False, "special"),
    ("<pad>", False, False, "special"),
    ("<|endoftext|>", False, False, "special"),
    ("<|im_start|>", False, False, "special"),
    ("[INST]", False, False, "special"),
    ("[/INST]", False, False, "special"),
    ("<<SYS>>", False, False, "special"),
    ("<</SYS>>", False, False, "special"),
    ("▁<s>", False, False, "special"),
    ("hello", False, True, "special"),
    (".", False, True, "special"),
    # newline: whitespace with a line break, in either spelling
    ("\n", False, False, "newline"),
    ("\n\n", False, False, "newline"),
    ("\r\n", False, False, "newline"),
    ("  \n", False, False, "newline"),
    ("<0x0A>", False, False, "newline"),  # SentencePiece byte fallback
    ("▁<0x0A>", False, False, "newline"),
    ("Ċ", False, False, "newline"),  # byte-level BPE
    ("ĊĊ", False, False, "newline"),
    ("ĠĊ", False, False, "newline"),
    # delimiter: whitespace without a line break, or delimiter characters only
    (" ", False, False, "delimiter"),
    ("\t", False, False, "delimiter"),
    ("▁", False, False, "delimiter"),
    ("▁▁▁", False, False, "delimiter"),
    ("Ġ", False, False, "delimiter"),
    ("ĠĠ", False, False, "delimiter"),
    (":", False, False, "delimiter"),
    ("▁:", False, False, "delimiter"),
    ("Ġ:", False, False, "delimiter"),
    ("(", False, False, "delimiter"),
    ('"', False, False, "delimiter"),
    ('Ġ"', False, False, "delimiter"),
    ("--", False, False, "delimiter"),
    ("–", False, False, "delimiter"),
    ("—", False, False, "delimiter"),
    ("|", False, False, "delimiter"),
    ("`", False, False, "delimiter"),
    ("```", False, False, "delimiter"),
    ("=", False, False, "delimiter"),
    ("##", False, False, "delimiter"),
    ("@", False, False, "delimiter"),
    ("&", False, False, "delimiter"),
    ("</", False, False, "delimiter"),
    ("Ċ:", False, False, "delimiter"),  # a newline followed by a delimiter is not only whitespace
    # punctuation: Unicode P* characters, possibly mixed with delimiters
    (".", False, False, "punctuation"),
    (",", False, False, "punctuation"),
    ("!", False, False, "punctuation"),
    ("?", False, False, "punctuation"),
    ("…", False, False, "punctuation"),
    ("▁.", False, False, "punctuation"),
    ("Ġ.", False, False, "punctuation"),
    (".Ċ", False, False, "punctuation"),
    ("▁,", False, False, "punctuation"),
    ('."', False, False, "punctuation"),
    ("),", False, False, "punctuation"),
    ("?!", False, False, "punctuation"),
    ("«", False, False, "punctuation"),
    ("。", False, False, "punctuation"),
    # function words: closed-class English words, any case, either space marker
    ("▁the", False, False, "function_word"),
    ("Ġthe", False, False, "function_word"),
    (" the", False, False, "function_word"),
    ("The", False, False, "function_word"),
    ("ĠThe", False, False, "function_word"),
    ("▁of", False, False, "function_word"),
    ("Ġand", False, False, "function_word"),
    ("▁is", False, False, "function_word"),
    ("Ġwhich", False, False, "function_word"),
    ("a", False, False, "function_word"),
    ("I", False, False, "function_word"),
    # content: anything else
    ("▁cat", False, False, "content"),
    ("Ġcat", False, False, "content"),
    ("Paris", False, False, "content"),
    ("ĠParis", False, False, "content"),
    ("ing", False, False, "content"),
    ("▁theory", False, False, "content"),  # starts with "the" but is not "the"
    ("then.", False, False, "content"),  # a word with punctuation is not a bare function word
    ("123", False, False, "content"),
    ("Ġ42", False, False, "content"),
    ("$", False, False, "content"),  # a currency sign is S*, not P*
    ("+", False, False, "content"),
    ("<S>", False, False, "content"),  # upper case: not shaped like a special token
    ("<0x20>", False, False, "content"),
]


@pytest.mark.parametrize(("text", "is_first", "is_special", "expected"), TABLE)
def test_classify_token_table(text: str, is_first: bool, is_special: bool, expected: str) -> None:
    assert classify_token(text, is_first=is_first, is_special=is_special) == expected


def test_table_covers_every_class() -> None:
    assert {row[3] for row in TABLE} == set(TOKEN_CLASSES)
    assert set(HIDDEN_CLASSES) == set(TOKEN_CLASSES) - {"first"}


@pytest.mark.parametrize("word", ["the", "of", "cat", "Paris", ".", ":", "\n", " "])
def test_both_tokenizer_families_agree(word: str) -> None:
    # The same text spelled by SentencePiece (▁ for a leading space, <0x0A> for a newline)
    # and by byte-level BPE (Ġ, Ċ) lands in the same class as the plain text.
    plain = " " + word
    sp = plain.replace(" ", "▁").replace("\n", "<0x0A>")
    bpe = plain.replace(" ", "Ġ").replace("\n", "Ċ")
    assert classify_token(sp) == classify_token(bpe) == classify_token(plain)


def test_normalise_token_text() -> None:
    assert normalise_token_text("▁the") == " the"
    assert normalise_token_text("Ġthe") == " the"
    assert normalise_token_text("ĊĠx") == "\n x"
    assert normalise_token_text("<0x0A><0x0A>") == "\n\n"
    assert normalise_token_text("plain") == "plain"


def test_every_result_is_a_known_class() -> None:
    for text in ["", "x", "\u00a0", "\u200b", "🙂", "ß", "▁▁the▁", "<|x|>", "[INST] hi"]:
        assert classify_token(text) in HIDDEN_CLASSES
