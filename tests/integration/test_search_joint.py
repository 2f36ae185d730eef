"""The joint selection and per-task head sets on a tiny random Llama."""

import json

import pytest

from act_lens.cli import main
from act_lens.search import search_heads
from tests.helpers import byte_prompts, n_hooks

TEXTS = [
    f"{w} is here:"
    for w in ("cat", "dog", "owl", "ant", "bee", "elk", "fox", "gnu", "hen", "jay", "koi", "yak")
]


def test_joint_selection_picks_the_best_prefix_on_the_validation_part(tiny):
    prompts = byte_prompts(TEXTS, labels=[i % 2 for i in range(len(TEXTS))])
    hs = search_heads(tiny, prompts, layers=[0, 1, 2], threshold=0.05, batch_size=4, progress=False)
    prov = hs.provenance
    assert n_hooks(tiny) == 0
    assert prov["calibration"]["n"] == 6 and prov["validation_set"]["n"] == 6  # half validates
    order = prov["candidate_order"]
    effects = [prov["per_head"][k]["effect"] for k in order]
    assert effects == sorted(effects, reverse=True) and all(e > 0 for e in effects)
    curve = prov["curve"]
    assert curve[0]["size"] == 0 and [r["size"] for r in curve][-1] == len(order)
    chosen = prov["selected_size"]
    best = max(r["choice_logprob"] for r in curve)
    row = next(r for r in curve if r["size"] == chosen)
    assert row["choice_logprob"] == best  # never a size the curve says is worse
    assert all(r["choice_logprob"] < best for r in curve if r["size"] < chosen)
    assert sorted(f"{la}.{h}" for la, h in hs) == sorted(order[:chosen])
    top = search_heads(tiny, prompts, layers=[0, 1, 2], threshold=0.05, select="top_k", top_k=2,
                       batch_size=4, progress=False)  # fmt: skip
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
    import act_lens.pipeline as pipeline

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
    results = json.loads((ev / "results.json").read_text())
    assert results["reviews"]["heads"] == 1 and results["sst2"]["heads"] == 2


@pytest.mark.parametrize("flag", [["--per-task"], []])
def test_per_task_file_without_a_task_is_refused_before_eval(tmp_path, data_dir, flag):
    from act_lens.headset import HeadSet, save_head_sets

    path = save_head_sets(tmp_path / "hs.json", {"reviews": HeadSet({1: [0]})})
    rc = main(["eval", "--model", "tiny-random", "--task", "reviews", "--task", "sst2",
               "--data-dir", str(data_dir), "--head-set", str(path), "--limit", "2",
               "--out", str(tmp_path / "o"), *flag])  # fmt: skip
    assert rc == 2
