"""The search's yardstick and bookkeeping: choice_logprob, metric names, balanced calibration,
the validation split, the size grid, old files, and the paper prompts."""

import json
import math
import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from act_lens.analysis.calibration_set import (
    balanced_sample,
    calibration_mix,
    describe_calibration,
    split_calibration,
)
from act_lens.analysis.effects import HeadEffects, choice_logprob, metric_values
from act_lens.analysis.metrics import check_metric
from act_lens.analysis.selection import Selection, size_grid
from act_lens.errors import ConfigError, HeadSetError
from act_lens.evaluation.tasks import Example, Prompt, get_task
from act_lens.hooks.headset import HeadSet, head_set_for, load_head_sets, save_head_sets


def test_choice_logprob_by_hand():
    # Label words hold 2% and 6% of the vocabulary's mass: over the vocabulary the gold
    # word (6%) has log 0.06, over the two choices log(0.06 / 0.08) = log 0.75.
    vocab = torch.full((1, 10), math.log(0.92 / 8))
    vocab[0, 3], vocab[0, 7] = math.log(0.02), math.log(0.06)
    ids, valid, labels = torch.tensor([[3, 7]]), torch.tensor([[True, True]]), torch.tensor([1])
    values = metric_values(vocab, ids, valid, labels)
    assert values["choice_logprob"].item() == pytest.approx(math.log(0.75))
    assert values["vocab_logprob"].item() == pytest.approx(math.log(0.06))
    assert values["margin"].item() == pytest.approx(math.log(3.0))
    assert values["accuracy"].item() == 1.0
    # A padded choice slot does not take part in the softmax.
    three = metric_values(
        vocab, torch.tensor([[3, 7, 0]]), torch.tensor([[True, True, False]]), labels
    )
    assert three["choice_logprob"].item() == pytest.approx(math.log(0.75))
    # The same function scores full-continuation log-likelihoods (scoring="full").
    lls = torch.tensor([[-12.0, -10.0, -11.0]])
    expected = -10.0 - math.log(math.exp(-12) + math.exp(-10) + math.exp(-11))
    assert choice_logprob(lls, torch.tensor([1])).item() == pytest.approx(expected)


def test_old_metric_names_are_refused_with_the_new_ones():
    with pytest.raises(ConfigError, match="renamed 'vocab_logprob'.*choice_logprob"):
        check_metric("gold_logprob")
    with pytest.raises(ConfigError, match="choice_logprob, vocab_logprob, margin, accuracy"):
        check_metric("logprob")
    assert check_metric("margin") == "margin"


def test_old_head_effects_and_head_set_files_still_load(tmp_path):
    t = torch.zeros(1, 2)
    old = {
        "format": "act_lens.HeadEffects/1", "strategy": "act", "layers": [2], "heads": [0, 1],
        "uids": ["a:0"], "settings": {}, "effects": {"gold_logprob": t.tolist(), "margin": t.tolist()},
        "stderr": {"gold_logprob": t.tolist(), "margin": t.tolist()},
        "baseline": {"gold_logprob": [0.0], "margin": [0.0]},
        "per_example": {"gold_logprob": torch.zeros(1, 2, 1), "margin": torch.zeros(1, 2, 1)},
    }  # fmt: skip
    torch.save(old, tmp_path / "old.pt")
    eff = HeadEffects.load(tmp_path / "old.pt")
    assert set(eff.effects) == {"vocab_logprob", "margin"}
    # A head set written before methods existed (no "method", metric "gold_logprob").
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": "act_lens.HeadSet/1", "heads": {"3": [1]},
                                "provenance": {"metric": "gold_logprob"}}))  # fmt: skip
    hs = HeadSet.load(path)
    assert (3, 1) in hs and hs.method == "act" and hs.provenance["metric"] == "gold_logprob"


def _pool(labels):
    return [Example(f"t:train:{i}", {"sentence": "x"}, y) for i, y in enumerate(labels)]


