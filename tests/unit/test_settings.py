"""SinkSettings: one frozen object for how sinks are found and calibrated; public functions
take it as ``settings=`` with at most a ``beta=`` convenience, never both, and the loose
keywords of earlier releases still work with a DeprecationWarning."""

from dataclasses import FrozenInstanceError
from types import SimpleNamespace

import pytest
import torch

from act_lens.core.settings import SinkSettings, resolve_settings, settings_from
from act_lens.errors import ConfigError
from act_lens.hooks.act import ActConfig, act_hooks
from act_lens.hooks.arch import fill_windows, model_settings
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.recorder import SinkRecorder
from act_lens.hooks.strategies import AblationContext, zero_sinks_strategy

HS = HeadSet({1: [0, 2]})


class _Config(SimpleNamespace):
    def to_dict(self):
        return dict(vars(self))


def _model(**config):
    return SimpleNamespace(
        cfg=SimpleNamespace(n_layers=4), original_model=SimpleNamespace(config=_Config(**config))
    )


def test_settings_are_frozen_and_validated():
    s = SinkSettings()
    with pytest.raises(FrozenInstanceError):
        s.beta = 0.1  # type: ignore[misc]
    with pytest.raises(ConfigError, match="beta must be in"):
        SinkSettings(beta=1.5)
    with pytest.raises(ConfigError, match="windows must map"):
        SinkSettings(windows={0: 0})


def test_resolve_settings_applies_only_the_conveniences_given():
    base = SinkSettings(beta=0.2, rule="alpha", threshold=5.0)
    assert resolve_settings(base) is base
    assert resolve_settings(base, threshold=4.0) == SinkSettings(0.2, 4.0, "alpha")
    assert resolve_settings(windows={3: 8}).window(3) == 8
    assert resolve_settings() == SinkSettings()


def test_fill_windows_reads_the_model_only_when_windows_are_unset():
    model = _model(sliding_window=16, layer_types=["sliding_attention", "full_attention"] * 2)
    filled = fill_windows(SinkSettings(beta=0.3), model)
    assert filled.windows == {0: 16, 2: 16} and filled.beta == 0.3
    given = SinkSettings(windows={})
    assert fill_windows(given, model) is given


def test_act_config_holds_one_settings_object():
    settings = SinkSettings(beta=0.2, threshold=0.05, redistribute="non_initial")
    cfg = ActConfig(HS, settings)
    assert cfg.settings is settings
    assert (cfg.beta, cfg.threshold, cfg.rule, cfg.redistribute) == (
        0.2,
        0.05,
        "mean",
        "non_initial",
    )
    assert ActConfig(HS, beta=0.5).settings == SinkSettings(beta=0.5)  # the one convenience
    with pytest.raises(ConfigError, match="beta given beside settings"):
        ActConfig(HS, settings, beta=0.5)  # one of them would be ignored
    with pytest.raises((ConfigError, TypeError), match="SinkSettings|settings"):
        ActConfig(HS, 0.4)  # type: ignore[arg-type]  # the old positional beta


def test_the_loose_keywords_of_earlier_releases_still_work_with_a_warning():
    settings = SinkSettings(beta=0.2, threshold=0.05, redistribute="non_initial")
    with pytest.warns(DeprecationWarning, match=r"settings=SinkSettings\(threshold=0.05"):
        old = ActConfig(HS, beta=0.2, threshold=0.05, redistribute="non_initial")
    assert old == ActConfig(HS, settings)
    with pytest.warns(DeprecationWarning, match=r"use ActConfig\(head_set, settings\)"):
        assert ActConfig.from_settings(HS, settings) == old
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="threshold"):
        ActConfig(HS, settings, threshold=0.2)
    with pytest.raises(ConfigError, match="unexpected keyword arguments \\['gamma'\\]"):
        ActConfig(HS, gamma=0.2)
    with pytest.warns(DeprecationWarning, match="SinkRecorder"):
        rec = SinkRecorder([0], threshold=0.3, rule="alpha")
    assert rec.settings == SinkSettings(threshold=0.3, rule="alpha")


def test_settings_from_is_the_one_rule():
    s = SinkSettings(beta=0.3)
    assert settings_from(s, where="f") is s
    assert settings_from(None, where="f") == SinkSettings()
    assert settings_from(None, beta=0.1, where="f") == SinkSettings(beta=0.1)
    with pytest.raises(ConfigError, match="f: beta given beside settings"):
        settings_from(s, beta=0.1, where="f")
    model = _model(sliding_window=8, layer_types=["sliding_attention"] * 4)
    assert model_settings(model, s).windows == dict.fromkeys(range(4), 8)
    assert model_settings(model, s, threshold=0.2).threshold == 0.2


def test_act_hooks_from_settings_equal_the_keyword_form():
    pattern = torch.softmax(torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0)), -1)
    pattern = pattern * torch.tril(torch.ones(6, 6))
    pattern = pattern / pattern.sum(-1, keepdim=True)
    settings = SinkSettings(beta=0.1, threshold=0.15)
    ((name, by_settings),) = act_hooks(HS, settings)
    with pytest.warns(DeprecationWarning, match="act_hooks"):
        ((_, by_keywords),) = act_hooks(HS, beta=0.1, threshold=0.15)
    assert name == "blocks.1.attn.hook_pattern"
    assert torch.equal(by_settings(pattern), by_keywords(pattern))
    with pytest.raises(ConfigError, match="beta given beside settings"):
        act_hooks(HS, settings, beta=0.2)


def test_recorder_and_strategies_read_the_settings():
    rec = SinkRecorder([0, 2], SinkSettings(threshold=0.2, windows={2: 4}))
    assert rec.settings.threshold == 0.2 and rec.settings.window(2) == 4
    ctx = AblationContext(2, None, SinkSettings(beta=0.3, windows={2: 4}))
    assert (ctx.beta, ctx.threshold, ctx.rule, ctx.redistribute, ctx.window) == (
        0.3, 0.1, "mean", "all", 4,
    )  # fmt: skip
    assert AblationContext(1, None, SinkSettings(windows={2: 4})).window is None
    x = torch.softmax(torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(1)), -1)
    before = x.clone()
    zero_sinks_strategy(x, torch.tensor([0, 1]), ctx)
    assert torch.equal(x, before)  # the strategy leaves its input and its context alone
    assert ctx.beta == 0.3
