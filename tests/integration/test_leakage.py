"""Calibration and evaluation never share an example, compared by text, on every command path.

Every prompt act_lens builds goes through ``Task.build(example, demos)``; a spy records the
text of each example built as calibration (loaded as the train split), as evaluated (the eval
split) and as a demonstration. The data are made to tempt a leak: one file for both parts, with
repeated rows, and a data folder whose train and dev files share rows.
"""

import random

import pytest

from act_lens.app.cli import main
from act_lens.evaluation.tasks import ClassificationTask, get_task
from act_lens.evaluation.tasks.holdout import SplitFile

TINY = ["--model", "tiny-random", "--batch-size", "8", "--layers", "1-2"]


def _text(example) -> str:
    return " ".join(" ".join(v.lower().split()) for _, v in sorted(example.fields.items()))


@pytest.fixture
def built(monkeypatch):
    """{"calibration": texts, "eval": texts, "demo": texts} of every prompt built."""
    seen: dict[str, set[str]] = {"calibration": set(), "eval": set(), "demo": set()}
    original = ClassificationTask.build

    def spy(self, example, demos=()):
        part = example.uid.split(":")[1]
        if part in ("train", "eval"):  # content-free inputs ("cf") are neither
            seen["calibration" if part == "train" else "eval"].add(_text(example))
        seen["demo"].update(_text(d) for d in demos)
        return original(self, example, demos)

    monkeypatch.setattr(ClassificationTask, "build", spy)
    return seen


def _rows(n: int, seed: int) -> list[str]:
    """sst2-format lines from the built-in reviews, some repeated (one with the other label)."""
    pool = get_task("reviews").load(split="train") + get_task("reviews").load(split="eval")
    picked = random.Random(seed).sample(pool, n)
    lines = [f"{e.label} {e.fields['review']}" for e in picked]
    repeats = [f"{1 - e.label} {e.fields['review']}" for e in picked[:6]]
    return lines + lines[6:12] + repeats


def _assert_disjoint(built: dict[str, set[str]]) -> None:
    assert built["eval"], "nothing was evaluated: the spy saw no prompt"
    assert not built["calibration"] & built["eval"], "a calibration example was evaluated"
    assert not built["demo"] & built["eval"], "an evaluated example was a demonstration"


def test_one_file_is_cut_into_disjoint_parts_by_content(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("\n".join(_rows(80, 0)) + "\n")
    sst2 = get_task("sst2")
    everything = {_text(e) for e in sst2.load(path)}  # a plain path: every row, as before
    calib = sst2.load(SplitFile(path), "train")
    held_out = sst2.load(SplitFile(path), "eval")
    assert {_text(e) for e in calib} | {_text(e) for e in held_out} == everything
    assert not {_text(e) for e in calib} & {_text(e) for e in held_out}
    assert len(calib) + len(held_out) == 80 + 6 + 6  # every row is in one part
    assert sst2.load(SplitFile(path), "eval") == held_out  # the same cut every time


def test_run_search_and_eval_on_one_data_file(tmp_path, built):
    path = tmp_path / "mine.txt"
    path.write_text("\n".join(_rows(80, 1)) + "\n")
    data = ["--task", "sst2", "--data-file", str(path)]
    run = tmp_path / "run"
    assert main(["run", *TINY, *data, "--calib-size", "16", "--out", str(run)]) == 0
    assert built["calibration"] and built["eval"]
    _assert_disjoint(built)
    # separate commands on the same file: search calibrates on one part, eval reads the other
    search = tmp_path / "search"
    assert main(["search", *TINY, *data, "--calib-size", "16", "--out", str(search)]) == 0
    head_set = str(search / "head_set.json")
    argv = ["eval", *TINY, *data, "--shots", "2", "--head-set", head_set, "--no-controls"]
    assert main([*argv, "--out", str(tmp_path / "eval")]) == 0
    assert built["demo"]
    _assert_disjoint(built)
    report = (run / "report.md").read_text()
    assert f"evaluated on {path}, eval part" in report and "calibration part" in report


def test_a_data_folder_whose_train_and_dev_files_share_rows(tmp_path, built):
    lines = _rows(70, 2)
    train, dev = lines[:50], lines[50:]
    shared = train[:10]
    folder = tmp_path / "data" / "sst2"
    folder.mkdir(parents=True)
    (folder / "stsa.binary.train").write_text("\n".join(train) + "\n")
    (folder / "stsa.binary.dev").write_text("\n".join(dev + shared) + "\n")
    sst2 = get_task("sst2")
    raw_train = {_text(e) for e in sst2.load(tmp_path / "data", "train")}
    raw_dev = {_text(e) for e in sst2.load(tmp_path / "data", "eval")}
    assert raw_train & raw_dev, "the files must share rows for this test to mean anything"
    data = ["--task", "sst2", "--data-dir", str(tmp_path / "data")]
    # every calibration example is drawn: the 10 shared ones would be in it without the check
    assert main(["run", *TINY, *data, "--calib-size", "60", "--out", str(tmp_path / "r")]) == 0
    assert main(["eval", *TINY, *data, "--shots", "4", "--out", str(tmp_path / "e")]) == 0
    assert built["calibration"] and built["demo"]
    _assert_disjoint(built)


def test_sinks_reads_the_eval_part_only(tmp_path, built):
    path = tmp_path / "mine.txt"
    path.write_text("\n".join(_rows(40, 3)) + "\n")
    argv = ["sinks", *TINY, "--task", "sst2", "--data-file", str(path)]
    assert main([*argv, "--out", str(tmp_path / "s")]) == 0
    calib = {_text(e) for e in get_task("sst2").load(SplitFile(path), "train")}
    assert built["eval"] and not built["eval"] & calib
