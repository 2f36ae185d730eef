"""Out-of-range layers and heads in the Python API are ActLensErrors, not raw KeyError or
index errors; plain texts are refused by the head search with a message naming the fix."""

import subprocess
import sys

import pytest

import act_lens as al
from act_lens.errors import ConfigError, HeadSetError
from tests.conftest import REPO


def _tokens(model):
    return model.tokenizer("Review: fine.\nSentiment:", return_tensors="pt").input_ids


def test_act_hooks_with_model_refuses_heads_the_model_lacks(tiny):
    for heads in ({7: [0]}, {1: [9]}):
        with pytest.raises(HeadSetError, match="out of range.*3 layers x 4 heads"):
            al.act_hooks(al.HeadSet(heads), model=tiny)
    assert al.act_hooks(al.HeadSet({1: [3]}), model=tiny)  # in range: fine


def test_act_hook_refuses_a_head_out_of_range_at_the_forward(tiny):
    with pytest.raises(HeadSetError, match="head 9 is out of range, this layer has 4 heads"):
        tiny.run_with_hooks(_tokens(tiny), fwd_hooks=al.act_hooks(al.HeadSet({1: [9]})))
    assert not any(hp.fwd_hooks for hp in tiny.hook_dict.values())  # nothing left behind


def test_sink_census_refuses_layers_the_model_lacks(tiny):
    with pytest.raises(ConfigError, match=r"layers \[7\] are not layers.*0\.\.2"):
        al.sink_census(tiny, ["Review: fine."], layers=[7], progress=False)


def test_search_heads_refuses_plain_texts():
    # In a plain interpreter: under pytest's runtime type checks the call would be refused by
    # beartype before search_heads could say what to do instead.
    code = (
        "import act_lens as al\n"
        "from act_lens.models.tiny import tiny_model\n"
        "try:\n"
        "    al.search_heads(tiny_model(), ['a plain text', 'another one'], layers=[1])\n"
        "except al.ConfigError as err:\n"
        "    print('refused:', err)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "calibration_mix" in proc.stdout


def test_validate_names_the_fix_it_is_given(tiny):
    hs = al.HeadSet({5: [0]})
    with pytest.raises(HeadSetError, match="act-lens search --model tiny-random"):
        hs.validate(tiny, fix="search heads with act-lens search --model tiny-random")
