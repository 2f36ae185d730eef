"""The joint selection and per-task head sets on a tiny random Llama."""

import dataclasses
import json

import pytest
import torch

from act_lens.analysis.search import SearchConfig, Selection, search_heads
from act_lens.app.cli import main
from act_lens.core.settings import SinkSettings
from act_lens.evaluation.task_result import load_results
from tests.helpers import byte_prompts, n_hooks

SETTINGS = SinkSettings(threshold=0.05)
CONFIG = SearchConfig(batch_size=4, progress=False)
TEXTS = [
    f"{w} is here:"
    for w in ("cat", "dog", "owl", "ant", "bee", "elk", "fox", "gnu", "hen", "jay", "koi", "yak")
]


def test_joint_selection_picks_the_best_prefix_on_the_validation_part(tiny):
    prompts = byte_prompts(TEXTS, labels=[i % 2 for i in range(len(TEXTS))])
    hs = search_heads(tiny, prompts, layers=[0, 1, 2], settings=SETTINGS, config=CONFIG).head_set
    prov = hs.provenance
    assert n_hooks(tiny) == 0
    assert prov["calibration"]["n"] == 6 and prov["validation_set"]["n"] == 6  # half validates
    order = prov["candidate_order"]
    effects = [prov["per_head"][k]["effect"] for k in order]
    assert effects == sorted(effects, reverse=True) and all(e > 0 for e in effects)
    curve = prov["curve"]
    assert curve[0]["size"] == 0 and [r["size"] for r in curve][-1] == len(order)
    chosen = prov["selected_size"]
    row = next(r for r in curve if r["size"] == chosen)
    eligible = [r for r in curve if r["eligible"]]
    assert all(r["size"] > 0 and r["lower"] > 0 for r in eligible)
    if chosen:  # the eligible size with the best validation accuracy, never an ineligible one
        assert row["eligible"] and row["accuracy"] == max(r["accuracy"] for r in eligible)
    else:
        assert not eligible
    assert prov["decision"]["selected_size"] == chosen and prov["decision"]["reason"]
    assert sorted(f"{la}.{h}" for la, h in hs) == sorted(order[:chosen])
    top = search_heads(tiny, prompts, layers=[0, 1, 2], settings=SETTINGS, config=CONFIG,
                       selection=Selection("top_k", top_k=2)).head_set  # fmt: skip
    assert len(top) == 2 and top.provenance["calibration"]["n"] == 12  # no split for top_k


def test_per_task_search_then_eval_applies_each_tasks_own_set(tmp_path, data_dir, monkeypatch):
    base = ["--model", "tiny-random", "--task", "reviews", "--task", "sst2",
            "--data-dir", str(data_dir), "--batch-size", "4", "--layers", "1,2",
            "--threshold", "0.05"]  # fmt: skip
    out = tmp_path / "s"
    assert main(["search", *base, "--per-task", "--calib-size", "8", "--select", "top_k",
                 "--top-k", "2", "--out", str(out)]) == 0  # fmt: skip
    bundle = json.loads((out / "head_sets.json").read_text())
    assert sorted(bundle["per_task"]) == ["reviews", "sst2"]
    for task in ("reviews", "sst2"):
        own = json.loads((out / f"head_set_{task}.json").read_text())
        assert own["provenance"]["tasks"] == [task]
        assert set(own["provenance"]["calibration"]["tasks"]) == {task}
    # Make the two sets differ so that a mix-up would show, then record what eval applies.
    bundle["per_task"]["reviews"]["heads"] = {"1": [0]}
    bundle["per_task"]["sst2"]["heads"] = {"2": [1, 3]}
    (out / "head_sets.json").write_text(json.dumps(bundle))
    import act_lens.app.pipeline as pipeline

    applied: list[tuple[str, ...]] = []
    real = pipeline._intervention

    def spy(cfg, head_set):
        applied.append(tuple(f"{la}.{h}" for la, h in head_set))
        return real(cfg, head_set)

    monkeypatch.setattr(pipeline, "_intervention", spy)
    ev = tmp_path / "e"
    assert main(["eval", *base, "--limit", "4", "--no-controls", "--head-set",
                 str(out / "head_sets.json"), "--out", str(ev)]) == 0  # fmt: skip
    assert applied == [("1.0",), ("2.1", "2.3")]  # reviews first, then sst2: each its own set
    results = load_results(ev)
    assert results["reviews"].heads == 1 and results["sst2"].heads == 2


