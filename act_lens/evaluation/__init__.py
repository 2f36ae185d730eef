"""evaluation: running a model on task prompts, with any hooks, and judging the outputs.

Benchmark tasks (``tasks/``), batching, batched scoring (in-process or on Ray workers),
``evaluate``/``EvalResult``, paired statistics, contextual calibration, the random-set control
and greedy generation. May import: ``act_lens.runtime``, ``act_lens.hooks``, ``act_lens.core``,
``act_lens.errors``, ``act_lens.io``.
"""
