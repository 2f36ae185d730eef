"""Checks shared by the per-architecture real-model tests (test_gemma.py, test_qwen.py)."""

import importlib.util

import pytest
import torch

from act_lens.analysis.census import sink_census
from act_lens.core.settings import SinkSettings
from act_lens.evaluation.evaluate import evaluate
from act_lens.evaluation.tasks import BUILTIN_TASK
from act_lens.hooks.act import ActConfig
from act_lens.hooks.arch import layer_windows
from act_lens.hooks.check import check_pattern_editable
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.names import pattern_hook
from act_lens.models.registry import KNOWN_MODELS

PROMPTS = ["Review: a warm, funny and moving film.\nSentiment:", "The capital of France is"]


def skip_unless_installed(name: str) -> pytest.MarkDecorator:
    """Skip with the install command when any package of the model is missing."""
    known = KNOWN_MODELS[name]
    missing = [
        p for p in known.all_packages if importlib.util.find_spec(p.replace("-", "_")) is None
    ]
    return pytest.mark.skipif(
        bool(missing),
        reason=f"{name} not installed (missing {', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}): "
        f"{known.install_command}"
        if missing
        else "",
    )


def check_self_check(model) -> None:
    result = check_pattern_editable(model)
    assert result.ok and len(result.editable_layers) == model.cfg.n_layers
    assert min(result.max_logit_change) > 1e-4


def check_census(model) -> None:
    census = sink_census(model, PROMPTS, progress=False)
    shape = (model.cfg.n_layers, model.cfg.n_heads)
    assert census.n_prompts == 2 and tuple(census.hidden_sink_freq.shape) == shape
    assert torch.isfinite(census.first_mass).all() and (census.first_mass <= 1 + 1e-5).all()
    assert census.example["tokens"]


def check_act_changes_logits(model) -> None:
    tokens = model.tokenizer(PROMPTS[0], return_tensors="pt").input_ids
    n = model.cfg.n_layers
    heads = HeadSet({layer: list(range(model.cfg.n_heads)) for layer in range(2, n - 1)})
    act = ActConfig(heads, SinkSettings(beta=0.4, windows=layer_windows(model)))
    with torch.inference_mode():
        clean = model(tokens)
        calibrated = model.run_with_hooks(tokens, fwd_hooks=act(None))
        again = model(tokens)
    assert (calibrated - clean).abs().max() > 1e-3
    assert torch.equal(clean, again)  # no hook left behind
    assert not any(hp._forward_hooks for hp in model.hook_dict.values())


def check_evaluate(model) -> None:
    base = evaluate(model, BUILTIN_TASK, limit=4, progress=False)
    heads = HeadSet({2: list(range(model.cfg.n_heads))})
    act = evaluate(
        model,
        BUILTIN_TASK,
        limit=4,
        progress=False,
        intervention=ActConfig(heads, SinkSettings(windows=layer_windows(model))),
    )
    assert base.n == act.n == 4 and base.uids == act.uids
    assert 0.0 <= base.accuracy <= 1.0


class _Stop(Exception):
    pass


def attention_patterns(model, tokens: torch.Tensor, layers: list[int]) -> dict[int, torch.Tensor]:
    """Patterns of ``layers`` for ``tokens``, stopping the forward after the last of them."""
    kept: dict[int, torch.Tensor] = {}
    last = max(layers)

    def keep(pattern, hook):
        layer = int(hook.name.split(".")[1])
        kept[layer] = pattern.detach().clone()
        if layer == last:
            raise _Stop  # the later layers are not needed
        return pattern

    with torch.inference_mode(), pytest.raises(_Stop):
        model.run_with_hooks(tokens, fwd_hooks=[(pattern_hook(la), keep) for la in layers])
    return kept


def check_cold_load_equals_cached(name: str, cache) -> None:
    """A first load into an empty cache and the cached load after it tokenize and compute alike.

    Why: a GGUF tokenizer comes with ``add_bos_token=False`` and the same tokenizer re-read from
    the weight cache adds BOS; without one explicit policy the first run of every command
    differed from all later ones (the first real token is the initial sink ACT never touches).
    """
    from act_lens import load_model
    from act_lens.models.loading import _dequantize_gguf

    assert not cache.exists()
    text = PROMPTS[0]
    cold = load_model(name, cache_dir=cache)
    cold_ids = list(cold.tokenizer(text).input_ids)
    with torch.inference_mode():
        cold_logits = cold(torch.tensor([cold_ids]))[0, -1]
    cold_bos = cold.act_lens_bos
    del cold
    import act_lens.models.loading as loading

    calls: list[int] = []

    def counting(*args, **kwargs):
        calls.append(1)
        return _dequantize_gguf(*args, **kwargs)

    real = loading._dequantize_gguf
    loading._dequantize_gguf = counting
    try:
        cached = load_model(name, cache_dir=cache)
    finally:
        loading._dequantize_gguf = real
    assert calls == []  # really served from the cache
    ids = list(cached.tokenizer(text).input_ids)
    assert ids == cold_ids
    assert cached.act_lens_bos == cold_bos
    bos_id = cached.tokenizer.bos_token_id
    assert (ids[0] == bos_id) == (cold_bos is not None)
    assert cached.to_tokens(text)[0].tolist() == ids  # TransformerLens's own path agrees
    with torch.inference_mode():
        assert torch.equal(cached(torch.tensor([ids]))[0, -1], cold_logits)