@pytest.mark.parametrize("flag", [["--per-task"], []])
def test_per_task_file_without_a_task_is_refused_before_eval(tmp_path, data_dir, flag):
    from act_lens.hooks.headset import HeadSet, save_head_sets

    path = save_head_sets(tmp_path / "hs.json", {"reviews": HeadSet({1: [0]})})
    rc = main(["eval", "--model", "tiny-random", "--task", "reviews", "--task", "sst2",
               "--data-dir", str(data_dir), "--head-set", str(path), "--limit", "2",
               "--out", str(tmp_path / "o"), *flag])  # fmt: skip
    assert rc == 2


# --- successive halving -----------------------------------------------------------------------


def _halving_prompts():
    words = [a + b for a in "bcdfghk" for b in "aeiou"][:30]
    return byte_prompts([f"{w} sat:" for w in words], labels=[i % 2 for i in range(30)])


def test_halving_spends_fewer_evaluations_and_records_its_rounds(tiny):
    from act_lens.analysis.halving import Halving

    prompts = _halving_prompts()
    sched = Halving(first=4, growth=2.0, keep=0.5, z=0.5, min_heads=3)
    config = SearchConfig(batch_size=4, progress=False, schedule="halving", halving=sched)
    hs = search_heads(tiny, prompts, layers=[0, 1, 2], settings=SETTINGS, config=config,
                      selection=Selection("threshold")).head_set  # fmt: skip
    prov = hs.provenance
    rounds = prov["rounds"]
    assert [r["new_prompts"] for r in rounds][:3] == [4, 8, 16][: len(rounds)]
    assert rounds[0]["heads_in"] == 12 and all(
        b["heads_in"] == a["heads_kept"] for a, b in zip(rounds, rounds[1:], strict=False)
    )
    assert all(r["heads_kept"] >= 3 for r in rounds)
    assert (
        prov["evaluations"]
        == sum(r["evaluations"] for r in rounds)
        < prov["exhaustive_evaluations"]
        == 12 * 30
    )
    # per_head keeps each head's last estimate, over the prompts that head saw
    seen = {r["prompts_seen"] for r in rounds}
    assert {v["n"] for v in prov["per_head"].values()} <= seen
    # kept heads are finalists (evaluated in the last round) with a gain above the margin
    last = rounds[-1]["prompts_seen"]
    assert all(prov["per_head"][f"{la}.{h}"]["n"] == last for la, h in hs)


