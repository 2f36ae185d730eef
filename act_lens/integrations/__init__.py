"""integrations: adapters that let other tools drive act_lens models; each imports its tool only
when imported.

* :mod:`act_lens.integrations.lm_eval`: ``ActLensLM``, an lm-evaluation-harness model class
  (``lm_eval --model act_lens``), needs ``pip install "act-lens[lm-eval]"``.

May import: ``act_lens.evaluation``, ``act_lens.hooks``, ``act_lens.models``, ``act_lens.core``,
``act_lens.errors``, ``act_lens.io``.
"""
