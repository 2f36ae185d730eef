"""The per-head ablation engine on a tiny random Llama: equal to the naive loop, efficacious.

The engine restarts each candidate layer from the clean residual and ablates every head of the
layer in one batched pass; ``head_effects_naive`` runs one full forward per head per prompt
(batch 1, no padding). They must agree for every strategy, with padding (prompts of different
lengths, more prompts than ``batch_size``), for ``heads_by_layer`` and for all three metrics.
"""

import pytest
import torch

from act_lens.analysis.ablation import head_effects, head_effects_naive
from act_lens.analysis.effects import METRICS
from act_lens.errors import ConfigError
from act_lens.hooks.strategies import AblationContext, Strategy
from tests.helpers import byte_prompts, n_hooks

# Different lengths, so that batches of 3 are left-padded; 4 prompts make a last batch of 1.
TEXTS = [
    "The cat sat on the mat. It was:",
    "Dogs bark:",
    "A quick brown fox jumps over:",
    "Hi, friend:",
]
BATCH = 3
SETTINGS = {"beta": 0.4, "threshold": 0.05}
ATOL = 1e-4


def halve_self_attention(
    x: torch.Tensor, heads: torch.Tensor, ctx: AblationContext
) -> torch.Tensor:
    """A user strategy: halve each query's attention to itself and renormalise the row."""
    rows = torch.arange(x.shape[0], device=x.device)
    one = x[rows, heads]  # [rows, query_pos, key_pos]
    diag = torch.eye(one.shape[-2], one.shape[-1], dtype=torch.bool, device=x.device)
    edited = torch.where(diag, 0.5 * one, one)
    out = x.clone()
    out[rows, heads] = edited / edited.sum(-1, keepdim=True)
    return out


HALVE_SELF = Strategy("halve_self", "pattern", halve_self_attention)
IDENTITY = Strategy("identity", "pattern", lambda x, heads, ctx: x.clone())
STRATEGIES = ["act", "zero_sinks", "head_off", "mean_head", HALVE_SELF]


@pytest.fixture(scope="module")
def prompts():
    return byte_prompts(TEXTS)


@pytest.fixture(scope="module")
def naive_act(tiny, prompts):
    return head_effects_naive(tiny, prompts, strategy="act", progress=False, **SETTINGS)


def _assert_same(engine, naive):
    """The engine's entries for the naive run's layers and heads equal the naive values."""
    rows = torch.tensor([engine.layers.index(layer) for layer in naive.layers])[:, None]
    cols = torch.tensor([engine.heads.index(head) for head in naive.heads])[None, :]
    assert engine.uids == naive.uids
    for m in METRICS:
        torch.testing.assert_close(engine.baseline[m], naive.baseline[m], atol=ATOL, rtol=0)
        torch.testing.assert_close(
            engine.per_example[m][rows, cols], naive.per_example[m], atol=ATOL, rtol=0
        )
        torch.testing.assert_close(
            engine.effects[m][rows, cols], naive.effects[m], atol=ATOL, rtol=0
        )
        torch.testing.assert_close(engine.stderr[m][rows, cols], naive.stderr[m], atol=ATOL, rtol=0)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s if isinstance(s, str) else s.name)
def test_engine_equals_naive_loop_and_ablation_has_an_effect(tiny, prompts, naive_act, strategy):
    engine = head_effects(
        tiny, prompts, strategy=strategy, batch_size=BATCH, progress=False, **SETTINGS
    )
    if strategy == "act":
        naive = naive_act
    else:  # two layers and two heads (one per KV group) keep the naive loop cheap
        naive = head_effects_naive(
            tiny,
            prompts,
            strategy=strategy,
            layers=[0, 2],
            heads=[1, 2],
            progress=False,
            **SETTINGS,
        )
    assert engine.layers == (0, 1, 2) and engine.heads == (0, 1, 2, 3)
    assert engine.per_example["choice_logprob"].shape == (3, 4, len(prompts))
    _assert_same(engine, naive)
    # Efficacy: an ablation that changes nothing would also "agree" with the naive loop.
    assert engine.effects["choice_logprob"].abs().max() > 1e-3
    assert engine.effects["margin"].abs().max() > 1e-3
    assert n_hooks(tiny) == 0