def test_balanced_sample_equal_counts_and_a_short_label_fills_up():
    pool = _pool([0] * 50 + [1] * 50 + [2] * 3)
    counts = lambda exs: sorted((y, sum(e.label == y for e in exs)) for y in {e.label for e in exs})  # noqa: E731
    got = balanced_sample(pool, 12, random.Random(0))
    assert len(got) == 12 and len({e.uid for e in got}) == 12
    # label 2 has only 3: it gives all of them, labels 0 and 1 share the rest (5 + 4 or 4 + 5)
    c = dict(counts(got))
    assert c[2] == 3 and c[0] + c[1] == 9 and abs(c[0] - c[1]) <= 1
    even = dict(counts(balanced_sample(_pool([0] * 90 + [1] * 10), 20, random.Random(1))))
    assert even == {0: 10, 1: 10}  # far from the pool's 90/10
    assert len(balanced_sample(pool, 500, random.Random(0))) == len(pool)


def test_calibration_mix_balances_by_default_and_records_it():
    calib = calibration_mix(["reviews"], 20, seed=5)
    desc = describe_calibration(calib)
    assert desc["labels"]["reviews"] == {"0": 10, "1": 10}
    plain = calibration_mix(["reviews"], 20, seed=5, balance=False)
    assert [p.uid for p in plain] != [p.uid for p in calib]


def test_split_calibration_keeps_each_task_and_label_in_both_parts():
    prompts = [Prompt(f"{t}:train:{i}", "x", (" a", " b"), i % 2, "x", (" a", " b"), {})
               for t in ("s", "u") for i in range(8)]  # fmt: skip
    search, val = split_calibration(prompts, 0.25)
    assert (
        len(search) == 12 and len(val) == 4 and not {p.uid for p in search} & {p.uid for p in val}
    )
    assert describe_calibration(val)["labels"] == {"s": {"0": 1, "1": 1}, "u": {"0": 1, "1": 1}}
    with pytest.raises(ConfigError, match="more calibration prompts"):
        split_calibration(prompts[:1], 0.5)


def test_size_grid_and_selection_validation():
    assert size_grid(1) == [1] and size_grid(0) == []
    assert size_grid(100) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 100]
    with pytest.raises(ConfigError, match="confidence must be in"):
        Selection(confidence=0.4)
    with pytest.raises(ConfigError, match="top_k >= 1"):
        Selection("top_k")
    with pytest.raises(ConfigError, match="val_fraction must be in"):
        Selection(val_fraction=1.0)


def test_per_task_head_sets_round_trip_and_name_a_missing_task(tmp_path):
    sets = {"sst2": HeadSet({2: [1]}), "trec": HeadSet({5: [0, 3]})}
    path = save_head_sets(tmp_path / "head_sets.json", sets)
    loaded = load_head_sets(path)
    assert (
        head_set_for(loaded, "trec") == sets["trec"]
        and head_set_for(loaded, "sst2") == sets["sst2"]
    )
    with pytest.raises(HeadSetError, match="no set for task 'mr'"):
        head_set_for(loaded, "mr")
    with pytest.raises(HeadSetError, match="one head set per task"):
        HeadSet.load(path)
    single = load_head_sets(sets["sst2"].save(tmp_path / "one.json"))
    assert head_set_for(single, "anything") == sets["sst2"]


