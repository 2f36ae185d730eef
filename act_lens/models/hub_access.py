"""Can a Hugging Face hub name be loaded here? Answered in milliseconds, before any download.

transformers retries an unreachable hub for most of a minute before it gives up. A model in
the local Hugging Face cache loads without the hub; any other hub name needs the hub, so it is
refused at once when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set or when the
hub's host cannot be connected to. No torch, no transformers here.
"""

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from act_lens.errors import ModelLoadError

_TRUE = ("1", "true", "yes", "on")
PROBE_TIMEOUT_S = 3.0
_HINT = (
    "download the model elsewhere and pass its folder, pass a .gguf file, or use a bundled "
    "model such as 'smollm2-135m'"
)


def offline() -> bool:
    """Whether the environment asks Hugging Face libraries not to use the network."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub resolves it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def cached(name: str) -> bool:
    """Whether ``name``'s config.json is in the local hub cache (then it loads offline)."""
    folder = hub_cache() / ("models--" + name.replace("/", "--")) / "snapshots"
    return folder.is_dir() and any(folder.glob("*/config.json"))


@functools.cache
def unreachable_reason(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the hub's host accepts a connection, else why not (once per process).

    With an HTTPS proxy configured the host is not probed (the proxy decides): None.
    """
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        return f"{host}:{port}: {err.strerror or err}"
    return None


def check_hub_model(name: str) -> bool:
    """Refuse a hub name that cannot be loaded here; returns whether to load it from the cache
    only (it is cached and the hub is off or unreachable).

    Raises:
        ModelLoadError: not cached, and offline or the hub unreachable (within seconds).

    Example:
        >>> os.environ["HF_HUB_OFFLINE"] = "1"
        >>> check_hub_model("someone/not-cached")   # doctest: +SKIP
        Traceback (most recent call last):
        act_lens.errors.ModelLoadError: model 'someone/not-cached' is not a known name, ...
    """
    if cached(name):
        return offline() or unreachable_reason() is not None
    if offline():
        raise ModelLoadError(
            f"model {name!r} is not a known name, a local path or in the Hugging Face cache, "
            f"and HF_HUB_OFFLINE is set (offline): it cannot be downloaded; {_HINT}"
        )
    reason = unreachable_reason()
    if reason is not None:
        raise ModelLoadError(
            f"model {name!r} is not a known name, a local path or in the Hugging Face cache, "
            f"and the hub is unreachable ({reason}); {_HINT}"
        )
    return False
