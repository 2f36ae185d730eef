"""Numeric precision of a forward pass: fp32, or bf16 under ``torch.autocast``."""

import contextlib
import os
import platform
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


# Variables that cap the instruction sets oneDNN and ATen choose kernels from.
KERNEL_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def kernels(device: "str | torch.device" = "cpu") -> str:
    """The kernels a forward on ``device`` runs: torch's version and the hardware path (the
    CUDA device, or the CPU, the instruction set ATen dispatches to, native bf16, and any
    variable in ``KERNEL_ENV`` that caps it).

    Two runs with the same precision, threads and batch size round alike only on the same
    kernels: on one 2-core AMD EPYC, bf16 scores of the built-in ``reviews`` task gave 75.5%
    accuracy with the avx512_bf16 kernels and 74.0% with ``ONEDNN_MAX_CPU_ISA=AVX2``.

    Example:
        >>> kernels("cpu").startswith("torch ")
        True
    """
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device) if torch.cuda.is_available() else "unavailable"
        return f"torch {torch.__version__}, cuda {torch.version.cuda}, {name}"
    isa = torch.backends.cpu.get_cpu_capability()
    native = [f for f, ok in (("avx512_bf16", torch.cpu._is_avx512_bf16_supported()),
                              ("amx", torch.cpu._is_amx_tile_supported())) if ok]  # fmt: skip
    capped = [f"{k}={os.environ[k]}" for k in KERNEL_ENV if os.environ.get(k)]
    parts = [f"torch {torch.__version__}", " ".join([_cpu_name(), isa, *native]), *capped]
    return ", ".join(parts)


def _cpu_name() -> str:
    """The CPU's vendor, family and model (Linux), else the platform's processor string."""
    try:
        info = open("/proc/cpuinfo").read()  # noqa: SIM115 - Linux only
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in info.splitlines()[:30])
    )
    return (f"{fields.get('vendor_id', '?')} family {fields.get('cpu family', '?')} "
            f"model {fields.get('model', '?')}")  # fmt: skip


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
