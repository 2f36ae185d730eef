"""act_lens: hidden attention sinks and attention calibration (ACT) for TransformerLens.

The public API is ``import act_lens as al`` with the names in ``__all__``. They are imported
on first use (PEP 562), so ``import act_lens`` is cheap: neither torch nor transformer_lens is
imported until a name that needs it is touched, and the ``act-lens`` command checks its input
before that happens.

The code lives in folders by layer (see the README's folder map): ``core`` (pure tensors),
``hooks`` (TransformerLens adapters), ``evaluation`` and ``analysis`` (what runs a model),
``models`` (loading), ``app`` (the command line), ``integrations``. No folder is named like a
public name, so importing a submodule never shadows one (``act_lens.evaluate`` stays the
function).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "head_effects": "act_lens.analysis.ablation",
    "head_effects_naive": "act_lens.analysis.ablation",
    "ActConfig": "act_lens.hooks.act",
    "act_hooks": "act_lens.hooks.act",
    "calibrated": "act_lens.hooks.interventions",
    "content_free_scores": "act_lens.evaluation.baselines",
    "contextual_calibration": "act_lens.evaluation.baselines",
    "SinkCensus": "act_lens.analysis.census",
    "sink_census": "act_lens.analysis.census",
    "check_pattern_editable": "act_lens.hooks.check",
    "calibrate_pattern": "act_lens.core.calibrate",
    "detect_sinks": "act_lens.core.sinks",
    "sink_scores": "act_lens.core.sinks",
    "classify_token": "act_lens.core.token_classes",
    "HeadEffects": "act_lens.analysis.effects",
    "ActLensError": "act_lens.errors",
    "ConfigError": "act_lens.errors",
    "DataError": "act_lens.errors",
    "HeadSetError": "act_lens.errors",
    "ModelLoadError": "act_lens.errors",
    "PatternNotEditableError": "act_lens.errors",
    "ShapeError": "act_lens.errors",
    "EvalConfig": "act_lens.evaluation.config",
    "EvalResult": "act_lens.evaluation.evaluate",
    "compare": "act_lens.evaluation.evaluate",
    "evaluate": "act_lens.evaluation.evaluate",
    "generate": "act_lens.evaluation.generate",
    "HeadSet": "act_lens.hooks.headset",
    "load_model": "act_lens.models.loading",
    "SinkRecorder": "act_lens.hooks.recorder",
    "calibration_mix": "act_lens.analysis.calibration_set",
    "screen_heads": "act_lens.analysis.screening",
    "search_heads": "act_lens.analysis.search",
    "SearchResult": "act_lens.analysis.search_result",
    "SearchConfig": "act_lens.analysis.search_config",
    "RunOptions": "act_lens.runtime.options",
    "PairedComparison": "act_lens.evaluation.stats",
    "Strategy": "act_lens.hooks.strategies",
    "get_task": "act_lens.evaluation.tasks",
    "task_names": "act_lens.evaluation.tasks",
    "tiny_model": "act_lens.models.tiny",
    "ZeroTuningConfig": "act_lens.hooks.zerotuning",
    "Compose": "act_lens.hooks.interventions",
    "intervention_for": "act_lens.hooks.interventions",
    "Intervention": "act_lens.hooks.spec",
    "Hooks": "act_lens.hooks.spec",
    "scale_initial_attention": "act_lens.core.zerotuning",
    "zerotuning_search": "act_lens.analysis.zerotuning_search",
    "SinkSettings": "act_lens.core.settings",
    "Selection": "act_lens.analysis.selection",
    "Halving": "act_lens.analysis.halving",
    "random_head_set": "act_lens.evaluation.controls",
    "TaskResult": "act_lens.evaluation.task_result",
    "load_results": "act_lens.evaluation.task_result",
}

__all__ = [
    "__version__",
    "ActConfig",
    "ActLensError",
    "Compose",
    "ConfigError",
    "DataError",
    "EvalConfig",
    "EvalResult",
    "Halving",
    "HeadEffects",
    "HeadSet",
    "HeadSetError",
    "Hooks",
    "Intervention",
    "ModelLoadError",
    "PairedComparison",
    "PatternNotEditableError",
    "RunOptions",
    "SearchConfig",
    "SearchResult",
    "Selection",
    "ShapeError",
    "SinkCensus",
    "SinkRecorder",
    "SinkSettings",
    "Strategy",
    "TaskResult",
    "ZeroTuningConfig",
    "act_hooks",
    "calibrate_pattern",
    "calibrated",
    "calibration_mix",
    "check_pattern_editable",
    "classify_token",
    "compare",
    "content_free_scores",
    "contextual_calibration",
    "detect_sinks",
    "evaluate",
    "generate",
    "get_task",
    "head_effects",
    "head_effects_naive",
    "intervention_for",
    "load_model",
    "load_results",
    "random_head_set",
    "scale_initial_attention",
    "screen_heads",
    "search_heads",
    "sink_census",
    "sink_scores",
    "task_names",
    "tiny_model",
    "zerotuning_search",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'act_lens' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # static checkers and IDEs see the real names
    from act_lens.analysis.ablation import head_effects, head_effects_naive
    from act_lens.analysis.calibration_set import calibration_mix
    from act_lens.analysis.census import SinkCensus, sink_census
    from act_lens.analysis.effects import HeadEffects
    from act_lens.analysis.halving import Halving
    from act_lens.analysis.screening import screen_heads
    from act_lens.analysis.search import search_heads
    from act_lens.analysis.search_config import SearchConfig
    from act_lens.analysis.search_result import SearchResult
    from act_lens.analysis.selection import Selection
    from act_lens.analysis.zerotuning_search import zerotuning_search
    from act_lens.core.calibrate import calibrate_pattern
    from act_lens.core.settings import SinkSettings
    from act_lens.core.sinks import detect_sinks, sink_scores
    from act_lens.core.token_classes import classify_token
    from act_lens.core.zerotuning import scale_initial_attention
    from act_lens.errors import (
        ActLensError,
        ConfigError,
        DataError,
        HeadSetError,
        ModelLoadError,
        PatternNotEditableError,
        ShapeError,
    )
    from act_lens.evaluation.baselines import content_free_scores, contextual_calibration
    from act_lens.evaluation.config import EvalConfig
    from act_lens.evaluation.controls import random_head_set
    from act_lens.evaluation.evaluate import EvalResult, compare, evaluate
    from act_lens.evaluation.generate import generate
    from act_lens.evaluation.stats import PairedComparison
    from act_lens.evaluation.task_result import TaskResult, load_results
    from act_lens.evaluation.tasks import get_task, task_names
    from act_lens.hooks.act import ActConfig, act_hooks
    from act_lens.hooks.check import check_pattern_editable
    from act_lens.hooks.headset import HeadSet
    from act_lens.hooks.interventions import Compose, calibrated, intervention_for
    from act_lens.hooks.recorder import SinkRecorder
    from act_lens.hooks.spec import Hooks, Intervention
    from act_lens.hooks.strategies import Strategy
    from act_lens.hooks.zerotuning import ZeroTuningConfig
    from act_lens.models.loading import load_model
    from act_lens.models.tiny import tiny_model
    from act_lens.runtime.options import RunOptions
