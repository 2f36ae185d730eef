"""Adapters that let other tools drive act_lens models; each imports its tool only when imported.

* :mod:`act_lens.integrations.lm_eval`: ``ActLensLM``, an lm-evaluation-harness model class
  (``lm_eval --model act_lens``), needs ``pip install "act-lens[lm-eval]"``.
"""
