"""core: pure tensor functions and the frozen settings they take.

Sink scores and detection, calibration (ACT), initial-token scaling (ZeroTuning), padding
masks, token classes and ``SinkSettings``. Every function takes and returns plain tensors and
never mutates its inputs. May import: ``act_lens.errors`` only (never transformer_lens, never a
model, never another act_lens layer).
"""
