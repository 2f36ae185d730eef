"""The per-head ablation engine on a tiny random Llama: equal to the naive loop, efficacious.

The engine restarts each candidate layer from the clean residual and ablates every head of the
layer in one batched pass; ``head_effects_naive`` runs one full forward per head per prompt
(batch 1, no padding). They must agree for every strategy, with padding (prompts of different
lengths, more prompts than ``batch_size``), for ``heads={layer: heads}`` and for all metrics.
"""

import pytest
import torch

import act_lens.analysis.units
from act_lens.analysis.ablation import head_effects, head_effects_naive
from act_lens.analysis.effects import METRICS
from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError
from act_lens.hooks.check import require_pattern_editable
from act_lens.hooks.strategies import AblationContext, Strategy
from act_lens.runtime.checkpoint import Checkpoint
from act_lens.runtime.options import RunOptions
from tests.helpers import byte_prompts, n_hooks

# Different lengths, so that batches of 3 are left-padded; 4 prompts make a last batch of 1.
TEXTS = [
    "The cat sat on the mat. It was:",
    "Dogs bark:",
    "A quick brown fox jumps over:",
    "Hi, friend:",
]
BATCH = 3
SETTINGS = SinkSettings(beta=0.4, threshold=0.05)
RUN = RunOptions(batch_size=BATCH, progress=False)
QUIET = RunOptions(progress=False)
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
    return head_effects_naive(tiny, prompts, strategy="act", progress=False, settings=SETTINGS)


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
    engine = head_effects(tiny, prompts, strategy=strategy, run=RUN, settings=SETTINGS)
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
            settings=SETTINGS,
        )
    assert engine.layers == (0, 1, 2) and engine.heads == (0, 1, 2, 3)
    assert engine.per_example["choice_logprob"].shape == (3, 4, len(prompts))
    _assert_same(engine, naive)
    # Efficacy: an ablation that changes nothing would also "agree" with the naive loop.
    assert engine.effects["choice_logprob"].abs().max() > 1e-3
    assert engine.effects["margin"].abs().max() > 1e-3
    assert n_hooks(tiny) == 0


