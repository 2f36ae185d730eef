"""Exact prompt snapshots for every task (hand-built examples, no data needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from act_lens.errors import DataError
from act_lens.evaluation.tasks import BUILTIN_TASK, Example, get_task, task_names

CLASSIFICATION = {
    "sst2": (
        {"sentence": "a gorgeous film ."}, 1,
        "Classify the sentiment of each sentence as negative or positive.\n\n"
        "Sentence: a gorgeous film .\nSentiment:",
        (" negative", " positive"),
    ),
    "sst5": (
        {"sentence": "a dull mess ."}, 0,
        "Classify the sentiment of each sentence as terrible, negative, neutral, positive or great.\n\n"
        "Sentence: a dull mess .\nSentiment:",
        (" terrible", " negative", " neutral", " positive", " great"),
    ),
    "mr": (
        {"sentence": "a smart , funny ride ."}, 1,
        "Classify the sentiment of each movie review as negative or positive.\n\n"
        "Review: a smart , funny ride .\nSentiment:",
        (" negative", " positive"),
    ),
    "subj": (
        {"sentence": "the film follows two brothers ."}, 0,
        "Classify each input as objective or subjective.\n\n"
        "Input: the film follows two brothers .\nType:",
        (" objective", " subjective"),
    ),
    "agnews": (
        {"text": "Stocks rise Markets gained today."}, 2,
        "Classify the topic of each news article as World, Sports, Business or Technology.\n\n"
        "Article: Stocks rise Markets gained today.\nCategory:",
        (" World", " Sports", " Business", " Technology"),
    ),
    "trec": (
        {"question": "Who was Galileo ?"}, 3,
        "Classify each question by the type of its answer: "
        "Abbreviation, Entity, Description, Person, Location or Number.\n\n"
        "Question: Who was Galileo ?\nType:",
        (" Abbreviation", " Entity", " Description", " Person", " Location", " Number"),
    ),
    "cb": (
        {"premise": "It rained all day.", "hypothesis": "The ground is wet."}, 0,
        "Read the premise and decide whether it entails the hypothesis. Answer Yes, No or Maybe.\n\n"
        "Premise: It rained all day.\nHypothesis: The ground is wet.\nAnswer:",
        (" Yes", " No", " Maybe"),
    ),
    "boolq": (
        {"passage": "Water -- Water boils at 100 C.", "question": "does water boil at 100 c"}, 1,
        "Read the text and answer the question with True or False.\n\n"
        "Text: Water -- Water boils at 100 C.\nQuestion: does water boil at 100 c\nAnswer:",
        (" False", " True"),
    ),
    "dbpedia": (
        {"content": "Brezani is a village in Serbia."}, 8,
        "Classify the topic of each input as one of: company, school, artist, sport, politics, "
        "transportation, building, nature, village, animal, plant, album, film, book.\n\n"
        "Input: Brezani is a village in Serbia.\nType:",
        tuple(" " + w for w in ("company", "school", "artist", "sport", "politics", "transportation",
              "building", "nature", "village", "animal", "plant", "album", "film", "book")),
    ),
    BUILTIN_TASK: (
        {"review": "The lid of this kettle is flimsy."}, 0,
        "Is the customer happy with the product? Classify each review as negative or positive.\n\n"
        "Review: The lid of this kettle is flimsy.\nSentiment:",
        (" negative", " positive"),
    ),
}  # fmt: skip

# name -> (question, options, label, instruction, meta)
MULTIPLE_CHOICE = {
    "hellaswag": ("Roof shingle removal: A man is sitting on a roof. he", ("is eating.", "starts pulling up roofing."), 1,
                  "Choose the ending that best continues the text.", {}),
    "arc_easy": ("Which is a mammal?", ("trout", "whale", "frog"), 1,
                 "Answer the science question by choosing the correct option.", {}),
    "arc_challenge": ("Which gas do plants absorb?", ("oxygen", "carbon dioxide", "helium", "neon"), 1,
                      "Answer the science question by choosing the correct option.", {}),
    "piqa": ("Open a jar.", ("Bite the lid.", "Twist the lid."), 1,
             "Choose the better solution to reach the goal.", {}),
    "openbookqa": ("The sun is a", ("planet", "star", "moon", "comet"), 1,
                   "Answer the science question by choosing the correct option.", {}),
    "copa": ("The man turned on the faucet. What happened as a result?",
             ("The toilet filled with water.", "Water flowed from the spout."), 1,
             "Choose the more plausible cause or effect of the premise.", {}),
    "commonsense_qa": ("Where do you keep milk?", ("fridge", "oven", "shelf", "car", "bed"), 0,
                       "Answer the commonsense question by choosing the correct option.", {}),
    "mmlu": ("What is 2 + 2?", ("3", "4", "5", "6"), 1,
             "The following is a multiple choice question about high school mathematics. Choose the correct answer.",
             {"subject": "high_school_mathematics"}),
}  # fmt: skip


def test_every_task_has_a_snapshot() -> None:
    assert set(task_names()) == set(CLASSIFICATION) | set(MULTIPLE_CHOICE)


@pytest.mark.parametrize("name", sorted(CLASSIFICATION))
def test_classification_zero_shot_snapshot(name: str) -> None:
    fields, label, text, choices = CLASSIFICATION[name]
    task = get_task(name)
    prompt = task.build(Example(f"{name}:eval:0", fields, label))
    assert prompt.text == text
    assert prompt.choices == choices == tuple(" " + w for w in task.label_words)
    assert (prompt.context, prompt.continuations) == (text, choices)
    assert (prompt.uid, prompt.label) == (f"{name}:eval:0", label)


@pytest.mark.parametrize("name", sorted(MULTIPLE_CHOICE))
def test_multiple_choice_zero_shot_snapshot(name: str) -> None:
    question, options, label, instruction, meta = MULTIPLE_CHOICE[name]
    prompt = get_task(name).build(
        Example(f"{name}:eval:0", {"question": question}, label, options, meta)
    )
    letters = [chr(ord("A") + i) for i in range(len(options))]
    lettered = "".join(f"\n{c}. {o}" for c, o in zip(letters, options, strict=True))
    assert prompt.text == f"{instruction}\n\nQuestion: {question}{lettered}\nAnswer:"
    assert prompt.context == f"{instruction}\n\nQuestion: {question}\nAnswer:"
    assert prompt.choices == tuple(f" {c}" for c in letters)
    assert prompt.continuations == tuple(f" {o}" for o in options)
    assert prompt.meta == meta


def test_arc_snapshot_written_out() -> None:
    ex = Example(
        "arc_easy:eval:0", {"question": "Which is a mammal?"}, 1, ("trout", "whale", "frog")
    )
    assert get_task("arc_easy").build(ex).text == (
        "Answer the science question by choosing the correct option.\n"
        "\n"
        "Question: Which is a mammal?\n"
        "A. trout\n"
        "B. whale\n"
        "C. frog\n"
        "Answer:"
    )


def test_sst2_one_shot_snapshot() -> None:
    task = get_task("sst2")
    demo = Example("sst2:train:5", {"sentence": "a dull mess ."}, 0)
    query = Example("sst2:eval:0", {"sentence": "a gorgeous film ."}, 1)
    prompt = task.build(query, [demo])
    assert prompt.text == (
        "Classify the sentiment of each sentence as negative or positive.\n\n"
        "Sentence: a dull mess .\nSentiment: negative\n\n"
        "Sentence: a gorgeous film .\nSentiment:"
    )
    assert prompt.context == prompt.text


def test_arc_one_shot_snapshot() -> None:
    task = get_task("arc_easy")
    demo = Example("arc_easy:train:1", {"question": "Which is hot?"}, 0, ("fire", "ice"))
    query = Example(
        "arc_easy:eval:0", {"question": "Which is a mammal?"}, 1, ("trout", "whale", "frog")
    )
    prompt = task.build(query, [demo])
    head = "Answer the science question by choosing the correct option.\n\n"
    assert prompt.text == (
        head + "Question: Which is hot?\nA. fire\nB. ice\nAnswer: A\n\n"
        "Question: Which is a mammal?\nA. trout\nB. whale\nC. frog\nAnswer:"
    )
    assert (
        prompt.context
        == head + "Question: Which is hot?\nAnswer: fire\n\nQuestion: Which is a mammal?\nAnswer:"
    )
    assert prompt.choices == (" A", " B", " C")
    assert prompt.continuations == (" trout", " whale", " frog")


def test_cb_two_shot_answers_use_label_words() -> None:
    task = get_task("cb")
    demos = [
        Example("cb:train:0", {"premise": "P1.", "hypothesis": "H1."}, 2),
        Example("cb:train:1", {"premise": "P2.", "hypothesis": "H2."}, 1),
    ]
    prompt = task.build(Example("cb:eval:0", {"premise": "P.", "hypothesis": "H."}, 0), demos)
    assert prompt.text.endswith(
        "Premise: P1.\nHypothesis: H1.\nAnswer: Maybe\n\n"
        "Premise: P2.\nHypothesis: H2.\nAnswer: No\n\n"
        "Premise: P.\nHypothesis: H.\nAnswer:"
    )


def test_bad_examples_raise_data_error() -> None:
    with pytest.raises(DataError, match="lacks fields"):
        get_task("sst2").build(Example("x:0", {"text": "wrong field"}, 0))
    with pytest.raises(DataError, match="label 5"):
        get_task("sst2").build(
            Example("x:1", {"sentence": "q"}, 0), [Example("x:0", {"sentence": "d"}, 5)]
        )
    with pytest.raises(DataError, match="needs a 'question' field and options"):
        get_task("piqa").build(Example("x:0", {"question": "q"}, 0))


@pytest.mark.parametrize("name", sorted(set(CLASSIFICATION) | set(MULTIPLE_CHOICE)))
def test_real_first_example_builds(data_dir: Path, name: str) -> None:
    task = get_task(name)
    example = task.load(None if name == BUILTIN_TASK else data_dir)[0]
    prompt = task.build(example)
    assert prompt.text.startswith(task.instruction.split("{")[0])
    assert prompt.text.endswith(":") and "\n\n" in prompt.text
    assert all(c.startswith(" ") and not c.startswith("  ") for c in prompt.choices)
    assert 0 <= prompt.label < len(prompt.choices) == len(prompt.continuations)


def test_real_sst2_one_shot_snapshot(data_dir: Path) -> None:
    task = get_task("sst2")
    demos = task.sample_demos(task.load(data_dir, "train"), k=1, seed=0)
    prompt = task.build(task.load(data_dir)[0], demos)
    assert prompt.text == (
        "Classify the sentiment of each sentence as negative or positive.\n\n"
        "Sentence: the script covers huge , heavy topics in a bland , surfacey way that does n't offer "
        "any insight into why , for instance , good things happen to bad people .\nSentiment: negative\n\n"
        "Sentence: one long string of cliches .\nSentiment:"
    )
