"""Tiny random Llama-architecture bridges for fast, offline tests.

The tokenizer is byte-level (every UTF-8 byte is a token, plus ``<bos>``, ``<eos>``, ``<pad>``),
built in memory, so any text tokenizes and nothing is downloaded.
"""

from typing import TYPE_CHECKING, Any

import torch

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


def tiny_model(
    *,
    n_layers: int = 3,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    d_head: int = 16,
    d_mlp: int = 128,
    seed: int = 0,
    add_bos: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> "TransformerBridge":
    """A small random Llama bridge (GQA, RoPE, RMSNorm) in well under a second, offline.

    The weights depend on ``seed`` only: they are drawn on the CPU and then moved to ``device``,
    so a CUDA copy holds exactly the CPU model's weights.

    Example:
        >>> model = tiny_model(n_layers=2)
        >>> model.cfg.n_heads
        4
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = byte_tokenizer(add_bos=add_bos)
    # attn_implementation is a PretrainedConfig keyword the Llama stub does not list
    config = LlamaConfig(  # type: ignore[call-arg]
        vocab_size=len(tok),
        hidden_size=n_heads * d_head,
        intermediate_size=d_mlp,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        head_dim=d_head,
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
        hf = LlamaForCausalLM(config)
        # Larger query/key weights make patterns peaky (closer to a trained model's) so that
        # sinks and calibration have visible effects in tests.
        for layer in hf.model.layers:
            layer.self_attn.q_proj.weight.data.mul_(8.0)
            layer.self_attn.k_proj.weight.data.mul_(8.0)
    return boot_bridge(
        hf, tok, "act-lens/tiny-llama", device=device, dtype=dtype, prepend_bos=add_bos
    )
