"""analyses/study.py and analyses/selection_rules.py on the tiny model: draws, reuse, the page."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ANALYSES = Path(__file__).resolve().parents[2] / "analyses"


def _script(name: str):
    sys.path.insert(0, str(ANALYSES))  # study.py imports its siblings
    try:
        spec = importlib.util.spec_from_file_location(name, ANALYSES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(ANALYSES))


def _row(size: int, gained: int, lost: int, n: int = 40) -> dict:
    return {"size": size, "accuracy": 0.5 + (gained - lost) / n, "gained": gained, "lost": lost,
            "n": n, "gain": (gained - lost) / n, "p_value": 0.5, "choice_logprob": -1.0}  # fmt: skip


def test_selection_rules_pick_by_their_own_test() -> None:
    rules = _script("selection_rules").rules
    # size 2: 6 fixed, 0 broken (sign test p = 0.016); size 4: more accurate, but 11 fixed and
    # 4 broken (p = 0.059: eligible at 90%, not at 95%, and a lower bound below size 2's)
    curve = [_row(0, 0, 0), _row(1, 1, 1), _row(2, 6, 0), _row(4, 11, 4)]
    assert rules(curve) == {"conf90": 4, "conf95": 2, "bonf90": 2, "maxlower90": 2, "best": 4}
    flat = [_row(0, 0, 0), _row(1, 3, 1), _row(2, 2, 2)]
    assert rules(flat) == {"conf90": 0, "conf95": 0, "bonf90": 0, "maxlower90": 0, "best": 1}


def test_a_summary_is_stale_when_its_files_moved_or_mix_numerics(tmp_path: Path) -> None:
    study = _script("study")
    numerics = {"precision": "bf16", "threads": 1, "batch_size": 8}

    def save(name: str, accuracy: float, **change: int) -> None:
        info = {"numerics": numerics | change}
        (tmp_path / f"sst2_{name}.json").write_text(
            json.dumps({"accuracy": accuracy, "info": info})
        )

    rows = {"act": {"baseline": 0.5, "treated": 0.7}, "random": {"baseline": 0.5, "treated": 0.5}}
    rec = {
        "task": "sst2",
        "draw": 0,
        "heads": ["2.1"],
        "rows": rows,
    }  # an older summary: no digests
    for name, acc in (("baseline", 0.5), ("act", 0.7), ("random", 0.5)):
        save(name, acc)
    assert study.stale(tmp_path, rec) == []
    save("act", 0.6)  # evaluated again since: its accuracy moved
    assert study.stale(tmp_path, rec) == ["sst2_act.json"]
    save("act", 0.7)
    save("random", 0.5, threads=2)  # same accuracy, but no delta to read against the baseline
    assert study.stale(tmp_path, rec) == ["sst2_random.json (other numerics than the baseline)"]
    (tmp_path / "sst2_random.json").unlink()
    assert study.stale(tmp_path, rec) == ["sst2_random.json (missing)"]
    # an empty set's runs are the baseline's: only that file is read
    empty = {"act": rows["random"], "random": rows["random"]}
    assert study.stale(tmp_path, rec | {"heads": [], "rows": empty}) == []


def test_a_run_is_listed_among_the_commands_only_once_it_wrote_a_result(
    tmp_path: Path, monkeypatch
) -> None:
    study = _script("study")
    out = tmp_path / "o"
    argv = ["--out", str(out), "--data-dir", str(tmp_path), "--page", str(tmp_path / "p.md")]
    monkeypatch.setattr(study, "load_model", lambda name: None)
    monkeypatch.setattr(study, "pool_scope", lambda *a: contextlib.nullcontext())

    def interrupted(a, *rest):  # stopped before it wrote anything (in a search, say)
        (out / "smollm2-135m_c128").mkdir(parents=True)
        (out / "smollm2-135m_c128" / "search_sst2.ckpt").write_bytes(b"progress, not a result")
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "run_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        study.main(argv)
    assert study.commands(out) == []

    def wrote_one(a, *rest):  # stopped after its first result
        (out / "smollm2-135m_c128" / "head_set_sst2.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "run_model", wrote_one)
    with pytest.raises(KeyboardInterrupt):
        study.main(argv + ["--tasks", "sst2"])
    assert study.commands(out) == [f"python analyses/study.py {' '.join(argv)} --tasks sst2"]
    # a bad data directory is refused before anything is listed
    with pytest.raises(SystemExit):
        study.main(["--out", str(out), "--data-dir", str(tmp_path / "absent"), "--draws", "2"])
    assert len(study.commands(out)) == 1


@pytest.mark.data
def test_study_draws_reuse_and_page(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    study = _script("study")
    out, page = tmp_path / "study", tmp_path / "docs" / "evidence.md"
    page.parent.mkdir()
    argv = ["--models", "tiny-random", "--data-dir", str(data_dir), "--out", str(out),
            "--page", str(page), "--tasks", "sst2", "--draws", "2", "--calib-sizes", "4",
            "--limit", "3", "--batch-size", "4", "--layers", "all", "--workers", "1",
            "--precision", "fp32", "--methods", "act,zt", "--kshot-tasks", "sst2",
            "--kshot-search", "--shots", "2", "--seeds", "2", "--mc-tasks", "copa"]  # fmt: skip
    assert study.main(argv) == 0
    folder = out / "tiny-random_c4"
    first = json.loads((folder / "study_sst2.json").read_text())
    second = json.loads((folder / "study_sst2_d1.json").read_text())
    assert first["draw"] == 0 and second["draw"] == 1
    for rec in (first, second):
        assert set(rec["rows"]) == {"act", "random", "cc", "cc+act", "act_vs_cc"}
        assert rec["rows"]["act"]["n"] == 3
    # the two draws use different calibration prompts (the seed): different search files
    assert (folder / "head_set_sst2.json").exists() and (folder / "head_set_sst2_d1.json").exists()
    text = page.read_text()
    assert "## tiny-random, 4 calibration prompts per task" in text
    # every evaluation of the folder ran under one recorded setting, and the page says which
    from act_lens.runtime.precision import kernels

    assert "Evaluations: " in text and "thread(s) per forward, batch 4, kernels " in text
    assert f"kernels {kernels('cpu')} (" in text
    assert "unrecorded" not in text
    assert "| sst2 | 3 |" in text
    assert (out / "forest_tiny-random_c4.png").stat().st_size > 0
    assert "](../study/forest_tiny-random_c4.png)" in text
    # ZeroTuning and ACT + ZeroTuning on draw 0's examples, with the share CC also fixes
    methods = json.loads((folder / "methods_sst2.json").read_text())["rows"]
    assert {"act", "zt_sup", "zt_unsup", "act+zt", "cc"} <= set(methods)
    assert all("cc_share" in methods[m] for m in ("act", "zt_sup", "zt_unsup", "act+zt"))
    assert "Methods on equal terms" in text and "that CC also gets right" in text
    # k-shot: draw 0's zero-shot set on 2-shot prompts, two demonstration seeds
    kshot = json.loads((folder / "kshot_sst2.json").read_text())
    assert kshot["shots"] == 2 and len(kshot["per_seed"]) == 2
    assert "| sst2 | 2 | 2 |" in text
    # and a set searched on 2-shot calibration prompts, applied to the same 2-shot examples
    k_set = json.loads((folder / "head_set_k2_sst2.json").read_text())
    assert k_set["provenance"]["shots"] == 2
    assert {"treated_k", "delta_k", "cc+act_k"} <= set(kshot["summary"])
    assert kshot["heads"]["act_k"] == len(k_set["heads"])
    assert "ACT (k-shot search)" in text
    # multiple choice: one set from the MC training splits, letters and full continuations
    mc = json.loads((folder / "mc_study_copa.json").read_text())
    assert {"act", "random", "cc", "cc+act", "act_full", "random_full", "norm_full",
            "blind"} <= set(mc["rows"])  # fmt: skip
    assert mc["rows"]["act_full"]["n"] == 3 and 0 <= mc["rows"]["blind"]["baseline"] <= 1
    assert (folder / "head_set_mc.json").exists() and "Multiple choice: one set" in text
    assert "| copa | 3 |" in text

    # resumed: nothing is searched or evaluated again
    def boom(*a, **k):
        raise AssertionError("recomputed a saved result")

    with monkeypatch.context() as m:
        m.setattr(study.Runner, "head_set", boom)
        m.setattr(study.Runner, "evaluation", boom)
        assert study.main(argv) == 0
    # the page alone, from the files
    page.unlink()
    assert study.main(argv + ["--page-only"]) == 0
    assert "| sst2 | 3 |" in page.read_text() and "Stale" not in page.read_text()

    # an evaluation saved again after its record was built (another rounding, one prediction
    # moved): the page says the record is stale, and the next run rebuilds it from the files
    path = folder / "sst2_baseline.json"
    d = json.loads(path.read_text())
    right = d["predictions"][0] == d["labels"][0]
    d["predictions"][0] = (d["labels"][0] + 1) % 2 if right else d["labels"][0]
    d["accuracy"] += (-1 if right else 1) / d["n"]
    path.write_text(json.dumps(d))
    assert study.stale(folder, first) == ["sst2_baseline.json"]
    assert study.main(argv + ["--page-only"]) == 0
    text = page.read_text()  # both draws were read against that baseline
    assert "**Stale:** `study_sst2.json`: sst2_baseline.json; " in text
    assert "`study_sst2_d1.json`: sst2_baseline.json. These summaries" in text
    assert study.main(argv) == 0
    rebuilt = json.loads((folder / "study_sst2.json").read_text())
    assert rebuilt["rows"]["act"]["baseline"] == pytest.approx(d["accuracy"])
    assert study.stale(folder, rebuilt) == [] and "Stale" not in page.read_text()


def test_multiple_choice_by_letters_only_then_with_full_continuations(
    data_dir: Path, tmp_path: Path
) -> None:
    study = _script("study")
    out, page = tmp_path / "study", tmp_path / "evidence.md"
    argv = ["--models", "tiny-random", "--data-dir", str(data_dir), "--out", str(out),
            "--page", str(page), "--tasks", "sst2", "--draws", "1", "--calib-sizes", "4",
            "--limit", "3", "--batch-size", "4", "--layers", "all", "--workers", "1",
            "--precision", "fp32", "--mc-tasks", "copa"]  # fmt: skip
    assert study.main(argv + ["--mc-scoring", "letters"]) == 0
    folder = out / "tiny-random_c4"
    rec = json.loads((folder / "mc_study_copa.json").read_text())
    assert {"act", "random", "cc", "cc+act", "blind"} <= set(rec["rows"])
    assert "act_full" not in rec["rows"] and not list(folder.glob("copa_*_full.json"))
    assert study.stale(folder, rec) == []
    assert "| not run | not run | not run |" in page.read_text()
    assert "full continuations not run" in page.read_text()
    # the same command with both scorings adds the full continuations, reusing the letters' runs
    kept = [*folder.glob("copa_*.json"), folder / "head_set_mc.json"]
    letters = {p: p.stat().st_mtime_ns for p in kept}
    assert study.main(argv) == 0
    rec = json.loads((folder / "mc_study_copa.json").read_text())
    assert rec["rows"]["act_full"]["n"] == 3 and study.stale(folder, rec) == []
    assert (folder / "copa_baseline_full.json").exists() and "not run" not in page.read_text()
    assert {p: p.stat().st_mtime_ns for p in kept} == letters  # not searched or evaluated again


def test_study_refuses_bad_arguments_before_loading(tmp_path: Path) -> None:
    study = _script("study")
    for bad in (["--tasks", "nope"], ["--methods", "zt"], ["--calib-sizes", "x"], ["--draws", "0"],
                ["--mc-tasks", "sst2"], ["--mc-scoring", "full"]):  # fmt: skip
        with pytest.raises(SystemExit):
            study.main(["--out", str(tmp_path / "o"), "--data-dir", str(tmp_path)] + bad)


@pytest.mark.data
def test_selection_rules_reuse_a_saved_run_only_under_the_same_numerics(
    data_dir: Path, tmp_path: Path, tiny, monkeypatch
) -> None:
    from types import SimpleNamespace

    from act_lens.evaluation.evaluate import evaluate, numerics
    from act_lens.hooks.headset import HeadSet

    rules = _script("selection_rules")
    args = SimpleNamespace(runs=str(tmp_path), data_dir=str(data_dir), limit=3, prompts="paper",
                           precision="fp32")  # fmt: skip
    saved = evaluate(tiny, "sst2", data=data_dir, limit=3, batch_size=4, progress=False)
    saved.save(tmp_path / "sst2_baseline.json")
    now = numerics(tiny, 8)
    assert rules.saved_under(tmp_path / "sst2_baseline.json", numerics(tiny, 4)) is not None
    assert rules.saved_under(tmp_path / "sst2_baseline.json", now) is None  # other batch size
    calls = []
    real = rules.evaluate
    monkeypatch.setattr(rules, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = rules.prefix_run(args, tiny, "sst2", HeadSet([]), 0, now)
    again = rules.prefix_run(args, tiny, "sst2", HeadSet([]), 0, now)
    assert len(calls) == 1 and (tmp_path / "sst2_size0.json").exists()
    assert first.info["numerics"] == now and again.predictions == first.predictions
