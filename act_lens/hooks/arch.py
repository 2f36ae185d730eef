"""Architecture facts act_lens needs beyond ``model.cfg``: which layers use sliding-window attention.

Gemma 3 alternates 5 local layers (each query sees only the last ``sliding_window`` = 512
keys, itself included) with 1 global layer. In a local layer a query at position
``i >= window`` cannot see the first token, so "attention on the first token" is not defined
for it. act_lens keeps every definition *per visible pair*:

* **sink score** of key ``j`` = mean attention ``j`` receives over the real queries that can
  see it (``j <= i < j + window``). A query that cannot see ``j`` counts neither in the sum nor
  in the count, so a far-away query does not dilute the score with structural zeros. In
  particular the first token's score in a local layer is measured over the first ``window``
  queries only.
* **hidden sink**: a key other than the first real token whose score exceeds the threshold.
  A key that collects attention at the trailing edge of the window is therefore a hidden sink
  (ACT may calibrate it), while the first real token is never calibrated, as in global layers.
* **first-token mass** of a head (census ``first_mass``) = mean attention on the first real
  token over the real queries that can see it; rows that cannot see it are left out (they
  would contribute an exact 0). Hidden mass and entropy average over all real query rows.

When every prompt is shorter than the window (all SST-2 prompts here, for example) these are
exactly the global-layer definitions. ``layer_windows`` returns ``{layer: window}`` for the
local layers only; :func:`fill_windows` puts it into a ``SinkSettings`` and
:func:`model_settings` builds the settings an analysis runs a model with (``sink_census``,
``head_effects``, ``screen_heads``, ``search_heads`` and ``ActConfig.for_model`` do so
themselves).
"""

from dataclasses import replace
from typing import Any

from act_lens.core.settings import SinkSettings, resolve_settings

_SLIDING = {"sliding_attention", "local", "local_attention", "sliding"}


def hf_config(model: Any) -> Any:
    """The Hugging Face text config behind a TransformerBridge or an HF model (None if absent)."""
    for holder in (getattr(model, "original_model", None), model):
        config = getattr(holder, "config", None)
        if config is not None and hasattr(config, "to_dict"):
            return getattr(config, "text_config", None) or config
    return None


def layer_windows(model: Any) -> dict[int, int]:
    """``{layer: window}`` for the layers that use sliding-window attention (empty: none).

    Reads ``layer_types`` and ``sliding_window`` from the model's HF config. Configs without
    ``layer_types`` (older Mistral-style ones) count as all-local when ``sliding_window`` is set
    and ``use_sliding_window`` is not False.

    Args:
        model: a TransformerBridge (or a Hugging Face causal LM).

    Returns:
        Layer index -> window size, only for local layers.

    Example:
        >>> from act_lens import tiny_model
        >>> layer_windows(tiny_model())
        {}
        >>> windows = layer_windows(load_model("gemma3-270m"))   # doctest: +SKIP
        >>> sorted(windows)[:6], windows[0]                       # doctest: +SKIP
        ([0, 1, 2, 3, 4, 6], 512)
    """
    config = hf_config(model)
    if config is None:
        return {}
    window = getattr(config, "sliding_window", None)
    if not window:
        return {}
    n_layers = int(
        getattr(model, "cfg", config).n_layers
        if hasattr(model, "cfg")
        else config.num_hidden_layers
    )
    types = getattr(config, "layer_types", None)
    if types is None:
        if getattr(config, "use_sliding_window", True) is False:
            return {}
        return dict.fromkeys(range(n_layers), int(window))
    return {layer: int(window) for layer, kind in enumerate(types) if str(kind) in _SLIDING}


def fill_windows(settings: SinkSettings, model: Any) -> SinkSettings:
    """``settings`` with ``model``'s sliding windows filled in when it has none (``None``).

    Example:
        >>> from act_lens import tiny_model
        >>> fill_windows(SinkSettings(beta=0.2), tiny_model()).windows
        {}
    """
    if settings.windows is not None:
        return settings
    return replace(settings, windows=layer_windows(model))


def model_settings(
    model: Any, settings: SinkSettings | None = None, **keywords: Any
) -> SinkSettings:
    """The settings an analysis runs ``model`` with: ``settings`` (default: ``SinkSettings()``),
    the ``keywords`` that are not None on top, and the model's sliding windows filled in.

    Example:
        >>> from act_lens import tiny_model
        >>> model_settings(tiny_model(), SinkSettings(beta=0.2)).windows
        {}
    """
    return fill_windows(resolve_settings(settings, **keywords), model)
