"""Attention views on the tiny random model: what is recorded before and after an
intervention, sink marks, errors, and that no hook is left behind."""

import pytest
import torch

from act_lens.analysis.patterns import AttentionPatterns, record_attention
from act_lens.app import views
from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError, HeadSetError
from act_lens.hooks.act import ActConfig
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.names import pattern_hook
from tests.helpers import n_hooks

PROMPT = "Review: a fine, sturdy case.\nSentiment:"


def test_act_changes_only_what_it_calibrates_and_the_layers_after(tiny):
    act = ActConfig(HeadSet({1: [0]}), SinkSettings(threshold=0.05))
    heads = [(1, 0), (1, 1), (2, 0)]
    p = record_attention(tiny, PROMPT, heads, intervention=act, settings=act.settings)
    assert p.before.shape == p.after.shape == (3, len(p.tokens), len(p.tokens))
    assert torch.allclose(p.before.sum(-1), torch.ones(3, len(p.tokens)), atol=1e-4)
    assert not torch.allclose(p.after[0], p.before[0], atol=1e-4)  # the calibrated head
    assert torch.equal(p.after[1], p.before[1])  # same layer, not calibrated
    assert not torch.allclose(p.after[2], p.before[2], atol=1e-4)  # a later layer sees the change
    hidden = p.sinks[0].clone()
    hidden[0] = False
    assert hidden.any(), "the tiny model should have a hidden sink at threshold 0.05"
    # ACT scales every hidden sink column of the calibrated head by beta = 0.4
    ratio = p.scores_after[0][hidden] / p.scores_before[0][hidden]
    assert torch.allclose(ratio, torch.full_like(ratio, 0.4), atol=1e-3)
    assert torch.equal(p.sinks, p.scores_before > 0.05)  # marks follow the sink rule
    assert p.tokens == tuple(tiny.tokenizer.decode([t]) for t in tiny.tokenizer(PROMPT).input_ids)
    assert "ACT beta=0.4" in p.intervention
    assert n_hooks(tiny) == 0


def test_a_plain_hook_list_is_an_intervention_too(tiny):
    def zero(pattern, hook):
        return torch.zeros_like(pattern)

    p = record_attention(tiny, PROMPT, [(0, 1)], intervention=[(pattern_hook(0), zero)])
    assert float(p.after.abs().max()) == 0.0 and float(p.before.abs().max()) > 0
    plain = record_attention(tiny, PROMPT, [(0, 1)])
    assert plain.after is None and plain.intervention is None
    assert torch.equal(plain.before, p.before)


def test_bad_heads_and_prompts_are_refused_and_leave_no_hook(tiny):
    with pytest.raises(HeadSetError, match="not in this model"):
        views.attention(tiny, PROMPT, layers=[1], heads=[7])
    with pytest.raises(ConfigError, match="non-empty prompt"):
        views.attention(tiny, "", layers=[1])
    assert n_hooks(tiny) == 0


def test_attention_view_defaults_to_the_interventions_heads_and_saves(tiny, tmp_path):
    act = ActConfig(HeadSet({2: [3], 1: [1]}))
    view = views.attention(tiny, PROMPT, intervention=act)
    assert view.payload["heads"] == [[1, 1], [2, 3]]
    assert view.payload["after"] is not None
    path = view.save(tmp_path / "attention.html")
    assert 'data-act-lens="attention"' in path.read_text()
    p = record_attention(tiny, PROMPT, [(1, 1)], intervention=act)
    p.save(tmp_path / "p.json")
    q = AttentionPatterns.load(tmp_path / "p.json")
    assert q.heads == p.heads and q.tokens == p.tokens
    assert torch.allclose(q.after, p.after, atol=1e-5)
