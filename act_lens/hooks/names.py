"""The only module that spells TransformerLens hook names."""


def pattern_hook(layer: int) -> str:
    """Post-softmax attention pattern ``[batch, head_index, query_pos, key_pos]``."""
    return f"blocks.{layer}.attn.hook_pattern"


def scores_hook(layer: int) -> str:
    """Pre-softmax attention scores ``[batch, head_index, query_pos, key_pos]``."""
    return f"blocks.{layer}.attn.hook_attn_scores"


def z_hook(layer: int) -> str:
    """Per-head attention output before the output projection ``[batch, pos, head_index, d_head]``."""
    return f"blocks.{layer}.attn.hook_z"


def resid_pre_hook(layer: int) -> str:
    """Residual stream entering block ``layer`` ``[batch, pos, d_model]``."""
    return f"blocks.{layer}.hook_resid_pre"


def layer_of(hook_name: str) -> int:
    """Layer index encoded in a ``blocks.{l}.…`` hook name."""
    parts = hook_name.split(".")
    if len(parts) < 2 or parts[0] != "blocks" or not parts[1].isdigit():
        raise ValueError(f"not a per-block hook name: {hook_name!r}")
    return int(parts[1])


def final_norm_in_hook() -> str:
    """Residual stream entering the final norm ``[batch, pos, d_model]``."""
    return "ln_final.hook_in"
