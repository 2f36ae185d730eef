"""Task loaders on the real shared data (counts, label maps, splits) and on bad files."""

from __future__ import annotations

import json
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

from act_lens.errors import ConfigError, DataError
from act_lens.evaluation.tasks import BUILTIN_TASK, Example, get_task, task_names

PAPER_TASKS = (
    "sst2", "sst5", "mr", "subj", "agnews", "trec", "cb", "boolq", "dbpedia",
    "hellaswag", "arc_easy", "arc_challenge", "piqa", "openbookqa", "copa", "commonsense_qa", "mmlu",
)  # fmt: skip

# (task, split) -> count, from shared/data/README.md and the SOURCE.md files.
COUNTS = {
    ("sst2", "train"): 6920, ("sst2", "eval"): 872,
    ("sst5", "train"): 8544, ("sst5", "eval"): 1101,
    ("mr", "train"): 8530, ("mr", "eval"): 1066, ("mr", "test"): 1066,
    ("subj", "train"): 8000, ("subj", "eval"): 2000,
    ("agnews", "train"): 1000, ("agnews", "eval"): 7600,
    ("trec", "train"): 5452, ("trec", "eval"): 500,
    ("cb", "train"): 250, ("cb", "eval"): 56,
    ("boolq", "train"): 1000, ("boolq", "eval"): 3270, ("boolq", "fewglue"): 64,
    ("dbpedia", "train"): 5000, ("dbpedia", "eval"): 5000,
    ("hellaswag", "eval"): 10042,
    ("arc_easy", "train"): 2251, ("arc_easy", "eval"): 570,
    ("arc_challenge", "train"): 1119, ("arc_challenge", "eval"): 299,
    ("piqa", "eval"): 1838,
    ("openbookqa", "train"): 4957, ("openbookqa", "eval"): 500,
    ("copa", "train"): 64, ("copa", "eval"): 100,
    ("commonsense_qa", "train"): 9741, ("commonsense_qa", "eval"): 1221,
    ("mmlu", "train"): 285, ("mmlu", "eval"): 1531,
}  # fmt: skip

# Label counts stated in SOURCE.md, in label-id order.
LABEL_COUNTS = {
    ("sst2", "train"): [3310, 3610],
    ("sst2", "eval"): [428, 444],
    ("sst5", "eval"): [139, 289, 229, 279, 165],
    ("cb", "eval"): [23, 28, 5],  # entailment (Yes), contradiction (No), neutral (Maybe)
    ("boolq", "eval"): [1237, 2033],  # False, True
    ("agnews", "train"): [250, 250, 250, 250],
    ("hellaswag", "eval"): [2515, 2485, 2584, 2458],
    ("piqa", "eval"): [910, 928],
    ("copa", "eval"): [55, 45],
    ("openbookqa", "eval"): [138, 126, 132, 104],
    ("commonsense_qa", "eval"): [239, 255, 241, 251, 235],
    ("mmlu", "train"): [67, 69, 71, 78],
    ("mmlu", "eval"): [381, 379, 387, 384],
    ("trec", "train"): [86, 1250, 1162, 1223, 835, 896],  # ABBR ENTY DESC HUM LOC NUM
    ("trec", "eval"): [9, 94, 138, 65, 81, 113],
}


def _label_counts(examples: list[Example]) -> list[int]:
    counts = Counter(ex.label for ex in examples)
    return [counts[i] for i in range(max(counts) + 1)]


def test_registry_has_every_paper_task_and_the_builtin() -> None:
    assert set(task_names()) == {*PAPER_TASKS, BUILTIN_TASK}
    for name in task_names():
        task = get_task(name)
        assert task.eval_split in task.splits()
        assert task.train_split is None or task.train_split in task.splits()


def test_unknown_task_and_split_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="known tasks: sst2, sst5"):
        get_task("sst3")
    with pytest.raises(ConfigError, match="no split 'dev'"):
        get_task(BUILTIN_TASK).load(split="dev")


