"""On-disk cache of converted (dequantized) model weights.

One folder per source file, named by the source's sha256. A folder is written under a temporary
name and renamed into place only when complete, with a manifest (sizes and sha256 of every file)
written last; a folder whose manifest is missing or does not match its files is treated as
corrupt, removed and rebuilt. So an interrupted write is never used later.
"""

import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

MANIFEST = "act_lens_manifest.json"
FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """The user cache directory of act_lens (``$XDG_CACHE_HOME/act_lens`` or ``~/.cache/act_lens``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "act_lens"


def file_sha256(path: "str | os.PathLike[str]", chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class WeightCache:
    """A cache folder holding one converted model (config, safetensors weights, tokenizer)."""

    def __init__(self, folder: "str | os.PathLike[str]") -> None:
        self.folder = Path(folder)

    def is_valid(self) -> bool:
        """True when the folder exists with a manifest that matches every file (size and sha256)."""
        manifest_path = self.folder / MANIFEST
        if not manifest_path.is_file():
            return False
        try:
            manifest = json.loads(manifest_path.read_text())
            files: dict[str, dict[str, Any]] = manifest["files"]
            if manifest.get("format") != FORMAT_VERSION or not files:
                return False
            for name, info in files.items():
                path = self.folder / name
                stat = path.stat() if path.is_file() else None
                if stat is None or stat.st_size != info["size"]:
                    return False
                # Unchanged since written (same size and modification time): trust the manifest
                # instead of re-hashing gigabytes on every load. Any rewrite changes mtime.
                if stat.st_mtime_ns == info.get("mtime_ns"):
                    continue
                if file_sha256(path) != info["sha256"]:
                    return False
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return True

    def load(self) -> tuple[Any, Any] | None:
        """The cached ``(hf_model, tokenizer)``, or None when absent or corrupt (then removed)."""
        if not self.folder.exists():
            return None
        if not self.is_valid():
            log.warning("weight cache %s is incomplete or corrupt; rebuilding it", self.folder)
            self.clear()
            return None
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(self.folder)
            hf = AutoModelForCausalLM.from_pretrained(
                self.folder, attn_implementation="eager", dtype=torch.float32
            )
        except Exception as err:  # noqa: BLE001 - any failure means: rebuild
            log.warning("weight cache %s failed to load (%s); rebuilding it", self.folder, err)
            self.clear()
            return None
        # safetensors weights are memory-mapped; a later rewrite or truncation of the file
        # (another process rebuilding the cache) would then crash this model with SIGBUS.
        with torch.no_grad():
            for tensor in [*hf.parameters(), *hf.buffers()]:
                tensor.data = tensor.data.clone()
        return hf.eval(), tok

    def store(self, hf: Any, tokenizer: Any, *, source: str) -> None:
        """Write the model atomically; a failure leaves no folder behind that ``load`` would use."""
        from safetensors.torch import save_model

        self.folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.folder.parent / f".{self.folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            config = hf.config.to_dict()
            # The GGUF quantization entry would make transformers look for a .gguf file again.
            config.pop("quantization_config", None)
            config["dtype"] = "float32"
            (tmp / "config.json").write_text(json.dumps(config, indent=2))
            save_model(hf, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            tokenizer.save_pretrained(tmp)
            files = {
                p.name: {
                    "size": p.stat().st_size,
                    "sha256": file_sha256(p),
                    "mtime_ns": p.stat().st_mtime_ns,
                }
                for p in sorted(tmp.iterdir())
                if p.is_file()
            }
            manifest = {"format": FORMAT_VERSION, "source": source, "files": files}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
            self.clear()
            os.replace(tmp, self.folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