def test_identity_strategy_has_zero_effect(tiny, prompts):
    """Re-running the blocks from the captured clean residual reproduces the clean run."""
    eff = head_effects(tiny, prompts, strategy=IDENTITY, batch_size=BATCH, progress=False)
    for m in METRICS:
        assert eff.effects[m].abs().max() < 1e-5


def test_heads_by_layer_equals_naive_on_chosen_heads_and_nan_elsewhere(tiny, prompts, naive_act):
    chosen = {0: [1, 3], 2: [2]}
    eff = head_effects(
        tiny,
        prompts,
        strategy="act",
        batch_size=BATCH,
        progress=False,
        heads_by_layer=chosen,
        **SETTINGS,
    )
    assert eff.layers == (0, 2)
    for m in METRICS:
        for li, layer in enumerate(eff.layers):
            for head in range(4):
                got = eff.per_example[m][li, head]
                if head in chosen[layer]:
                    want = naive_act.per_example[m][naive_act.layers.index(layer), head]
                    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
                else:
                    assert torch.isnan(got).all() and torch.isnan(eff.effects[m][li, head])


def test_layer_and_head_subsets_and_layer_callbacks(tiny, prompts, naive_act):
    calls = []
    eff = head_effects(
        tiny,
        prompts,
        strategy="act",
        layers=[2, 1],
        heads=[3, 0],
        batch_size=BATCH,
        progress=False,
        on_layer_done=lambda layer, values: calls.append((layer, values)),
        **SETTINGS,
    )
    assert eff.layers == (1, 2) and eff.heads == (0, 3)
    assert [layer for layer, _ in calls] == [1, 2]
    for li, (layer, values) in enumerate(calls):
        assert set(values) == set(METRICS)
        for m in METRICS:
            assert values[m].shape == (2, len(prompts))
            torch.testing.assert_close(values[m], eff.per_example[m][li])
            want = naive_act.per_example[m][naive_act.layers.index(layer)][[0, 3]]
            torch.testing.assert_close(values[m], want, atol=ATOL, rtol=0)


def test_skip_layers_are_reused_not_recomputed(tiny, prompts):
    seen_layers = []

    def spy(x, heads, ctx):
        seen_layers.append(ctx.layer)
        return x.clone()

    fake = {m: torch.full((4, len(prompts)), 7.0) for m in METRICS}
    eff = head_effects(
        tiny,
        prompts,
        strategy=Strategy("spy", "pattern", spy),
        batch_size=8,
        progress=False,
        skip_layers={0: fake, 1: fake},
    )
    assert set(seen_layers) == {2}
    assert torch.equal(eff.per_example["margin"][0], fake["margin"])


def test_no_hook_left_after_a_strategy_error(tiny, prompts):
    def broken(x, heads, ctx):
        if ctx.layer == 1:
            raise RuntimeError("boom")
        return x.clone()

    with pytest.raises(RuntimeError, match="boom"):
        head_effects(tiny, prompts, strategy=Strategy("broken", "pattern", broken), progress=False)
    assert n_hooks(tiny) == 0


def test_bad_layers_and_heads_raise_config_error(tiny, prompts):
    with pytest.raises(ConfigError, match="layers must be in"):
        head_effects(tiny, prompts, layers=[3], progress=False)
    with pytest.raises(ConfigError, match="heads in"):
        head_effects(tiny, prompts, heads=[4], progress=False)
    with pytest.raises(ConfigError, match="unknown strategy"):
        head_effects(tiny, prompts, strategy="nope", progress=False)
    with pytest.raises(ConfigError, match="at least one prompt"):
        head_effects(tiny, [], progress=False)
