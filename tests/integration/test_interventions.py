"""One way to say what to apply: the Intervention protocol, one ``intervention=`` parameter in
evaluate, generate, calibrated, sink_census, content_free_scores and the lm-eval adapter, one
function from a saved head set to its intervention, and the old spellings (``hooks=``,
``head_set=``, loose settings) still working for one release with a DeprecationWarning."""

import pytest
import torch

import act_lens as al
from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError
from act_lens.evaluation.baselines import content_free_scores
from act_lens.hooks.act import ActConfig
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.interventions import Compose, as_intervention, calibrated, intervention_for
from act_lens.hooks.names import pattern_hook
from act_lens.hooks.recorder import SinkRecorder
from act_lens.hooks.spec import HookFactory, Hooks, Intervention
from act_lens.hooks.zerotuning import ZeroTuningConfig
from tests.helpers import n_hooks

HS = HeadSet({1: [0, 1, 2, 3], 2: [1]})
SETTINGS = SinkSettings(beta=0.0, threshold=0.05)
TEXT = "The cat sat on the mat. It was warm,\nand quiet."
EVAL = dict(limit=6, batch_size=3, progress=False)


def _keep(pattern, hook):
    return pattern


def _spy(seen):
    def fn(pattern, hook):
        seen.append(hook.name)
        return pattern

    return fn


def test_every_kind_is_an_intervention_and_as_intervention_is_the_one_conversion():
    act, zt = ActConfig(HS, SETTINGS), ZeroTuningConfig(HS, gamma=0.5)
    kinds = [act, zt, Compose(act, zt), Hooks([(pattern_hook(0), _keep)])]
    assert all(isinstance(k, Intervention) for k in kinds)
    assert all(as_intervention(k) is k for k in kinds)
    assert as_intervention(None).hooks() == []
    assert as_intervention([(pattern_hook(0), _keep)]) == Hooks([(pattern_hook(0), _keep)])
    rec = SinkRecorder([0])
    assert isinstance(as_intervention(rec), HookFactory)  # a mask -> hooks function
    assert isinstance(as_intervention(HS), ActConfig)
    assert isinstance(
        as_intervention(HeadSet({1: [0]}, method="zerotuning", params={"gamma": 2})),
        ZeroTuningConfig,
    )
    with pytest.raises(ConfigError, match="intervention must be"):
        as_intervention(0.4)
    # (under pytest the runtime type check refuses it first)
    with pytest.raises((ConfigError, TypeError), match="hook_name, fn|pairs"):
        Hooks(["blocks.0.attn.hook_pattern"])
    # Compose takes any of them and passes the decode policy to its ACT parts
    both = Compose(act, [(pattern_hook(2), _keep)])
    assert [n for n, _ in both.hooks(None, sink_queries=3)] == [
        pattern_hook(1), pattern_hook(2), pattern_hook(2)
    ]  # fmt: skip
    assert both.to_dict()["compose"][1] == {"hooks": [pattern_hook(2)]}
    for name in ("Intervention", "Hooks", "intervention_for"):
        assert name in al.__all__


def test_a_saved_head_set_becomes_its_intervention_with_its_own_settings():
    searched = HeadSet({1: [0]}, {"beta": 0.2, "threshold": 0.05, "rule": "mean"})
    assert intervention_for(searched).settings == SinkSettings(beta=0.2, threshold=0.05)
    assert intervention_for(searched, beta=0.7).settings == SinkSettings(beta=0.7, threshold=0.05)
    assert intervention_for(searched, SETTINGS).settings is SETTINGS
    assert intervention_for(HeadSet({1: [0]})).settings == SinkSettings()  # hand-made: defaults
    with pytest.raises(ConfigError, match="beta given beside settings"):
        intervention_for(searched, SETTINGS, beta=0.1)
    zt = HeadSet({1: [0]}, method="zerotuning", params={"gamma": 2.0})
    assert intervention_for(zt) == ZeroTuningConfig(zt)
    with pytest.raises(ConfigError, match="ZeroTuning head set"):
        intervention_for(zt, beta=0.1)
    with pytest.raises(al.HeadSetError, match="stored sink settings"):
        intervention_for(HeadSet({1: [0]}, {"beta": 7}))


def test_one_parameter_name_everywhere(tiny):
    act = ActConfig(HS, SETTINGS)
    plain = al.evaluate(tiny, "reviews", **EVAL)
    treated = al.evaluate(tiny, "reviews", intervention=act, **EVAL)
    assert treated.scores != plain.scores  # efficacy: the intervention ran
    searched = HeadSet(HS.heads, {"beta": 0.0, "threshold": 0.05})  # with its own settings
    assert al.evaluate(tiny, "reviews", intervention=searched, **EVAL).scores == treated.scores
    gen = al.generate(tiny, TEXT, intervention=act, max_new_tokens=4, stop_at_eos=False)
    assert gen == al.generate(tiny, TEXT, act, max_new_tokens=4, stop_at_eos=False)
    tokens = tiny.tokenizer(TEXT, return_tensors="pt").input_ids
    with torch.inference_mode(), calibrated(tiny, intervention=act):
        logits = tiny(tokens)
    assert not torch.equal(logits, tiny(tokens))
    census = al.sink_census(tiny, [TEXT, "Short."], progress=False)
    after = al.sink_census(tiny, [TEXT, "Short."], intervention=act, progress=False)
    # beta=0 removes the hidden sinks of the calibrated heads (layer 1: every head)
    assert after.hidden_mass[1].sum() < census.hidden_mass[1].sum()
    assert torch.equal(after.hidden_mass[0], census.hidden_mass[0])  # layer 0 untouched
    seen = []
    content_free_scores(tiny, "reviews", intervention=[(pattern_hook(0), _spy(seen))])
    assert seen  # the content-free prompts ran with the intervention
    from act_lens.app import views

    view = views.attention(tiny, TEXT, intervention=searched)  # a HeadSet: its heads are shown
    assert view.payload["heads"] == [list(p) for p in searched]
    assert n_hooks(tiny) == 0


