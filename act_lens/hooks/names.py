"""The only module that spells TransformerLens hook names."""


def pattern_hook(layer: int) -> str:
    """Post-softmax attention pattern ``[batch, head_index, query_pos, key_pos]``."""
    return f"blocks.{layer}.attn.hook_pattern"


def is_pattern_hook(hook_name: str) -> bool:
    """A filter for every layer's ``hook_pattern`` (TransformerLens takes it as a hook name)."""
    parts = hook_name.split(".")
    return (
        len(parts) == 4
        and parts[0] == "blocks"
        and parts[1].isdigit()
        and parts[2:]
        == [
            "attn",
            "hook_pattern",
        ]
    )


def z_hook(layer: int) -> str:
    """Per-head attention output before the output projection ``[batch, pos, head_index, d_head]``."""
    return f"blocks.{layer}.attn.hook_z"


def layer_of(hook_name: str) -> int:
    """Layer index encoded in a ``blocks.{l}.…`` hook name."""
    parts = hook_name.split(".")
    if len(parts) < 2 or parts[0] != "blocks" or not parts[1].isdigit():
        raise ValueError(f"not a per-block hook name: {hook_name!r}")
    return int(parts[1])


def final_norm_in_hook() -> str:
    """Residual stream entering the final norm ``[batch, pos, d_model]``."""
    return "ln_final.hook_in"
