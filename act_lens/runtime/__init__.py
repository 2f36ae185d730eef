"""runtime: how work runs: numeric precision, Ray worker pools and checkpoints of finished units.

``precision`` (fp32, or bf16 autocast on CPU and CUDA), ``WorkerPool`` (Ray actors that each load
the model themselves from the spec it was loaded with, and run a named act_lens function on
their copy) and ``Checkpoint`` (the finished units of an interrupted job, one file, atomic).
May import: ``act_lens.models``, ``act_lens.errors``, ``act_lens.io``.
"""
