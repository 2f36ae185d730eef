"""act_lens: hidden attention sinks and attention calibration (ACT) for TransformerLens.

Importing act_lens does not import transformer_lens; loading a model does.
"""

__version__ = "0.1.0"

from act_lens.ablation import head_effects, head_effects_naive
from act_lens.act import ActConfig, act_hooks, calibrated
from act_lens.baselines import content_free_scores, contextual_calibration
from act_lens.census import SinkCensus, sink_census
from act_lens.check import check_pattern_editable
from act_lens.core.calibrate import calibrate_pattern
from act_lens.core.sinks import detect_sinks, sink_scores
from act_lens.core.token_classes import classify_token
from act_lens.effects import HeadEffects
from act_lens.errors import (
    ActLensError,
    ConfigError,
    DataError,
    HeadSetError,
    ModelLoadError,
    PatternNotEditableError,
    ShapeError,
)
from act_lens.evaluate import EvalResult, compare, evaluate
from act_lens.generate import generate
from act_lens.headset import HeadSet
from act_lens.loading import load_model
from act_lens.recorder import SinkRecorder
from act_lens.search import calibration_mix, screen_heads, search_heads
from act_lens.stats import PairedComparison
from act_lens.strategies import Strategy
from act_lens.tasks import get_task, task_names
from act_lens.tiny import tiny_model

__all__ = [
    "__version__",
    "ActConfig",
    "ActLensError",
    "ConfigError",
    "DataError",
    "EvalResult",
    "HeadEffects",
    "HeadSet",
    "HeadSetError",
    "ModelLoadError",
    "PairedComparison",
    "PatternNotEditableError",
    "ShapeError",
    "SinkCensus",
    "SinkRecorder",
    "Strategy",
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
    "load_model",
    "screen_heads",
    "search_heads",
    "sink_census",
    "sink_scores",
    "task_names",
    "tiny_model",
]
