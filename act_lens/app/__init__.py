"""app: the ``act-lens`` command and what it writes.

Argument parsing and the resolved ``RunConfig``, the input checks that run before torch is
imported (``preflight``), the pipeline of each subcommand, ``report.md`` and the figures (drawn
from saved results, never from a model). May import: ``act_lens.analysis``,
``act_lens.evaluation``, ``act_lens.runtime``, ``act_lens.hooks``, ``act_lens.models``, ``act_lens.core``,
``act_lens.errors``, ``act_lens.io`` (every other layer but the integrations).
"""
