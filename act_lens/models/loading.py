"""Load a model as a TransformerBridge (eager attention), offline where possible.

Specs accepted by :func:`load_model`:

* a short name from :data:`act_lens.models.registry.KNOWN_MODELS` (``"smollm2-135m"``, the default);
* a path to a ``.gguf`` file;
* a local folder with a Hugging Face checkpoint (``config.json`` inside);
* any other string is taken as a Hugging Face hub name (needs the hub);
* ``"tiny-random"``: a tiny random Llama for smoke tests (meaningless outputs).

GGUF files are dequantized by transformers, which takes tens of seconds; the converted weights
are cached on disk (see :mod:`act_lens.models.weight_cache`) so the next load takes seconds.
"""

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from act_lens.errors import ModelLoadError
from act_lens.models.bridge import apply_bos_policy, boot_bridge
from act_lens.models.hub_access import check_hub_model
from act_lens.models.registry import KnownModel, ModelSpec, parse_spec
from act_lens.models.weight_cache import WeightCache, default_cache_dir, file_sha256

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

log = logging.getLogger(__name__)

__all__ = [
    "ModelSpec",
    "apply_bos_policy",
    "boot_bridge",
    "check_device",
    "load_model",
    "parse_spec",
]


def load_model(
    spec: "str | os.PathLike[str]" = "smollm2-135m",
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    cache_dir: "str | os.PathLike[str] | None" = None,
    hf_name: str | None = None,
    prepend_bos: bool = True,
) -> "TransformerBridge":
    """Load a model as a TransformerBridge with eager attention and its tokenizer.

    Args:
        spec: a known short name (``"smollm2-135m"``), a ``.gguf`` path, a checkpoint folder,
            or a Hugging Face hub name.
        device: where to put the model.
        dtype: parameter dtype (the cache stores float32; other dtypes are cast after loading).
        cache_dir: where converted GGUF weights are cached (default: the user cache dir,
            ``$XDG_CACHE_HOME/act_lens`` or ``~/.cache/act_lens``).
        hf_name: the official Hugging Face name used to choose the TransformerLens adapter for a
            ``.gguf`` path or folder (default: taken from the file or folder).
        prepend_bos: the BOS policy (see :func:`apply_bos_policy`): ``model.tokenizer`` puts
            the model's BOS token first in every encoded text (default), or never.

    Returns:
        The bridge; ``model.tokenizer`` is its tokenizer.

    Raises:
        ModelLoadError: missing packages (with the install command), a hub that cannot be
            reached, a file transformers cannot read, or a device that is not there.

    Example:
        >>> model = load_model("smollm2-135m")          # doctest: +SKIP
        >>> model.cfg.n_layers, model.cfg.n_heads        # doctest: +SKIP
        (30, 9)
    """
    device = check_device(device)  # before the load: a GGUF takes tens of seconds
    # How to load this model again: worker processes load their own copy from it.
    how = {
        "spec": os.fspath(spec),
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "cache_dir": None if cache_dir is None else os.fspath(cache_dir),
        "hf_name": hf_name,
        "prepend_bos": prepend_bos,
    }
    if os.fspath(spec) == "tiny-random":
        # A 3-layer random Llama with a byte tokenizer: for tests and smoke runs, not for results.
        from act_lens.models.tiny import tiny_model

        tiny = tiny_model(dtype=dtype, add_bos=prepend_bos, device=device)
        tiny.act_lens_load = how  # type: ignore[attr-defined]
        return tiny
    parsed = parse_spec(spec)
    t0 = time.perf_counter()
    if parsed.kind == "known":
        known = parsed.known
        assert known is not None
        gguf_path = _known_gguf_path(known, cache_dir)
        hf, tok = _load_gguf(gguf_path, cache_dir, known.architectures, sha256=known.sha256)
        name = hf_name or known.hf_name
    elif parsed.kind == "gguf":
        hf, tok = _load_gguf(Path(parsed.value), cache_dir, None)
        name = hf_name or _name_from_config(hf.config, parsed.value)
    elif parsed.kind == "folder":
        hf, tok = _load_pretrained(parsed.value, local_only=True)
        name = hf_name or _name_from_config(hf.config, parsed.value)
    else:
        # Fails in milliseconds when offline or the hub is unreachable (transformers would
        # retry for most of a minute); a cached model then loads from the cache.
        local_only = check_hub_model(parsed.value)
        hf, tok = _load_pretrained(parsed.value, local_only=local_only)
        name = hf_name or parsed.value
    bridge = boot_bridge(hf, tok, name, device=device, dtype=dtype, prepend_bos=prepend_bos)
    bridge.act_lens_spec = os.fspath(spec)  # type: ignore[attr-defined]
    bridge.act_lens_load = how  # type: ignore[attr-defined]
    log.info("loaded %s in %.1f s", spec, time.perf_counter() - t0)
    return bridge


