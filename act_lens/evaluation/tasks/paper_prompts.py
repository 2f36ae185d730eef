"""The ``paper`` prompt set: the official ACT prompts of all 17 tasks.

Source: the official code of Yu et al. (ICML 2024), GitHub GATECH-EIC/ACT at commit a267af7,
``utils/data_utils.py`` (``get_classification_dataset``, ``get_multiple_choice_dataset``,
``form_choices``). These strings are the experimental protocol, like the label words, so a
reproduction must use them; they are kept here verbatim except for the points below.

A classification prompt is ``instruction + template.format(**example)``; the instruction
ends with a blank line. Deliberate, documented deviations:

* **Trailing space.** Every official template ends with a space (``"...\\nSentiment: "``)
  and the label words start with one (``" negative"``), so the scored text has two spaces, a
  tokenisation the model never saw in training (CB's words have no space, so there the prompt
  ends in a lone space token). Here the template's trailing space moves onto the label word:
  the prompt ends ``"Sentiment:"`` and every choice is ``" " + word``, as in the ``plain``
  prompts. The space before each newline (``"{sentence} \\nSentiment:"``) is kept.
* **TREC.** The official label list is indexed by the dataset's coarse label id, which puts
  4 of 6 words on the wrong class; here each word is mapped by the coarse label's name
  (ABBR -> Expression, ENTY -> Entity, DESC -> Description, HUM -> Person, LOC -> Location,
  NUM -> Number).
* **Scoring.** The official code scores a label's last sub-token and multiple choice by a
  full-vocabulary argmax; act_lens scores the first sub-token (or the full continuation with
  ``scoring="full"``) and restricts the choice to the options.

Multiple choice: ``instruction + "\\n\\n" + question``, then ``"\\n" + letter + ". " + option``
per option, then ``"\\nAnswer:"``; COPA's question line is
``premise + " What is the " + ("cause" | "effect") + "?"``.
"""

from __future__ import annotations

from dataclasses import replace

from act_lens.evaluation.tasks.base import Task

# name -> (instruction without its trailing blank line, template without its trailing space,
#          label words in the task's label-id order, without their leading space)
CLASSIFICATION: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "sst2": (
        "Classify the sentiment of the user's message into one of the following categories:'positive' or 'negative'.",
        "Sentence: {sentence} \nSentiment:",
        ("negative", "positive"),
    ),
    "sst5": (
        "Classify the sentiment of the user's message into one of the following categories:'terrible', 'negative', 'neutral', 'positive', or 'great'.",
        "Sentence: {sentence} \nSentiment:",
        ("terrible", "negative", "neutral", "positive", "great"),
    ),
    "mr": (
        "Classify the sentiment of the movie's review into one of the following categories:'positive' or 'negative'.",
        "Review: {sentence} \nSentiment:",
        ("negative", "positive"),
    ),
    "subj": (
        # "object" (sic): the official instruction's word, kept as the protocol.
        "Classify the sentiment polarity of the movie's review into one of the following categories: 'subjective' or 'object'.",
        "Input: {sentence} \nType:",
        ("objective", "subjective"),
    ),
    "agnews": (
        "Classify the news articles into the categories of 'World', 'Sports', 'Business', or 'Technology'.",
        "Article: {text} \nCategory:",
        ("World", "Sports", "Business", "Technology"),
    ),
    "trec": (
        "Classify the given questions into the following categories of 'Description', 'Entity', 'Expression', 'Person', 'Number', or 'Location'.",
        "Question: {question} \nType:",
        # act_lens's TREC label order is ABBR, ENTY, DESC, HUM, LOC, NUM (mapped by name).
        ("Expression", "Entity", "Description", "Person", "Location", "Number"),
    ),
    "cb": (
        "Read the following paragraph and determine if the hypothesis is true.",
        "Premise: {premise} Hypothesis: {hypothesis}. Answer:",
        ("Yes", "No", "Maybe"),
    ),
    "boolq": (
        "Read the text and answer the question by True or False.",
        "Text: {passage} Question: {question}? \nAnswer:",
        ("False", "True"),
    ),
    "dbpedia": (
        "Classify the given text into one of the most relevant categories: 'company', 'school', 'artist', 'sport', 'politics', 'transportation', 'building', 'nature', 'village', 'animal', 'plant', 'album', 'film', or 'book'.",
        "Input: {content} \nType:",
        (
            "company", "school", "artist", "sport", "politics", "transportation", "building",
            "nature", "village", "animal", "plant", "album", "film", "book",
        ),
    ),
}  # fmt: skip

ANSWER_THE_QUESTION = "Generate the correct answer to the following question."
# name -> (instruction, question-line format)
MULTIPLE_CHOICE: dict[str, tuple[str, str]] = {
    "hellaswag": ("Complete the following sentence with an appropriate ending.", "{question}"),
    "arc_easy": (ANSWER_THE_QUESTION, "{question}"),
    "arc_challenge": (ANSWER_THE_QUESTION, "{question}"),
    "piqa": ("Generate the correct solution to accomplish the following goal.", "{question}"),
    "openbookqa": ("Generate the most appropriate answer to the following question.", "{question}"),
    "copa": (ANSWER_THE_QUESTION, "{premise} What is the {asks}?"),
    "commonsense_qa": (ANSWER_THE_QUESTION, "{question}"),
    "mmlu": ("Generate the final answer to the following question.", "{question}"),
}


def paper_variant(task: Task) -> Task:
    """``task`` with the official prompt (tasks without one, e.g. built-in ones, unchanged).

    Example:
        >>> t = paper_variant(get_task("sst2"))
        >>> t.build(Example("sst2:eval:0", {"sentence": "fine ."}, 1)).text.splitlines()[-2:]
        ['Sentence: fine . ', 'Sentiment:']
    """
    if task.name in CLASSIFICATION and task.kind == "classification":
        instruction, template, words = CLASSIFICATION[task.name]
        if len(words) != len(task.label_words):
            raise AssertionError(f"{task.name}: paper label words do not cover the labels")
        return replace(
            task,
            instruction=instruction,
            format=template,  # type: ignore[call-arg]
            label_words=words,
            prompt_set="paper",
        )
    if task.name in MULTIPLE_CHOICE and task.kind == "multiple_choice":
        instruction, question = MULTIPLE_CHOICE[task.name]
        return replace(
            task,
            instruction=instruction,
            question_format=question,  # type: ignore[call-arg]
            question_prefix="",  # type: ignore[call-arg]
            prompt_set="paper",
        )
    return task