def _rows_entering(model, layer):
    """A list that grows by the batch rows of every call of ``blocks[layer]``, and its handle
    (after the model's one-time pattern self-check, which runs blocks of its own)."""
    require_pattern_editable(model)
    seen: list[int] = []

    def count(mod, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        seen.append(int(hidden.shape[0]))

    return seen, model.blocks[layer].register_forward_pre_hook(count, with_kwargs=True)


def test_identity_strategy_has_zero_effect_and_stops_at_the_ablated_layer(tiny, prompts):
    """An edit that leaves the activation exactly as it was is the clean run from there on:
    exactly the clean values, and no block above the ablated layer runs for it."""
    seen, handle = _rows_entering(tiny, 2)
    try:
        eff = head_effects(tiny, prompts, strategy=IDENTITY, layers=[0, 1], run=RUN)
    finally:
        handle.remove()
    for m in METRICS:
        assert (eff.per_example[m] == eff.baseline[m]).all()
    assert sum(seen) == len(prompts)  # the clean passes only


def test_rerunning_blocks_from_the_clean_residual_reproduces_the_clean_run(tiny, prompts):
    """An edit of float-rounding size (every row counts as changed) re-runs every block above."""
    almost = Strategy("almost_identity", "pattern", lambda x, heads, ctx: (x + 1.0) - 1.0)
    eff = head_effects(tiny, prompts, strategy=almost, layers=[0, 1], run=RUN)
    for m in METRICS:
        assert eff.effects[m].abs().max() < 1e-5


def test_rows_without_a_hidden_sink_skip_the_upper_blocks_and_equal_the_naive_loop(tiny, prompts):
    """With a threshold that leaves some (head, prompt) pairs without a hidden sink, ACT does
    not edit them: they keep the clean values exactly and skip the blocks above the layer,
    while the edited pairs still equal the naive loop."""
    settings = SinkSettings(beta=0.4, threshold=0.2)
    seen, handle = _rows_entering(tiny, 2)
    try:
        eff = head_effects(tiny, prompts, strategy="act", layers=[0, 1], run=RUN,
                           settings=settings)  # fmt: skip
    finally:
        handle.remove()
    naive = head_effects_naive(
        tiny, prompts, strategy="act", layers=[0, 1], progress=False, settings=settings
    )
    _assert_same(eff, naive)
    delta = eff.per_example["choice_logprob"] - eff.baseline["choice_logprob"]
    untouched = int((delta == 0).sum())
    assert 0 < untouched < delta.numel() and delta.abs().max() > 1e-3
    all_rows = len(prompts) + 2 * 4 * len(prompts)  # clean passes + every (layer, head, prompt)
    assert sum(seen) == all_rows - untouched


def test_heads_by_layer_equals_naive_on_chosen_heads_and_nan_elsewhere(tiny, prompts, naive_act):
    chosen = {0: [1, 3], 2: [2]}
    eff = head_effects(tiny, prompts, strategy="act", run=RUN, heads=chosen, settings=SETTINGS)
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


def test_layer_and_head_subsets(tiny, prompts, naive_act):
    eff = head_effects(
        tiny, prompts, strategy="act", layers=[2, 1], heads=[3, 0], run=RUN, settings=SETTINGS
    )
    assert eff.layers == (1, 2) and eff.heads == (0, 3)
    for li, layer in enumerate(eff.layers):
        for m in METRICS:
            want = naive_act.per_example[m][naive_act.layers.index(layer)][[0, 3]]
            torch.testing.assert_close(eff.per_example[m][li], want, atol=ATOL, rtol=0)


def test_checkpointed_units_are_saved_then_reused_not_recomputed(
    tiny, prompts, naive_act, tmp_path, monkeypatch
):
    """With a checkpoint the engine runs unit by unit (one layer each here), saves every
    finished unit, and a second run takes the saved units instead of computing them."""
    monkeypatch.setattr(act_lens.analysis.units, "LAYERS_PER_UNIT", 1)
    path = tmp_path / "effects.ckpt"
    run = RunOptions(batch_size=BATCH, progress=False, checkpoint=Checkpoint(path, "job"))
    eff = head_effects(tiny, prompts, strategy="act", run=run, settings=SETTINGS)
    saved = Checkpoint(path, "job")
    assert sorted(saved.done) == ["L0:P0-4", "L1:P0-4", "L2:P0-4"]
    for m in METRICS:  # equal to the in-process run
        torch.testing.assert_close(eff.per_example[m], naive_act.per_example[m], atol=ATOL, rtol=0)
        assert torch.equal(saved.get("L1:P0-4")["per_example"][m][0], eff.per_example[m][1])

    seen_layers = []

    def spy(x, heads, ctx):
        seen_layers.append(ctx.layer)
        return x.clone()

    fake = saved.get("L0:P0-4")
    fake["per_example"] = {m: torch.full((1, 4, len(prompts)), 7.0) for m in METRICS}
    again = RunOptions(batch_size=8, progress=False, checkpoint=Checkpoint(None, "job"))
    for layer in (0, 1):  # layers 0 and 1 finished (with planted values), layer 2 not
        again.checkpoint.put(f"L{layer}:P0-4", {**fake, "layers": [layer]})  # type: ignore[union-attr]
    eff = head_effects(tiny, prompts, strategy=Strategy("spy", "pattern", spy), run=again)
    assert set(seen_layers) == {2}
    assert (eff.per_example["margin"][:2] == 7.0).all()


def test_earlier_spellings_warn_or_say_what_replaced_them(tiny, prompts, naive_act):
    with pytest.warns(DeprecationWarning, match=r"run=RunOptions\(batch_size=3"):
        eff = head_effects(tiny, prompts, layers=[1], batch_size=BATCH, progress=False,
                           settings=SETTINGS)  # fmt: skip
    torch.testing.assert_close(
        eff.per_example["margin"][0], naive_act.per_example["margin"][1], atol=ATOL, rtol=0
    )
    with pytest.warns(DeprecationWarning, match=r"settings=SinkSettings\(beta=0.4"):
        head_effects(tiny, prompts, layers=[1], beta=0.4, threshold=0.05, run=RUN)
    with pytest.warns(DeprecationWarning, match=r"heads="):
        head_effects(tiny, prompts, heads_by_layer={1: [0]}, run=RUN)
    for removed in ("on_layer_done", "skip_layers"):
        with pytest.raises(ConfigError, match="checkpoint"):
            head_effects(tiny, prompts, run=RUN, **{removed: {}})
    # an object and a loose keyword for the same thing, or two ways to say which heads
    with pytest.raises(ConfigError, match="beside run="):
        head_effects(tiny, prompts, run=RUN, batch_size=2)
    with pytest.raises(ConfigError, match="beside settings="):
        head_effects(tiny, prompts, run=RUN, settings=SETTINGS, beta=0.3)
    with pytest.raises(ConfigError, match="not both"):
        head_effects(tiny, prompts, layers=[0], heads={1: [0]}, run=RUN)
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="not both"):
        head_effects(tiny, prompts, layers=[0], heads_by_layer={1: [0]}, run=RUN)


def test_no_hook_left_after_a_strategy_error(tiny, prompts):
    def broken(x, heads, ctx):
        if ctx.layer == 1:
            raise RuntimeError("boom")
        return x.clone()

    with pytest.raises(RuntimeError, match="boom"):
        head_effects(tiny, prompts, strategy=Strategy("broken", "pattern", broken), run=QUIET)
    assert n_hooks(tiny) == 0


def test_bad_layers_and_heads_raise_config_error(tiny, prompts):
    with pytest.raises(ConfigError, match="layers must be in"):
        head_effects(tiny, prompts, layers=[3], run=QUIET)
    with pytest.raises(ConfigError, match="heads in"):
        head_effects(tiny, prompts, heads=[4], run=QUIET)
    with pytest.raises(ConfigError, match="heads in"):
        head_effects(tiny, prompts, heads={0: [4]}, run=QUIET)
    with pytest.raises(ConfigError, match="unknown strategy"):
        head_effects(tiny, prompts, strategy="nope", run=QUIET)
    with pytest.raises(ConfigError, match="at least one prompt"):
        head_effects(tiny, [], run=QUIET)