def check_device(device: str | torch.device) -> str:
    """``device`` as a string naming an existing device (``"cuda:1"`` keeps its index).

    Raises:
        ModelLoadError: not a torch device name, or a CUDA device this machine does not have.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ModelLoadError(
            f"device {device!r} is not a torch device name; use cpu, cuda or cuda:N"
        ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"device {device!r}: torch sees no CUDA device (torch.cuda.is_available() is "
                f"False; torch {torch.__version__}); use device cpu, or install a CUDA build of torch"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                f"(cuda:0..cuda:{torch.cuda.device_count() - 1})"
            )
    return str(dev)


def _known_gguf_path(known: KnownModel, cache_dir: "str | os.PathLike[str] | None") -> Path:
    parts = known.part_paths()
    if len(parts) == 1:
        return parts[0]
    from act_lens.models.gguf_parts import assemble_parts

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return assemble_parts(known, parts, root / "gguf")


def _load_gguf(
    path: Path,
    cache_dir: "str | os.PathLike[str] | None",
    architectures: tuple[str, ...] | None,
    sha256: str | None = None,
) -> tuple[Any, Any]:
    """Load a GGUF through the weight cache (dequantize once, then reuse).

    ``sha256``: the file's already verified sha256 (known models), which spares re-hashing it.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = sha256 or file_sha256(path)
    cache = WeightCache(root / "models" / key[:24])
    loaded = cache.load()
    if loaded is not None:
        return loaded
    hf, tok = _dequantize_gguf(path, architectures)
    # Stored as it will be used, so a cached load tokenizes exactly like this first one.
    apply_bos_policy(tok, prepend=True, bos_id=tok.bos_token_id)
    cache.store(hf, tok, source=str(path))
    return hf, tok


def _dequantize_gguf(path: Path, architectures: tuple[str, ...] | None) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf  # noqa: F401 - transformers needs it to read GGUF
    except ImportError as err:  # pragma: no cover - gguf is a declared dependency
        raise ModelLoadError("reading GGUF files needs the gguf package: pip install gguf") from err
    folder, name = str(path.parent), path.name
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        hf = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, attn_implementation="eager", dtype=torch.float32
        )
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise ModelLoadError(
            f"transformers could not load the GGUF file {path} ({type(err).__name__}: {err})"
        ) from err
    if architectures is not None and not getattr(hf.config, "architectures", None):
        hf.config.architectures = list(architectures)
    return hf, tok


def _load_pretrained(name_or_folder: str, *, local_only: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name_or_folder, local_files_only=local_only)
        hf = AutoModelForCausalLM.from_pretrained(
            name_or_folder,
            attn_implementation="eager",
            dtype=torch.float32,
            local_files_only=local_only,
        )
    except Exception as err:  # noqa: BLE001 - re-raised with context
        where = "folder" if local_only else "Hugging Face hub model"
        hint = (
            "check that the folder holds config.json, weights and tokenizer files"
            if local_only
            else "the hub may be unreachable (offline?); download the model elsewhere and pass "
            "its folder, pass a .gguf file, or use a bundled model such as 'smollm2-135m'"
        )
        raise ModelLoadError(
            f"could not load {where} {name_or_folder!r} ({type(err).__name__}: {err}); {hint}"
        ) from err
    return hf, tok


def _name_from_config(config: Any, fallback: str) -> str:
    name = getattr(config, "_name_or_path", None) or ""
    # GGUF configs carry a free-text model name; only hub-shaped names help the adapter lookup.
    return name if name.count("/") == 1 and " " not in name else Path(fallback).stem
