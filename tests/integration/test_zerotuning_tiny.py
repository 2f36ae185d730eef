"""ZeroTuning hooks, composition and search on a tiny random Llama."""

import dataclasses
import json

import pytest
import torch

import act_lens.analysis.zerotuning_search as zs
from act_lens.analysis.search_config import SearchConfig
from act_lens.analysis.selection import Selection
from act_lens.analysis.zerotuning_search import Gammas, zerotuning_search
from act_lens.app.cli import main
from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError
from act_lens.evaluation.evaluate import evaluate
from act_lens.evaluation.scoring import last_token_logprobs
from act_lens.evaluation.task_result import load_results
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.act import ActConfig
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.interventions import Compose
from act_lens.hooks.zerotuning import ZeroTuningConfig
from tests.helpers import byte_prompts, n_hooks

TEXTS = [
    f"{w} is here:"
    for w in ("cat", "dog", "owl", "ant", "bee", "elk", "fox", "gnu", "hen", "jay", "koi", "yak")
]
HS = HeadSet({1: [0, 2], 2: [1]})
# as the defaults without config= (every head, in-process, fp32), in batches of 4, quiet
CONFIG = SearchConfig(screen=None, workers=1, precision="fp32", batch_size=4, progress=False)


def _lp(model, tokens, hooks):
    return last_token_logprobs(model, tokens, hooks=hooks, batch_size=4)


def test_zerotuning_changes_logits_gamma_one_does_not_and_padding_is_handled(tiny):
    tokens = [tiny.tokenizer(t).input_ids for t in TEXTS[:5]]
    plain = _lp(tiny, tokens, None)
    for gamma in (0.3, 3.0):
        edited = _lp(tiny, tokens, ZeroTuningConfig(HS, gamma=gamma).for_model(tiny))
        assert (edited - plain).abs().max() > 1e-3  # efficacy: the edit reaches the logits
    same = _lp(tiny, tokens, ZeroTuningConfig(HS, gamma=1.0).for_model(tiny))
    assert torch.equal(same, plain)
    # left-padded batches (factory gets each batch's mask) equal one prompt at a time
    cfg = ZeroTuningConfig(HS, gamma=0.3).for_model(tiny)
    batched = last_token_logprobs(tiny, tokens, hooks=cfg, batch_size=5)
    single = torch.cat([last_token_logprobs(tiny, [t], hooks=cfg, batch_size=1) for t in tokens])
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=1e-4)
    assert n_hooks(tiny) == 0


def test_compose_applies_in_order_and_the_order_matters(tiny):
    tokens = [tiny.tokenizer(t).input_ids for t in TEXTS[:3]]
    act, zt = ActConfig(HS, SinkSettings(threshold=0.05)), ZeroTuningConfig(HS, gamma=0.2)
    a_then_z = _lp(tiny, tokens, Compose(act, zt).for_model(tiny))
    z_then_a = _lp(tiny, tokens, Compose(zt, act).for_model(tiny))
    manual = _lp(tiny, tokens, lambda mask: [*act(mask), *zt(mask)])
    torch.testing.assert_close(a_then_z, manual)
    assert (a_then_z - z_then_a).abs().max() > 1e-5
    assert (a_then_z - _lp(tiny, tokens, act)).abs().max() > 1e-4


def test_evaluate_takes_a_zerotuning_config(tiny):
    base = evaluate(tiny, "reviews", limit=6, batch_size=3, progress=False)
    zt = evaluate(tiny, "reviews", limit=6, batch_size=3, progress=False,
                  intervention=ZeroTuningConfig(HS, gamma=0.1))  # fmt: skip
    assert base.uids == zt.uids and base.scores != zt.scores


def _prompts(labels=None):
    return byte_prompts(TEXTS, labels=labels or [i % 2 for i in range(len(TEXTS))])


def test_search_profiles_both_directions_and_picks_gamma_on_validation(tiny):
    hs = zerotuning_search(tiny, _prompts(), layers=[0, 1, 2], config=CONFIG)
    prov = hs.provenance
    assert hs.method == "zerotuning" and set(prov["profile"]) == {"up", "down"}
    assert len(prov["profile"]["up"]) == 12 and prov["dominant"] in ("up", "down")
    gains = prov["profile"][prov["dominant"]]
    assert all(gains[f"{la}.{h}"]["effect"] > 0 for la, h in hs)
    curve = prov["gamma_curve"]
    best = max(r["choice_logprob"] for r in curve)
    assert next(r for r in curve if r["gamma"] == hs.params["gamma"])["choice_logprob"] == best
    assert prov["calibration"]["n"] == 6 and prov["validation_set"]["n"] == 6


