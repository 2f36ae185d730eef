"""act_lens: hidden attention sinks and attention calibration (ACT) for TransformerLens."""

__version__ = "0.1.0"

from act_lens.errors import (
    ActLensError,
    ConfigError,
    DataError,
    HeadSetError,
    ModelLoadError,
    PatternNotEditableError,
    ShapeError,
)
from act_lens.loading import load_model

__all__ = [
    "__version__",
    "ActLensError",
    "ConfigError",
    "DataError",
    "HeadSetError",
    "ModelLoadError",
    "PatternNotEditableError",
    "ShapeError",
    "load_model",
]
