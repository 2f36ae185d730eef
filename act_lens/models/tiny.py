"""Tiny random Llama-architecture bridges for fast, offline tests.

The tokenizer is byte-level (every UTF-8 byte is a token, plus ``<bos>``, ``<eos>``, ``<pad>``),
built in memory, so any text tokenizes and nothing is downloaded.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from act_lens.errors import ConfigError, config_from
from act_lens.models.bridge import boot_bridge

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

SPECIALS = ("<bos>", "<eos>", "<pad>")


def byte_tokenizer(add_bos: bool = True) -> Any:
    """A byte-level fast tokenizer (vocab 259) that needs no files.

    Args:
        add_bos: prepend ``<bos>`` to every encoded text (like Llama tokenizers).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    vocab.update({ch: len(SPECIALS) + i for i, ch in enumerate(alphabet)})
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    if add_bos:
        core.post_processor = processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", 0)]
        )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    # TransformerLens re-loads a tokenizer by name unless it already adds BOS; this one is built
    # in memory, so declare it final (whether it adds BOS is decided by the post-processor).
    tok.init_kwargs["name_or_path"] = "act-lens/byte-tokenizer"
    tok.init_kwargs["add_bos_token"] = True
    return tok


@dataclass(frozen=True)
class TinyConfig:
    """The shape of a tiny random Llama (see :func:`tiny_model`).

    Attributes:
        n_layers, n_heads, n_kv_heads, d_head, d_mlp: the architecture (GQA when
            ``n_kv_heads < n_heads``).
        add_bos: the tokenizer prepends ``<bos>`` (like Llama tokenizers).
    """

    n_layers: int = 3
    n_heads: int = 4
    n_kv_heads: int = 2
    d_head: int = 16
    d_mlp: int = 128
    add_bos: bool = True

    def __post_init__(self) -> None:
        sizes = {k: getattr(self, k) for k in ("n_layers", "n_heads", "n_kv_heads", "d_head")}
        small = [k for k, v in sizes.items() if v < 1]
        if small:
            raise ConfigError(f"tiny_model: {', '.join(small)} must be >= 1, got {sizes}")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(
                f"tiny_model: n_heads {self.n_heads} must be a multiple of n_kv_heads "
                f"{self.n_kv_heads}"
            )


def tiny_model(
    config: TinyConfig | None = None,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    **options: Any,
) -> "TransformerBridge":
    """A small random Llama bridge (GQA, RoPE, RMSNorm) in well under a second, offline.

    The weights depend on ``seed`` only: they are drawn on the CPU and then moved to ``device``,
    so a CUDA copy holds exactly the CPU model's weights.

    Args:
        config: the architecture (:class:`TinyConfig`; default ``TinyConfig()``: 3 layers of
            4 heads).
        seed: the weights' seed.
        dtype: the weights' dtype.
        device: where the model runs.
        **options: ``TinyConfig`` fields as keywords instead of ``config``
            (``tiny_model(n_layers=2)``).

    Raises:
        ConfigError: an unknown keyword, an option beside ``config``, or an impossible shape.

    Example:
        >>> model = tiny_model(n_layers=2)
        >>> model.cfg.n_heads
        4
    """
    cfg, _ = config_from(TinyConfig, config, options, where="tiny_model")
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = byte_tokenizer(add_bos=cfg.add_bos)
    # attn_implementation is a PretrainedConfig keyword the Llama stub does not list
    hf_config = LlamaConfig(  # type: ignore[call-arg]
        vocab_size=len(tok),
        hidden_size=cfg.n_heads * cfg.d_head,
        intermediate_size=cfg.d_mlp,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        head_dim=cfg.d_head,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
        architectures=["LlamaForCausalLM"],
        attn_implementation="eager",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf = LlamaForCausalLM(hf_config)
        # Larger query/key weights make patterns peaky (closer to a trained model's) so that
        # sinks and calibration have visible effects in tests.
        for layer in hf.model.layers:
            layer.self_attn.q_proj.weight.data.mul_(8.0)
            layer.self_attn.k_proj.weight.data.mul_(8.0)
    return boot_bridge(
        hf, tok, "act-lens/tiny-llama", device=device, dtype=dtype, prepend_bos=cfg.add_bos
    )
