"""The one way act_lens wraps a Hugging Face causal LM: a TransformerBridge with eager
attention and the BOS policy, used by every load path (cold GGUF, weight cache, folder, hub,
tiny)."""

from typing import TYPE_CHECKING, Any

import torch

from act_lens.errors import ModelLoadError

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

__all__ = ["apply_bos_policy", "boot_bridge"]


def boot_bridge(
    hf: Any,
    tokenizer: Any,
    hf_name: str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    prepend_bos: bool = True,
) -> "TransformerBridge":
    """Wrap a loaded HF causal LM in a TransformerBridge (eager attention, eval mode).

    The BOS policy is applied to the tokenizer before booting (so TransformerLens keeps it
    instead of re-loading a tokenizer by name) and checked again on the bridge's tokenizer.
    """
    from transformer_lens.model_bridge import TransformerBridge

    # Decided on the tokenizer as loaded: TransformerLens later fills a missing BOS with EOS.
    bos_id = tokenizer.bos_token_id
    apply_bos_policy(tokenizer, prepend=prepend_bos, bos_id=bos_id)
    # TransformerLens re-loads the tokenizer by name (from the hub) unless it says it adds a
    # BOS; it must keep this object, whose policy is set again on the bridge below.
    tokenizer.init_kwargs["add_bos_token"] = True
    if tokenizer.pad_token_id is None:
        # Batching pads; any id works because pad positions are masked out everywhere.
        tokenizer.pad_token = tokenizer.eos_token
    hf = hf.to(dtype=dtype).eval()
    try:
        bridge = TransformerBridge.boot_transformers(
            hf_name, hf_model=hf, tokenizer=tokenizer, dtype=dtype
        )
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise ModelLoadError(
            f"TransformerLens could not wrap {hf_name!r} ({type(err).__name__}: {err}); pass "
            "hf_name= with the official Hugging Face name of this architecture"
        ) from err
    # As a string: TransformerLens records a torch.device by its type only ("cuda" for
    # cuda:1), and every act_lens forward sends its inputs to ``cfg.device``.
    bridge = bridge.to(str(torch.device(device)))
    bridge.eval()
    bridge.act_lens_bos = apply_bos_policy(bridge.tokenizer, prepend=prepend_bos, bos_id=bos_id)  # type: ignore[attr-defined]
    # TransformerLens's own to_tokens/generate follow the same policy.
    bridge.cfg.default_prepend_bos = bridge.act_lens_bos is not None  # type: ignore[attr-defined]
    return bridge


def apply_bos_policy(tokenizer: Any, *, prepend: bool, bos_id: int | None) -> str | None:
    """Make ``tokenizer`` put ``bos_id`` first in every encoded text, or never; checked.

    act_lens's one BOS policy, applied on every load path (cold GGUF, weight cache, folder,
    hub, tiny): with ``prepend`` and a model that defines a BOS token, ``tokenizer(text)``
    starts with it (TransformerLens's ``default_prepend_bos``); otherwise no BOS is added and
    the first text token is the first position. Tokenizers from a GGUF file come with
    ``add_bos_token=False`` while the same tokenizer re-read from the weight cache adds it,
    so the policy is set explicitly rather than inherited. The first real position is the
    initial sink that ACT never calibrates, so this decides what every analysis sees.

    Returns:
        The BOS token that is prepended, or None.

    Raises:
        ModelLoadError: the tokenizer cannot be made to follow the policy.
    """
    want = bool(prepend and bos_id is not None)
    tokenizer.init_kwargs["add_bos_token"] = want  # what save_pretrained writes (weight cache)
    try:
        tokenizer.add_bos_token = want
    except (AttributeError, ValueError) as err:
        raise ModelLoadError(
            f"cannot set the BOS policy on {type(tokenizer).__name__} ({err}); load the model "
            "with prepend_bos=False, or pass a fast tokenizer"
        ) from err
    probe = list(tokenizer("x").input_ids)
    if want and probe[:1] != [bos_id]:
        raise ModelLoadError(
            f"tokenizer ignores add_bos_token (encodes 'x' as {probe}, expected BOS {bos_id} "
            "first); load the model with prepend_bos=False"
        )
    if not want and bos_id is not None and probe[:1] == [bos_id]:
        raise ModelLoadError(
            f"tokenizer still prepends BOS {bos_id} after add_bos_token=False; this tokenizer "
            "cannot follow prepend_bos=False"
        )
    return tokenizer.convert_ids_to_tokens(bos_id) if want else None