def test_an_interrupted_search_resumes_from_its_checkpoint(tiny, tmp_path, monkeypatch):
    import act_lens.analysis.units as units

    monkeypatch.setattr(units, "LAYERS_PER_UNIT", 1)  # three units per profile
    kw = dict(layers=[0, 1, 2], config=dataclasses.replace(CONFIG, screen=6))
    plain = zerotuning_search(tiny, _prompts(), **kw)
    ckpt = tmp_path / "zt.ckpt"
    kw["config"] = dataclasses.replace(kw["config"], checkpoint=ckpt)
    real, started = units.map_units, []

    def dying(*args, on_result, **kwargs):
        started.append(len(args[2]))

        def callback(i, value):
            on_result(i, value)
            if len(started) == 2 and i == 0:
                raise KeyboardInterrupt  # the second profile, after its first unit was saved

        return real(*args, on_result=callback, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(units, "map_units", dying)
        with pytest.raises(KeyboardInterrupt):
            zerotuning_search(tiny, _prompts(), **kw)
    saved = sorted(torch.load(ckpt, weights_only=True)["units"])
    assert saved == ["down:L0:P0-6", "up:L0:P0-6", "up:L1:P0-6", "up:L2:P0-6", "zt_screen"]

    ran = []

    def counting(*args, **kwargs):
        ran.append(len(args[2]))
        return real(*args, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(units, "map_units", counting)
        mp.setattr(zs, "screen_zerotuning", lambda *a, **k: pytest.fail("screened again"))
        resumed = zerotuning_search(tiny, _prompts(), **kw)
    assert sum(ran) == 2  # the down profile's two remaining units, nothing else
    assert not ckpt.exists()  # finished: the file is removed
    assert resumed.heads == plain.heads and resumed.params == plain.params
    for direction, heads in plain.provenance["profile"].items():
        for head, row in heads.items():
            assert resumed.provenance["profile"][direction][head] == pytest.approx(row)
    # a checkpoint of another search is refused, not mixed in
    ckpt.write_bytes(b"")
    torch.save({"key": "another search", "units": {}}, ckpt)
    with pytest.raises(ConfigError, match="other settings"):
        zerotuning_search(tiny, _prompts(), **kw)


def test_unsupervised_search_never_reads_a_label(tiny):
    a = zerotuning_search(tiny, _prompts(), supervised=False, layers=[1, 2], config=CONFIG)
    flipped = [Prompt(p.uid, p.text, p.choices, 1 - p.label if p.label < 2 else 0, p.context, p.continuations, p.meta)
               for p in _prompts()]  # fmt: skip
    b = zerotuning_search(tiny, flipped, supervised=False, layers=[1, 2], config=CONFIG)
    assert a.heads == b.heads and a.params == b.params and a.provenance["metric"] == "neg_entropy"


def test_earlier_keywords_warn_and_agree_and_objects_are_never_overridden(tiny):
    new = zerotuning_search(tiny, _prompts(), layers=[1, 2], config=CONFIG,
                            gammas=Gammas(up=3.0), selection=Selection(max_heads=2))  # fmt: skip
    with pytest.warns(DeprecationWarning, match=r"config=SearchConfig\(batch_size=4"):
        old = zerotuning_search(tiny, _prompts(), layers=[1, 2], batch_size=4, progress=False,
                                gamma_up=3.0, max_heads=2)  # fmt: skip
    assert old.heads == new.heads and old.params == new.params and len(new) <= 2
    assert new.provenance["probes"] == {"up": 3.0, "down": 0.5}
    with pytest.raises(ConfigError, match="beside config="):
        zerotuning_search(tiny, _prompts(), config=CONFIG, screen=3)
    with pytest.raises(ConfigError, match="beside selection="):
        zerotuning_search(tiny, _prompts(), selection=Selection(), margin=0.1)
    with pytest.raises(ConfigError, match="gamma_down < 1 < gamma_up"):
        Gammas(up=0.9)
    with pytest.raises(ConfigError, match="exhaustive"):
        zerotuning_search(tiny, _prompts(), config=SearchConfig(schedule="halving"))


def test_cli_search_method_zerotuning_then_eval(tmp_path, monkeypatch):
    from act_lens.runtime.checkpoint import Checkpoint

    finished, real_finish = [], Checkpoint.finish
    monkeypatch.setattr(Checkpoint, "finish", lambda c: finished.append(c.path) or real_finish(c))
    tiny = ["--model", "tiny-random", "--task", "reviews", "--batch-size", "4", "--layers", "1,2"]
    out = tmp_path / "s"
    assert (
        main(["search", *tiny, "--method", "zerotuning", "--calib-size", "8", "--out", str(out)])
        == 0
    )
    saved = json.loads((out / "head_set.json").read_text())
    assert saved["method"] == "zerotuning" and "gamma" in saved["params"]
    # an interrupted search resumes from the folder's checkpoint, removed once it finished
    assert finished == [out / "search.ckpt"] and not (out / "search.ckpt").exists()
    ev = tmp_path / "e"
    assert (
        main(
            [
                "eval",
                *tiny,
                "--limit",
                "4",
                "--head-set",
                str(out / "head_set.json"),
                "--out",
                str(ev),
            ]
        )
        == 0
    )
    assert load_results(ev)["reviews"].treated is not None
    assert (
        main(["search", *tiny, "--unsupervised", "--out", str(tmp_path / "x")]) == 2
    )  # needs zerotuning


def test_generate_takes_zerotuning_and_composed_configs(tiny):
    from act_lens.evaluation.generate import generate

    plain = generate(tiny, "The cat", max_new_tokens=6, stop_at_eos=False)
    assert (
        generate(
            tiny, "The cat", ZeroTuningConfig(HS, gamma=1.0), max_new_tokens=6, stop_at_eos=False
        ).new_tokens
        == plain.new_tokens
    )
    zt = generate(
        tiny, "The cat", ZeroTuningConfig(HS, gamma=0.0), max_new_tokens=6, stop_at_eos=False
    )
    as_set = HeadSet(HS.heads, method="zerotuning", params={"gamma": 0.0})
    assert (
        generate(tiny, "The cat", as_set, max_new_tokens=6, stop_at_eos=False).new_tokens
        == zt.new_tokens
    )
    both = generate(tiny, "The cat", Compose(ActConfig(HS, SinkSettings(threshold=0.05)), ZeroTuningConfig(HS, gamma=0.0)),
                    max_new_tokens=6, stop_at_eos=False)  # fmt: skip
    assert len(both.new_tokens) == 6 and n_hooks(tiny) == 0