def test_halving_resumes_to_the_identical_head_set(tiny, tmp_path, monkeypatch):
    import act_lens.analysis.halving as halving
    from act_lens.analysis.halving import Halving

    prompts = _halving_prompts()
    sched = Halving(first=4, growth=2.0, keep=0.5, z=0.5, min_heads=3)
    config = SearchConfig(batch_size=4, progress=False, schedule="halving", halving=sched)
    kw = dict(layers=[0, 1, 2], settings=SETTINGS)
    full = search_heads(tiny, prompts, config=config, **kw).head_set
    ckpt = tmp_path / "halving.ckpt"
    config = dataclasses.replace(config, checkpoint=ckpt)
    calls = []
    real = halving.head_effects

    def dying(*args, **kwargs):
        calls.append(len(args[1]))
        if len(calls) == 2:
            raise KeyboardInterrupt  # during round 2, after round 1 was checkpointed
        return real(*args, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(halving, "head_effects", dying)
        with pytest.raises(KeyboardInterrupt):
            search_heads(tiny, prompts, config=config, **kw)
    assert ckpt.exists()
    calls.clear()

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(halving, "head_effects", counting)
    resumed = search_heads(tiny, prompts, config=config, **kw).head_set
    assert calls[0] != 4  # round 1 came from the checkpoint
    assert resumed.heads == full.heads
    assert resumed.provenance["rounds"] == full.provenance["rounds"]
    assert resumed.provenance["curve"] == full.provenance["curve"]
    assert not ckpt.exists()


def test_the_auto_schedule_halves_only_with_enough_ranking_prompts(tiny):
    from act_lens.analysis.halving import Halving

    prompts = _halving_prompts()  # 30 ranking prompts
    kw = dict(layers=[0, 1, 2], settings=SETTINGS, selection=Selection("threshold"))
    auto = SearchConfig(batch_size=4, progress=False, halving=Halving(first=4, min_heads=3))
    assert auto.schedule == "auto"
    halved = search_heads(tiny, prompts, config=auto, **kw).head_set
    assert halved.provenance["search"]["schedule"] == "halving" and halved.provenance["rounds"]
    few = search_heads(tiny, prompts[:7], config=auto, **kw).head_set  # fewer than 2 x 4
    assert few.provenance["search"]["schedule"] == "exhaustive"
    assert "rounds" not in few.provenance
    assert few.provenance["evaluations"] == 12 * 7


def test_an_interrupted_validation_curve_resumes_its_finished_sizes(tiny, tmp_path, monkeypatch):
    import act_lens.analysis.selection as selection

    prompts = byte_prompts(TEXTS, labels=[i % 2 for i in range(len(TEXTS))])
    kw = dict(layers=[0, 1, 2], settings=SETTINGS)
    full = search_heads(tiny, prompts, config=CONFIG, **kw).head_set
    sizes = [r["size"] for r in full.provenance["curve"]]
    assert len(sizes) >= 3
    ckpt = tmp_path / "search.ckpt"
    config = dataclasses.replace(CONFIG, checkpoint=ckpt)
    real, seen = selection.curve_values, []

    def dying(model, *, sizes, **unit):
        if len(seen) == 2:
            raise KeyboardInterrupt  # the third size of the curve
        seen.extend(sizes)
        return real(model, sizes=sizes, **unit)

    with monkeypatch.context() as mp:
        mp.setattr(selection, "curve_values", dying)
        with pytest.raises(KeyboardInterrupt):
            search_heads(tiny, prompts, config=config, **kw)
    assert seen == sizes[:2]
    saved = torch.load(ckpt, weights_only=True)["units"]
    assert sum(u.startswith("curve:") for u in saved) == 2  # beside the effects' units

    def counting(model, *, sizes, **unit):
        seen.extend(sizes)
        return real(model, sizes=sizes, **unit)

    seen.clear()
    monkeypatch.setattr(selection, "curve_values", counting)
    resumed = search_heads(tiny, prompts, config=config, **kw).head_set
    assert seen == sizes[2:]  # the finished sizes came from the checkpoint
    assert resumed.heads == full.heads
    assert resumed.provenance["curve"] == full.provenance["curve"]
    assert not ckpt.exists()


def test_an_interrupt_inside_a_halving_round_keeps_its_finished_units(tiny, tmp_path, monkeypatch):
    import act_lens.analysis.units as units
    from act_lens.analysis.halving import Halving

    monkeypatch.setattr(units, "LAYERS_PER_UNIT", 1)  # three units per round on the tiny model
    prompts = _halving_prompts()
    sched = Halving(first=4, growth=2.0, keep=0.5, z=0.5, min_heads=3)
    config = SearchConfig(batch_size=4, progress=False, schedule="halving", halving=sched)
    kw = dict(layers=[0, 1, 2], settings=SETTINGS)
    full = search_heads(tiny, prompts, config=config, **kw).head_set
    ckpt = tmp_path / "halving.ckpt"
    config = dataclasses.replace(config, checkpoint=ckpt)
    real, started = units.map_units, []

    def dying(*args, on_result, **kwargs):
        started.append(len(args[2]))
        n_round = len(started)

        def callback(i, value):
            on_result(i, value)
            if n_round == 2 and i == 0:
                raise KeyboardInterrupt  # round 2: after its first unit was saved

        return real(*args, on_result=callback, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(units, "map_units", dying)
        with pytest.raises(KeyboardInterrupt):
            search_heads(tiny, prompts, config=config, **kw)
    saved = sorted(torch.load(ckpt, weights_only=True)["units"])
    assert "halving" in saved  # round 1's state
    in_round = [u for u in saved if u.startswith("halving2:")]
    assert len(in_round) == 1 and not any(u.startswith("halving1:") for u in saved)

    started.clear()

    def counting(*args, **kwargs):
        started.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(units, "map_units", counting)
    resumed = search_heads(tiny, prompts, config=config, **kw).head_set
    assert started[0] == 2  # round 2 ran only its two unfinished units
    assert resumed.heads == full.heads
    assert resumed.provenance["rounds"] == full.provenance["rounds"]
    assert not ckpt.exists()
