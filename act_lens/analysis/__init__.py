"""analysis: interpretability analyses that run a model: what heads do and which to calibrate.

The sink census, the per-head ablation engine and its ``HeadEffects``, screening by attribution
patching, successive halving, calibration sets, the ACT head search with its keep-rules, and
the ZeroTuning search; work split into units for ``act_lens.runtime``'s workers. May import:
``act_lens.evaluation``, ``act_lens.runtime``, ``act_lens.hooks``,
``act_lens.core``, ``act_lens.errors``, ``act_lens.io``.
"""
