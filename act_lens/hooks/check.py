"""Efficacy self-check: does editing ``hook_pattern`` change the logits of this model?

The official ACT code calibrated attention through a path that never ran, so its logits with
and without ACT were identical. Every act_lens entry point that edits patterns calls
:func:`require_pattern_editable`, which runs :func:`check_pattern_editable` once per model.
"""

import weakref
from dataclasses import dataclass
from typing import Any

import torch

from act_lens.errors import PatternNotEditableError
from act_lens.hooks.names import pattern_hook

_VERIFIED: "weakref.WeakKeyDictionary[Any, PatternCheck]" = weakref.WeakKeyDictionary()
_PROBE_TEXT = "The cat sat on the mat. It was"


@dataclass(frozen=True)
class PatternCheck:
    """Outcome of the self-check: per layer, the largest logit change an edit caused."""

    layers: tuple[int, ...]
    max_logit_change: tuple[float, ...]
    tolerance: float

    @property
    def editable_layers(self) -> tuple[int, ...]:
        return tuple(
            layer
            for layer, change in zip(self.layers, self.max_logit_change, strict=True)
            if change > self.tolerance
        )

    @property
    def ok(self) -> bool:
        return len(self.editable_layers) == len(self.layers)


def check_pattern_editable(
    model: Any,
    *,
    layers: "list[int] | None" = None,
    tolerance: float = 1e-5,
    raise_on_fail: bool = True,
) -> PatternCheck:
    """Edit ``blocks.{l}.attn.hook_pattern`` in each layer and confirm the logits change.

    One batched forward: batch row ``i`` has its pattern in layer ``layers[i]`` replaced by
    attention to the query itself only, the last row is the clean run.

    Args:
        model: a TransformerBridge.
        layers: layers to check (default: all).
        tolerance: a layer passes when some logit moves by more than this.
        raise_on_fail: raise instead of returning a failing result.

    Returns:
        A PatternCheck with the per-layer logit change.

    Raises:
        PatternNotEditableError: some layer's pattern edit leaves the logits unchanged.

    Example:
        >>> from act_lens import tiny_model
        >>> check_pattern_editable(tiny_model()).ok
        True
    """
    n_layers = model.cfg.n_layers
    layers = list(range(n_layers)) if layers is None else list(layers)
    tokens = model.tokenizer(_PROBE_TEXT, return_tensors="pt").input_ids[:, :12]
    batch = tokens.to(model.cfg.device).repeat(len(layers) + 1, 1)

    def make_hook(row: int):
        def edit(pattern: torch.Tensor, hook: Any) -> torch.Tensor:
            out = pattern.clone()
            n_q, n_k = out.shape[-2:]
            eye = torch.eye(n_q, n_k, dtype=out.dtype, device=out.device)
            out[row] = eye.expand_as(out[row])
            return out

        return edit

    hooks = [(pattern_hook(layer), make_hook(row)) for row, layer in enumerate(layers)]
    with torch.inference_mode():
        logits = model.run_with_hooks(batch, fwd_hooks=hooks)
    clean = logits[-1]
    changes = tuple(float((logits[i] - clean).abs().max()) for i in range(len(layers)))
    result = PatternCheck(tuple(layers), changes, tolerance)
    if raise_on_fail and not result.ok:
        dead = sorted(set(result.layers) - set(result.editable_layers))
        raise PatternNotEditableError(
            f"editing hook_pattern in layer(s) {dead} does not change the logits of this model: "
            "the pattern hook is observation-only here, so calibration would silently do nothing. "
            "Load the model with act_lens.load_model (eager attention through TransformerBridge) "
            "or use an architecture whose attention is reconstructed by TransformerLens."
        )
    return result


def require_pattern_editable(model: Any) -> None:
    """Run the self-check once per model object; raise PatternNotEditableError when it fails."""
    cached = _VERIFIED.get(model)
    if cached is None:
        cached = check_pattern_editable(model, raise_on_fail=False)
        _VERIFIED[model] = cached
    if not cached.ok:
        check_pattern_editable(model)  # raises with the full message
