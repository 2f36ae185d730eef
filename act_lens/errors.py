"""One exception family for act_lens.

Every error names what was wrong, what was expected and how to fix it. All are
``ValueError`` subclasses so that callers catching bad input keep working.
"""


class ActLensError(ValueError):
    """Base class of every error act_lens raises on purpose."""


class ModelLoadError(ActLensError):
    """A model spec could not be resolved or loaded (missing package, offline hub...)."""


class PatternNotEditableError(ActLensError):
    """Editing ``hook_pattern`` does not change the logits of this model.

    Calibration or ablation through the pattern hook would silently do nothing, so every
    entry point that edits patterns refuses such a model.
    """


class ShapeError(ActLensError):
    """A tensor has the wrong shape, dtype or values for the operation."""


class HeadSetError(ActLensError):
    """A head set is malformed or does not fit the model it is applied to."""


class DataError(ActLensError):
    """A data file or data directory is missing or malformed."""


class ConfigError(ActLensError):
    """A configuration value is out of range or inconsistent."""


class ActLensWarning(UserWarning):
    """Input that works but is probably not what was meant (a request larger than its pool,
    a capped value); the command line prints these as ``act-lens: warning: ...``."""
