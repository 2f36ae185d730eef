"""Numeric precision of a forward pass: fp32, or bf16 under ``torch.autocast``."""

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import torch
from torch import Tensor

from act_lens.errors import ConfigError

Precision = Literal["fp32", "bf16", "auto"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "auto")


def check_precision(precision: str) -> Precision:
    """``precision`` if known; a ConfigError naming the choices otherwise."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision  # type: ignore[return-value]


def resolve_precision(precision: str, device: "str | torch.device" = "cpu") -> str:
    """``"auto"`` -> ``"bf16"`` where the hardware has native bf16, else ``"fp32"``."""
    check_precision(precision)
    if precision != "auto":
        return precision
    return "bf16" if bf16_supported(device) else "fp32"


def bf16_supported(device: "str | torch.device" = "cpu") -> bool:
    """Whether bf16 matmuls are native here (CUDA with bf16, or a CPU with avx512_bf16/AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        flags = open("/proc/cpuinfo").read()  # noqa: SIM115 - Linux only; elsewhere: unknown
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def current_precision(device: "str | torch.device" = "cpu") -> Precision:
    """The precision the caller runs in: ``"bf16"`` inside a bf16 autocast, else ``"fp32"``
    (work sent to workers follows the caller's ``precision_context``)."""
    kind = torch.device(device).type
    kind = kind if kind in ("cuda", "cpu") else "cpu"
    if torch.is_autocast_enabled(kind) and torch.get_autocast_dtype(kind) == torch.bfloat16:
        return "bf16"
    return "fp32"


@contextlib.contextmanager
def precision_context(precision: str, model: Any = None) -> Iterator[None]:
    """Run the block in ``precision``: nothing changes for fp32; bf16 autocasts matmuls
    (``"auto"``: bf16 where the hardware has it natively, see :func:`resolve_precision`).

    Softmaxes and log-softmaxes stay in float32 under autocast, and every metric is computed
    from float32 log-probabilities, so bf16 changes the forward's matmuls only. With a
    ``model``, bf16 also gives the queries of left padding finite scores: in bf16 the mask
    overflows their rows to -inf everywhere, the softmax gives NaN, and 0 x NaN (forward) or
    NaN gradients (screening) would carry it into the real tokens. Such a row becomes all
    zeros before the softmax (uniform attention); nothing reads a padding query's output.

    Example:
        >>> with precision_context("bf16", model):                 # doctest: +SKIP
        ...     effects = head_effects(model, prompts)
    """
    device = model.cfg.device if model is not None else "cpu"
    if resolve_precision(precision, device) == "fp32":
        yield
        return
    kind = torch.device(device).type
    handles = []
    if model is not None:
        for name, module in model.named_modules():
            if name.endswith("hook_attn_scores"):  # masked, pre-softmax scores of every layer
                handles.append(module.register_forward_hook(_finite_masked_rows))
    try:
        with torch.autocast(kind if kind in ("cuda", "cpu") else "cpu", dtype=torch.bfloat16):
            yield
    finally:
        for h in handles:
            h.remove()


def _finite_masked_rows(module: Any, args: Any, scores: Tensor) -> Tensor:
    # A row is all -inf exactly when its maximum is: one reduction instead of a full-size
    # isneginf and an all() (the old form cost as much as the softmax itself).
    dead = scores.amax(dim=-1, keepdim=True) == float("-inf")
    if scores.device.type == "cpu" and not bool(dead.any()):  # no left padding (no GPU sync)
        return scores
    return scores.masked_fill(dead, 0.0)