PAPER = {
    "sst2": (
        {"sentence": "a gorgeous film ."}, 1,
        "Classify the sentiment of the user's message into one of the following categories:"
        "'positive' or 'negative'.\n\nSentence: a gorgeous film . \nSentiment:",
        (" negative", " positive"),
    ),
    "cb": (
        {"premise": "It rained.", "hypothesis": "the ground is wet"}, 0,
        "Read the following paragraph and determine if the hypothesis is true.\n\n"
        "Premise: It rained. Hypothesis: the ground is wet. Answer:",
        (" Yes", " No", " Maybe"),
    ),
    "boolq": (
        {"passage": "Water boils at 100 C.", "question": "does water boil at 100 c"}, 1,
        "Read the text and answer the question by True or False.\n\n"
        "Text: Water boils at 100 C. Question: does water boil at 100 c? \nAnswer:",
        (" False", " True"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_prompts_are_the_official_strings_without_the_trailing_space(name):
    fields, label, text, choices = PAPER[name]
    task = get_task(name, "paper")
    prompt = task.build(Example(f"{name}:eval:0", fields, label))
    assert prompt.text == text and prompt.choices == choices and task.prompt_set == "paper"
    demo = task.build(
        Example(f"{name}:eval:1", fields, label), [Example(f"{name}:train:0", fields, label)]
    )
    # a demonstration is the filled template, one space, the label word, a blank line
    assert demo.text.startswith(text + choices[label] + "\n\n")


def test_paper_trec_words_follow_the_coarse_label_names():
    words = dict(
        zip(
            ("ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"),
            get_task("trec", "paper").label_words,
            strict=True,
        )
    )
    assert words == {"ABBR": "Expression", "ENTY": "Entity", "DESC": "Description",
                     "HUM": "Person", "LOC": "Location", "NUM": "Number"}  # fmt: skip


def test_paper_multiple_choice_prompts():
    copa = get_task("copa", "paper")
    ex = Example("copa:eval:0", {"question": "-", "premise": "The man fell.", "asks": "cause"}, 0,
                 ("He slipped.", "He sang."))  # fmt: skip
    p = copa.build(ex)
    assert p.text == ("Generate the correct answer to the following question.\n\n"
                      "The man fell. What is the cause?\nA. He slipped.\nB. He sang.\nAnswer:")  # fmt: skip
    mmlu = get_task("mmlu", "paper").build(
        Example("mmlu:eval:0", {"question": "2+2?"}, 1, ("3", "4"), {"subject": "math"})
    )
    assert mmlu.text.startswith(
        "Generate the final answer to the following question.\n\n2+2?\nA. 3"
    )
    assert get_task("reviews", "paper") == get_task("reviews")  # no official prompt: unchanged
    with pytest.raises(ConfigError, match="plain, paper"):
        get_task("sst2", "fancy")


def test_pick_size_takes_the_best_eligible_size_never_an_ineligible_one():
    from act_lens.analysis.selection import pick_size

    def row(k, acc, m, eligible):
        return {"size": k, "accuracy": acc, "m": m, "eligible": eligible}

    curve = [row(0, 0.5, -0.5, False), row(1, 0.6, -0.4, True), row(2, 0.7, -0.3, True),
             row(3, 0.9, -0.2, False), row(5, 0.7, -0.1, True)]  # fmt: skip
    assert pick_size(curve, "m") == 5  # 2 and 5 tie on accuracy: the metric breaks the tie
    assert pick_size([row(0, 0.5, -0.5, False), row(1, 0.9, -0.1, False)], "m") == 0


@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=8),
    st.sampled_from([0.8, 0.9, 0.95]),
)
def test_the_lower_bound_rule_never_picks_a_size_whose_bound_is_not_above_zero(flips, conf):
    from act_lens.analysis.selection import decision
    from act_lens.evaluation.stats import paired_lower_bound

    n = 64
    curve = [{"size": 0, "n": n, "accuracy": 0.5, "m": 0.0, "gain": 0.0, "lower": 0.0,
              "p_value": 1.0, "eligible": False}]  # fmt: skip
    for k, (g, lost) in enumerate(flips, start=1):
        lost = min(lost, n - g)
        lower, p = paired_lower_bound(g, lost, n, confidence=conf)
        curve.append({"size": k, "n": n, "accuracy": 0.5 + (g - lost) / n, "m": g / n,
                      "gain": (g - lost) / n, "lower": lower, "p_value": p,
                      "eligible": lower > 0})  # fmt: skip
    d = decision(curve, "m", conf)
    chosen = curve[d["selected_size"]]
    assert d["selected_size"] == 0 or chosen["lower"] > 0
    if not any(r["lower"] > 0 for r in curve[1:]):
        assert d["selected_size"] == 0 and "no heads" in d["reason"]


def test_exact_lower_bound_agrees_with_the_one_sided_sign_test():
    from act_lens.evaluation.stats import paired_lower_bound

    for g, lost in [(3, 0), (4, 0), (6, 1), (7, 1), (10, 4), (20, 9), (0, 5)]:
        lower, p = paired_lower_bound(g, lost, 40, confidence=0.9)
        assert (lower > 0) == (p < 0.1), (g, lost, lower, p)
    assert paired_lower_bound(3, 0, 24)[1] == pytest.approx(0.125)
    with pytest.raises(ConfigError, match="confidence"):
        paired_lower_bound(3, 0, 24, confidence=0.3)


def test_calibration_split_ranks_on_balanced_prompts_and_validates_on_the_natural_mix():
    from act_lens.analysis.calibration_set import calibration_split
    from act_lens.evaluation.tasks import Task

    # a pool with 3 times as many label-0 examples as label-1 examples
    pool = [Example(f"skew:train:{i}", {"review": f"t{i}"}, int(i % 4 == 3)) for i in range(400)]
    task = get_task("reviews")

    class Skewed(type(task)):  # the built-in task's prompts, this pool as its data
        def load(self, data=None, split=None):
            return (
                pool if split == self.train_split else [Example("skew:dev:0", {"review": "d"}, 0)]
            )

    skew = Skewed(**{f: getattr(task, f) for f in task.__dataclass_fields__})
    assert isinstance(skew, Task)
    rank, val = calibration_split([skew], 200, seed=3)
    assert len(rank) == len(val) == 100
    assert describe_calibration(rank)["labels"]["skew"] == {"0": 50, "1": 50}
    counts = describe_calibration(val)["labels"]["skew"]
    assert counts["0"] > 2 * counts["1"]  # about 75% / 25%, as the pool
    assert not {p.uid for p in rank} & {p.uid for p in val}
    assert not {p.text for p in rank} & {p.text for p in val}
    with pytest.raises(ConfigError, match="at least"):
        calibration_split([skew], 3)


def test_no_heads_decision_names_the_size_with_the_largest_gain() -> None:
    # sizes that change no prompt have bound 0; a real but insignificant gain has a negative
    # bound: the reason must name the real gain, not an unchanged size
    from act_lens.analysis.selection import decision

    rows = [
        {"size": 0, "accuracy": 0.70, "gain": 0.0, "lower": 0.0, "p_value": 1.0, "n": 64,
         "eligible": False, "m": 0.0},
        {"size": 1, "accuracy": 0.70, "gain": 0.0, "lower": 0.0, "p_value": 1.0, "n": 64,
         "eligible": False, "m": 0.0},
        {"size": 8, "accuracy": 0.75, "gain": 3 / 64, "lower": -0.01, "p_value": 0.125, "n": 64,
         "eligible": False, "m": 0.1},
    ]  # fmt: skip
    out = decision(rows, "m", 0.9)
    assert out["selected_size"] == 0
    assert out["best"]["size"] == 8
    assert "the best, 8 heads, gains +4.7 points" in out["reason"]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 17, 24, 48, 64, 100, 128, 256])