def test_old_spellings_still_work_and_warn_naming_the_new_one(tiny):
    act = ActConfig(HS, SETTINGS)
    new = al.evaluate(tiny, "reviews", intervention=act, **EVAL)
    with pytest.warns(
        DeprecationWarning, match=r"evaluate\(hooks=...\).*evaluate\(intervention=...\)"
    ):
        assert al.evaluate(tiny, "reviews", hooks=act, **EVAL).scores == new.scores
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(ConfigError, match="pass intervention= only"),
    ):
        al.evaluate(tiny, "reviews", hooks=act, intervention=act, **EVAL)
    seen = []
    with pytest.warns(DeprecationWarning, match="content_free_scores\\(intervention=...\\)"):
        content_free_scores(tiny, "reviews", hooks=[(pattern_hook(0), _spy(seen))])
    assert seen

    kw = dict(max_new_tokens=4, stop_at_eos=False)
    want = al.generate(tiny, TEXT, act, **kw)
    with pytest.warns(DeprecationWarning, match=r"generate\(head_set=...\)"):
        assert al.generate(tiny, TEXT, head_set=HS, beta=0.0, threshold=0.05, **kw) == want
    with pytest.warns(DeprecationWarning, match=r"ActConfig\(head_set, settings\)"):
        assert al.generate(tiny, TEXT, HS, settings=SETTINGS, **kw) == want
    spy = []
    with pytest.warns(DeprecationWarning, match=r"Compose\(intervention, hooks\)"):
        al.generate(
            tiny, TEXT, act, hooks=[(pattern_hook(0), lambda p, hook: spy.append(1) or p)], **kw
        )
    assert len(spy) == 4  # one forward per new token
    # settings beside an intervention that carries its own were silently ignored: refused now
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="set them in it"):
        al.generate(tiny, TEXT, act, beta=0.3, **kw)

    tokens = tiny.tokenizer(TEXT, return_tensors="pt").input_ids
    with torch.inference_mode(), calibrated(tiny, act):
        want_logits = tiny(tokens)
    with pytest.warns(DeprecationWarning, match=r"calibrated\(head_set=...\)"):
        with torch.inference_mode(), calibrated(tiny, head_set=act):
            assert torch.equal(tiny(tokens), want_logits)
    with pytest.warns(DeprecationWarning, match="calibrated"):
        with torch.inference_mode(), calibrated(tiny, HS, beta=0.0, threshold=0.05):
            assert torch.equal(tiny(tokens), want_logits)
    with pytest.warns(DeprecationWarning, match="sink_census"):
        old = al.sink_census(tiny, [TEXT], threshold=0.05, progress=False)
    assert torch.equal(
        old.hidden_sink_freq,
        al.sink_census(
            tiny, [TEXT], settings=SinkSettings(threshold=0.05), progress=False
        ).hidden_sink_freq,
    )
    with pytest.raises(ConfigError, match="unexpected keyword arguments \\['hook'\\]"):
        al.evaluate(tiny, "reviews", hook=act, **EVAL)
    assert n_hooks(tiny) == 0


def test_lm_eval_adapter_takes_the_same_intervention(tiny, tmp_path):
    lm_eval = pytest.importorskip("act_lens.integrations.lm_eval")
    path = HeadSet({1: [0, 2]}, {"beta": 0.2}).save(tmp_path / "head_set.json")
    lm = lm_eval.ActLensLM(tiny, intervention=str(path))
    assert lm.intervention.settings == SinkSettings(beta=0.2, windows={})  # the set's own
    with pytest.warns(DeprecationWarning, match=r"ActLensLM\(head_set=...\)"):
        old = lm_eval.ActLensLM(tiny, head_set=str(path), beta=0.3)
    assert old.intervention.beta == 0.3
    with pytest.warns(DeprecationWarning, match="settings=SinkSettings"):
        loose = lm_eval.ActLensLM(tiny, HeadSet({1: [0]}), threshold=0.05)
    assert loose.intervention.settings == SinkSettings(threshold=0.05, windows={})


def test_recorder_without_layers_records_every_layer(tiny):
    rec = SinkRecorder()
    tokens = tiny.tokenizer(TEXT, return_tensors="pt").input_ids
    with torch.inference_mode():
        tiny.run_with_hooks(tokens, fwd_hooks=rec.hooks())
    assert sorted(rec.records) == list(range(tiny.cfg.n_layers))