@pytest.mark.parametrize(("name", "split"), sorted(COUNTS))
def test_counts_match_source_md(data_dir: Path, name: str, split: str) -> None:
    examples = get_task(name).load(data_dir, split)
    assert len(examples) == COUNTS[(name, split)]
    assert [ex.uid for ex in examples[:2]] == [f"{name}:{split}:0", f"{name}:{split}:1"]
    if (name, split) in LABEL_COUNTS:
        assert _label_counts(examples) == LABEL_COUNTS[(name, split)]


def test_aliases_give_the_same_examples(data_dir: Path) -> None:
    task = get_task("cb")
    assert task.load(data_dir, "validation") == task.load(data_dir) == task.load(data_dir, "eval")
    assert get_task("mmlu").load(data_dir, "dev") == get_task("mmlu").load(data_dir, "train")


def test_trec_maps_every_coarse_name_to_its_word(tmp_path: Path, data_dir: Path) -> None:
    expected = {
        "ABBR": "Abbreviation", "ENTY": "Entity", "DESC": "Description",
        "HUM": "Person", "LOC": "Location", "NUM": "Number",
    }  # fmt: skip
    task = get_task("trec")
    # Order in the file differs from the label order, so a positional map would fail.
    lines = [
        f"{c}:x Question {i} ?" for i, c in enumerate(["NUM", "LOC", "HUM", "DESC", "ENTY", "ABBR"])
    ]
    path = tmp_path / "TREC.test"
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    for ex in task.load(path):
        assert task.label_words[ex.label] == expected[ex.meta["coarse"]]
    seen = set()
    for ex in task.load(data_dir, "train"):
        assert task.label_words[ex.label] == expected[ex.meta["coarse"]]
        seen.add(ex.meta["coarse"])
    assert seen == set(expected)


def test_trec_latin1_byte_and_one_file_by_path(data_dir: Path) -> None:
    task = get_task("trec")
    train = task.load(data_dir / "trec" / "TREC.train", "train")
    assert len(train) == 5452
    assert "sister\u00f0city" in train[65].fields["question"]  # the 0xF0 byte of line 66
    assert train[65].meta["source"] == "TREC.train:66"


def test_mr_split_follows_the_hf_rule(data_dir: Path) -> None:
    task = get_task("mr")
    splits = {s: task.load(data_dir, s) for s in ("train", "eval", "test")}
    assert splits["eval"][0].meta["source"] == "rt-polarity.pos:4266"
    assert splits["eval"][533].meta["source"] == "rt-polarity.neg:4266"
    assert splits["test"][-1].meta["source"] == "rt-polarity.neg:5331"
    sources = [ex.meta["source"] for part in splits.values() for ex in part]
    assert len(set(sources)) == 10662
    assert task.load(data_dir, "eval") == splits["eval"]  # deterministic


def test_subj_split_is_seeded_and_disjoint(data_dir: Path) -> None:
    task = get_task("subj")
    train, test = task.load(data_dir, "train"), task.load(data_dir, "eval")
    assert (len(train), len(test)) == (8000, 2000)
    sources = {ex.meta["source"] for ex in [*train, *test]}
    assert len(sources) == 10000
    # Pinned: random.Random(0).shuffle over objective-then-subjective lines.
    assert test[0].meta["source"] == "subj.objective:686"
    assert train[0].meta["source"] == "subj.subjective:4771"
    assert task.load(data_dir, "test") == test


def test_agnews_and_dbpedia_map_class_names(data_dir: Path) -> None:
    agnews = get_task("agnews")
    first = agnews.load(data_dir, "train")[0]  # DataICL line, HF ag_news train[0]
    assert first.fields["text"].startswith("Wall St. Bears Claw Back Into the Black (Reuters)")
    assert "dwindling\\band" in first.fields["text"]  # backslash escapes kept, as in HF
    assert agnews.label_words[first.label] == "Business"
    test = agnews.load(data_dir / "agnews" / "test.csv")
    assert agnews.label_words[test[1].label] == "Technology"  # class index 4, Science/Tech
    dbpedia = get_task("dbpedia")
    assert "UNOFFICIAL" in dbpedia.description
    words = dict(zip(
        ["Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder",
         "MeanOfTransportation", "Building", "NaturalPlace", "Village", "Animal", "Plant",
         "Album", "Film", "WrittenWork"],
        dbpedia.label_words, strict=True,
    ))  # fmt: skip
    examples = dbpedia.load(data_dir)
    assert (examples[0].meta["class"], examples[1].meta["class"]) == ("Artist", "Village")
    assert all(dbpedia.label_words[ex.label] == words[ex.meta["class"]] for ex in examples)
    assert examples[0].meta["subset"] == "dhim_unofficial"


