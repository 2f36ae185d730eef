"""Pure tensor core: sink scores, sink detection, calibration, token classes.

Nothing in this package imports transformer_lens; every function takes and returns plain
tensors and never mutates its inputs.
"""
