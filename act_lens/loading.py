"""Load a model as a TransformerBridge (eager attention), offline where possible.

Specs accepted by :func:`load_model`:

* a short name from :data:`act_lens.models.KNOWN_MODELS` (``"smollm2-135m"``, the default);
* a path to a ``.gguf`` file;
* a local folder with a Hugging Face checkpoint (``config.json`` inside);
* any other string is taken as a Hugging Face hub name (needs the hub);
* ``"tiny-random"``: a tiny random Llama for smoke tests (meaningless outputs).

GGUF files are dequantized by transformers, which takes tens of seconds; the converted weights
are cached on disk (see :mod:`act_lens.weight_cache`) so the next load takes seconds.
"""

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from act_lens.errors import ModelLoadError
from act_lens.models import KnownModel, ModelSpec, parse_spec
from act_lens.weight_cache import WeightCache, default_cache_dir, file_sha256

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

log = logging.getLogger(__name__)

__all__ = ["ModelSpec", "apply_bos_policy", "boot_bridge", "load_model", "parse_spec"]


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
            reached, or a file transformers cannot read.

    Example:
        >>> model = load_model("smollm2-135m")          # doctest: +SKIP
        >>> model.cfg.n_layers, model.cfg.n_heads        # doctest: +SKIP
        (30, 9)
    """
    if os.fspath(spec) == "tiny-random":
        # A 3-layer random Llama with a byte tokenizer: for tests and smoke runs, not for results.
        from act_lens.tiny import tiny_model

        return tiny_model(dtype=dtype, add_bos=prepend_bos)
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
        hf, tok = _load_pretrained(parsed.value, local_only=False)
        name = hf_name or parsed.value
    bridge = boot_bridge(hf, tok, name, device=device, dtype=dtype, prepend_bos=prepend_bos)
    bridge.act_lens_spec = os.fspath(spec)  # type: ignore[attr-defined]
    log.info("loaded %s in %.1f s", spec, time.perf_counter() - t0)
    return bridge


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
    bridge = bridge.to(device)
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


def _known_gguf_path(known: KnownModel, cache_dir: "str | os.PathLike[str] | None") -> Path:
    parts = known.part_paths()
    if len(parts) == 1:
        return parts[0]
    from act_lens.gguf_parts import assemble_parts

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