def test_boolq_dataicl_is_parsed_back(data_dir: Path) -> None:
    task = get_task("boolq")
    first = task.load(data_dir, "train")[0]
    assert first.fields["question"] == "do iran and afghanistan speak the same language"
    assert first.fields["passage"].startswith("Persian (")
    assert task.label_words[first.label] == "True"
    val = task.load(data_dir)[0]
    assert val.fields["passage"].startswith("Ethanol fuel -- ")


def test_multiple_choice_formats(data_dir: Path) -> None:
    arc = {ex.meta["id"]: ex for ex in get_task("arc_easy").load(data_dir)}
    numeric = arc["NYSEDREGENTS_2014_8_10"]  # labels "1".."4", answerKey "1"
    assert (numeric.label, numeric.options[0]) == (0, "obtain energy")
    copa = get_task("copa").load(data_dir)[0]
    assert copa.fields["question"] == "The man turned on the faucet. What happened as a result?"
    mmlu = get_task("mmlu").load(data_dir)
    assert len({ex.meta["subject"] for ex in mmlu}) == 57
    hella = get_task("hellaswag").load(data_dir)[0]
    assert hella.fields["question"] == "Roof shingle removal: A man is sitting on a roof. he"
    assert (hella.label, len(hella.options)) == (3, 4)


def test_single_files_by_path(data_dir: Path) -> None:
    dev = get_task("sst2").load(data_dir / "sst2" / "stsa.binary.dev")
    assert len(dev) == 872 and dev[0].uid == "sst2:eval:0"
    assert (
        get_task("sst2").load(data_dir / "sst2" / "stsa.binary.dev", "dev")[0].uid == "sst2:eval:0"
    )
    pos = get_task("mr").load(data_dir / "mr" / "rt-polarity.pos", "all")
    assert len(pos) == 5331 and {ex.label for ex in pos} == {1} and pos[0].uid == "mr:all:0"
    anatomy = get_task("mmlu").load(data_dir / "mmlu" / "val" / "anatomy_val.csv")
    assert len(anatomy) == 14 and anatomy[0].meta["subject"] == "anatomy"
    assert len(get_task("piqa").load(data_dir / "piqa" / "valid.jsonl")) == 1838
    assert len(get_task("cb").load(data_dir / "cb")) == 56  # the task folder itself


@pytest.mark.parametrize(
    ("name", "file", "content", "line"),
    [
        ("sst2", "bad.train", "1 good .\n0 bad .\nx broken line\n", 3),
        ("sst5", "bad.dev", "4 fine .\n7 out of range .\n", 2),
        ("trec", "bad.test", "NUM:dist How far ?\nQUX:x What ?\n", 2),
        ("cb", "bad.jsonl", '{"premise": "a", "hypothesis": "b", "label": "neutral"}\n{"premise": \n', 2),
        ("cb", "bad2.jsonl", '{"premise": "a", "hypothesis": "b", "label": "maybe"}\n', 1),
        ("mmlu", "x_val.csv", 'q,a,b,c,d,A\n"multi\nline q",a,b,c,d,A\nq,a,b,c,d,Z\n', 4),
        ("arc_easy", "bad.jsonl", '{"id": "1", "question": {"stem": "s", "choices": [{"text": "t", "label": "A"}]}, "answerKey": "B"}\n', 1),
        ("hellaswag", "bad.txt", "Ctx: a\n9\ne0\ne1\ne2\ne3\n", 2),
    ],
)  # fmt: skip
def test_malformed_line_names_file_and_line(
    tmp_path: Path, name: str, file: str, content: str, line: int
) -> None:
    path = tmp_path / file
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=rf"{file}:{line}: "):
        get_task(name).load(path)


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.train"
    path.write_bytes(b"1 fine .\n0 caf\xe9 .\n")
    with pytest.raises(DataError, match=r"latin\.train:2: not valid utf-8"):
        get_task("sst2").load(path)