def test_the_screen_splits_prompts_into_an_even_number_of_near_equal_units(n: int) -> None:
    from act_lens.analysis.screening import SCREEN_PROMPTS_PER_UNIT, screen_chunks

    chunks = screen_chunks(n)
    assert chunks[0][0] == 0 and chunks[-1][1] == n
    assert all(a < b for a, b in chunks)
    assert all(b1 == a2 for (_, b1), (a2, _) in zip(chunks, chunks[1:], strict=False))
    sizes = [b - a for a, b in chunks]
    assert max(sizes) <= SCREEN_PROMPTS_PER_UNIT and max(sizes) - min(sizes) <= 1
    assert len(chunks) % 2 == 0 or n == 1  # two workers share them evenly


def test_screen_batches_of_long_prompts_are_split_to_bound_the_backward_memory():
    """Prompts of up to 128 tokens keep the batch size; longer ones go in smaller batches
    (rows x positions^2 within the bound), every prompt exactly once, its index kept."""
    from act_lens.analysis.screening import SCREEN_MAX_CELLS, _bounded_batches
    from act_lens.evaluation.batching import make_batches

    short = [[1] * n for n in (40, 50, 60, 128, 30, 20, 10, 100)]
    assert [b.index for b in _bounded_batches(short, 8, 0)] == [
        b.index for b in make_batches(short, 8, 0)
    ]
    mixed = [[7] * 300, [1] * 20, [5] * 200, [2] * 30, [3] * 140]
    batches = list(_bounded_batches(mixed, 8, 0))
    seen = sorted(i for b in batches for i in b.index)
    assert seen == list(range(len(mixed)))
    for b in batches:
        rows, width = b.tokens.shape
        assert rows == 1 or rows * width**2 <= SCREEN_MAX_CELLS
        for row, i in enumerate(b.index):  # each row is its own prompt, left-padded
            n = len(mixed[i])
            assert b.tokens[row, -n:].tolist() == mixed[i] and int(b.attention_mask[row].sum()) == n
    assert len(batches) > 1
