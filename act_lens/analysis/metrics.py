"""The search metrics by name (no torch here: the command line checks names before loading)."""

from act_lens.errors import ConfigError

METRICS = ("choice_logprob", "vocab_logprob", "margin", "accuracy", "neg_entropy")
DEFAULT_METRIC = "choice_logprob"
# The search's default screen (``SearchConfig.screen``), here so that the torch-free CLI
# reads the same number: the cheapest screen whose sets held out like exhaustive evaluation.
DEFAULT_SCREEN = 96
# Names of earlier versions: read from old files, refused as an argument (the old default
# "gold_logprob" was the full-vocabulary log-prob, which is not what decides a prediction).
RENAMED = {"gold_logprob": "vocab_logprob"}
METRIC_HELP = {
    "choice_logprob": "log-prob of the gold choice after a log-softmax over the task's choices "
    "only (the paper's scoring; default)",
    "vocab_logprob": "log-prob of the gold choice's first token over the whole vocabulary "
    "(called gold_logprob before 0.2)",
    "margin": "gold choice minus the best other choice (log-prob difference)",
    "accuracy": "1 if the gold choice scores highest, else 0",
    "neg_entropy": "minus the entropy of the distribution over the choices (needs no label: "
    "the unsupervised criterion of ZeroTuning)",
}
LABEL_FREE = ("neg_entropy",)


def check_metric(metric: str) -> str:
    """``metric`` if it is known; an old name is refused with a message naming the new ones.

    Raises:
        ConfigError: unknown metric, or ``"gold_logprob"`` (renamed ``"vocab_logprob"``).
    """
    if metric in RENAMED:
        raise ConfigError(
            f"metric {metric!r} was renamed {RENAMED[metric]!r} (the gold choice's log-prob over "
            "the whole vocabulary); the default is now 'choice_logprob' (log-softmax over the "
            f"task's choices only, the paper's scoring); known: {', '.join(METRICS)}"
        )
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    return metric
