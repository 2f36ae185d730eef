"""Gemma 3 270M (base): loads from its PyPI parts, is editable, has sliding-window layers."""

import pytest
import torch

from act_lens import load_model
from act_lens.hooks.arch import layer_windows
from tests.real import arch_checks

NAME = "gemma3-270m"
pytestmark = [pytest.mark.gemma, arch_checks.skip_unless_installed(NAME)]


@pytest.fixture(scope="module")
def gemma():
    return load_model(NAME)


def test_loads_with_the_expected_shape(gemma):
    assert (gemma.cfg.n_layers, gemma.cfg.n_heads, gemma.cfg.d_head) == (18, 4, 256)
    windows = layer_windows(gemma)
    assert windows == {la: 512 for la in range(18) if la % 6 != 5}  # 5 local : 1 global


def test_self_check_passes_on_every_layer(gemma):
    arch_checks.check_self_check(gemma)


def test_sliding_layers_do_not_see_past_the_window(gemma):
    # Why this matters: sink scores in local layers must count only the queries in the window.
    tokens = torch.randint(1000, 20000, (1, 520))
    tokens[0, 0] = gemma.tokenizer.bos_token_id
    pats = arch_checks.attention_patterns(gemma, tokens, [0, 5])
    local, full = pats[0][0], pats[5][0]  # [head_index, query_pos, key_pos]
    assert local[:, 519, :8].abs().max() == 0  # keys 0..7 are more than 511 back
    assert local[:, 511, 0].min() > 0  # the last query that still sees the first token
    assert full[:, 519, 0].min() > 0  # the global layer sees everything
    assert torch.allclose(local.sum(-1), torch.ones(()), atol=1e-4)


def test_census_on_two_prompts(gemma):
    arch_checks.check_census(gemma)


def test_act_hook_changes_logits_and_is_scoped(gemma):
    arch_checks.check_act_changes_logits(gemma)


def test_evaluate_on_four_builtin_examples(gemma):
    arch_checks.check_evaluate(gemma)


def test_cold_load_equals_cached_load(tmp_path):
    arch_checks.check_cold_load_equals_cached(NAME, tmp_path / "cache")
