"""hooks: TransformerLens adapters between a model and the pure core.

Hook names, the model facts hooks need (sliding windows, the pattern-editability self-check),
``HeadSet``, the ACT and ZeroTuning hook factories and their composition, the sink recorder and
the per-head ablation strategies. Every factory returns ``(hook_name, fn)`` pairs and registers
nothing. May import: ``act_lens.core``, ``act_lens.errors``, ``act_lens.io``.
"""