def test_missing_data_explains_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data directory"):
        get_task("sst2").load()
    with pytest.raises(DataError, match="no 'sst2' folder"):
        get_task("sst2").load(tmp_path)
    (tmp_path / "piqa").mkdir()
    (tmp_path / "piqa" / "valid.jsonl").write_text('{"goal": "g", "sol1": "a", "sol2": "b"}\n')
    with pytest.raises(DataError, match="valid-labels.lst"):
        get_task("piqa").load(tmp_path)


def _make_builtin():
    """analyses/make_builtin.py, the script that writes the packaged reviews file."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "analyses" / "make_builtin.py"
    spec = importlib.util.spec_from_file_location("make_builtin", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builtin_loads_without_data_and_matches_generator() -> None:
    task = get_task(BUILTIN_TASK)
    train, test = task.load(split="train"), task.load()
    assert (len(train), len(test)) == (300, 300)
    assert _label_counts(test) == [150, 150]
    assert not {ex.fields["review"] for ex in train} & {ex.fields["review"] for ex in test}
    packaged = (
        Path(__file__).resolve().parents[2]
        / "act_lens"
        / "evaluation"
        / "tasks"
        / "data"
        / "reviews.jsonl"
    )
    make = _make_builtin()
    assert make.OUT == packaged
    assert packaged.read_text(encoding="utf-8") == make.render(make.generate())


def test_sample_demos_is_deterministic_and_excludes_query() -> None:
    task = get_task(BUILTIN_TASK)
    pool = task.load(split="train")
    demos = task.sample_demos(pool, k=4, seed=3)
    assert demos == task.sample_demos(pool, k=4, seed=3)
    assert demos != task.sample_demos(pool, k=4, seed=4)
    assert len({d.uid for d in demos}) == 4
    without = task.sample_demos(pool, k=4, seed=3, exclude_uid=demos[0].uid)
    assert demos[0] not in without and without[:3] == demos[1:]
    assert task.sample_demos(pool, k=0, seed=0) == []
    with pytest.raises(DataError, match="only 2 candidates"):
        task.sample_demos(pool[:3], k=3, seed=0, exclude_uid=pool[0].uid)
    with pytest.raises(ConfigError):
        task.sample_demos(pool, k=-1, seed=0)


@pytest.mark.parametrize("name", ["hellaswag", "piqa"])
def test_no_train_split_means_no_demos(name: str) -> None:
    task = get_task(name)
    assert task.train_split is None
    ex = Example(f"{name}:eval:0", {"question": "q"}, 0, ("a", "b"))
    with pytest.raises(DataError, match="no train split"):
        task.sample_demos([ex, ex], k=1, seed=0)


def test_hf_unreachable_raises_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(DataError, match=r"unreachable.*--data-dir"):
        get_task("sst2").load("hf:glue:sst2")


def test_hf_rows_convert_like_local_files(monkeypatch: pytest.MonkeyPatch) -> None:
    class Rows(list):
        features = {
            "coarse_label": types.SimpleNamespace(
                names=["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"]
            )
        }

    calls = []

    def load_dataset(name: str, config: str | None, split: str) -> Rows:
        calls.append((name, config, split))
        return Rows([{"text": "Who was Galileo ?", "coarse_label": 3, "fine_label": 0}])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    task = get_task("trec")
    (ex,) = task.load("hf:trec")
    assert calls == [("trec", None, "test")]
    assert (ex.uid, task.label_words[ex.label]) == ("trec:eval:0", "Person")


def test_record_json_roundtrip_of_examples(data_dir: Path) -> None:
    # Examples hold plain strings and ints, so results can be saved as JSON.
    ex = get_task("copa").load(data_dir)[0]
    assert json.loads(json.dumps({"fields": dict(ex.fields), "options": ex.options}))["options"][
        1
    ] == ("Water flowed from the spout.")
