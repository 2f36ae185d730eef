"""Qwen2.5-Coder 1.5B Instruct: loads from its 22 PyPI parts and is editable (slow: ~9 GB RAM)."""

import pytest

from act_lens import load_model
from act_lens.hooks.arch import layer_windows
from tests.real import arch_checks

NAME = "qwen2.5-coder-1.5b"
pytestmark = [pytest.mark.slow, arch_checks.skip_unless_installed(NAME)]


@pytest.fixture(scope="module")
def qwen():
    return load_model(NAME)


def test_loads_with_the_expected_shape(qwen):
    assert (qwen.cfg.n_layers, qwen.cfg.n_heads) == (28, 12)
    assert layer_windows(qwen) == {}  # sliding window disabled in this config


def test_self_check_passes_on_every_layer(qwen):
    arch_checks.check_self_check(qwen)


def test_census_on_two_prompts(qwen):
    arch_checks.check_census(qwen)


def test_act_hook_changes_logits_and_is_scoped(qwen):
    arch_checks.check_act_changes_logits(qwen)


def test_evaluate_on_four_builtin_examples(qwen):
    arch_checks.check_evaluate(qwen)


def test_cold_load_equals_cached_load(tmp_path):
    arch_checks.check_cold_load_equals_cached(NAME, tmp_path / "cache")
