"""models: getting a model: the registry of known models, loading, the weight cache, GGUF parts.

``load_model`` (known names, GGUF files, checkpoint folders, the hub), the BOS policy and the
bridge boot, the verified weight cache, multi-part GGUF assembly and tiny random models. Beside
the analysis stack: nothing below the application imports it. May import: ``act_lens.errors``,
``act_lens.io``.
"""
