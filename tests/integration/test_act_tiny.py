"""ACT hooks on a tiny random Llama: efficacy, composition, padding, cleanup, generation."""

import pytest
import torch

from act_lens.core.settings import SinkSettings
from act_lens.errors import HeadSetError, PatternNotEditableError
from act_lens.evaluation.batching import pad_left
from act_lens.evaluation.generate import generate
from act_lens.hooks.act import ActConfig, act_hooks
from act_lens.hooks.check import check_pattern_editable, require_pattern_editable
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.interventions import calibrated
from act_lens.hooks.names import pattern_hook
from act_lens.hooks.recorder import SinkRecorder

TEXTS = ["The cat sat on the mat. It was warm,\nand quiet.", "Dogs bark: loudly!"]


def _tokens(model, text):
    return torch.tensor([model.tokenizer(text).input_ids])


def _n_hooks(model):
    return sum(len(hp._forward_hooks) for hp in model.hook_dict.values())


def test_calibrating_one_head_changes_logits(tiny):
    toks = _tokens(tiny, TEXTS[0])
    with torch.inference_mode():
        base = tiny(toks)
        cal = tiny.run_with_hooks(
            toks, fwd_hooks=act_hooks(HeadSet({1: [2]}), SinkSettings(threshold=0.05))
        )
    assert (cal - base).abs().max() > 1e-4


def test_empty_head_set_and_beta_one_leave_logits_unchanged(tiny):
    toks = _tokens(tiny, TEXTS[0])
    with torch.inference_mode():
        base = tiny(toks)
        empty = tiny.run_with_hooks(toks, fwd_hooks=act_hooks(HeadSet()))
        ident = tiny.run_with_hooks(
            toks,
            fwd_hooks=act_hooks(
                HeadSet({0: [0, 1, 2, 3], 2: [1]}), SinkSettings(beta=1.0, threshold=0.05)
            ),
        )
    assert torch.equal(base, empty)
    assert torch.allclose(base, ident, atol=1e-6)


def test_hook_order_recorder_sees_calibrated_patterns_when_after(tiny):
    toks = _tokens(tiny, TEXTS[0])
    hs = HeadSet({1: [0, 1, 2, 3]})
    before, after = (
        SinkRecorder([1], keep_patterns={1: None}),
        SinkRecorder([1], keep_patterns={1: None}),
    )
    act = act_hooks(hs, SinkSettings(beta=0.0, threshold=0.05))
    with torch.inference_mode():
        tiny.run_with_hooks(toks, fwd_hooks=[*before.hooks(), *act, *after.hooks()])
    raw, cal = before.records[1][0].pattern, after.records[1][0].pattern
    assert not torch.allclose(raw, cal)
    assert torch.allclose(cal.sum(-1), torch.ones_like(cal.sum(-1)), atol=1e-5)


def test_recording_does_not_change_logits(tiny):
    toks = _tokens(tiny, TEXTS[0])
    rec = SinkRecorder(list(range(tiny.cfg.n_layers)), keep_patterns={0: [1]})
    with torch.inference_mode():
        assert torch.equal(tiny(toks), tiny.run_with_hooks(toks, fwd_hooks=rec.hooks()))
    assert set(rec.records) == {0, 1, 2}


def test_padded_batch_equals_rows_alone(tiny):
    ids = [tiny.tokenizer(t).input_ids for t in TEXTS]
    tokens, mask = pad_left(ids, tiny.tokenizer.pad_token_id)
    cfg = ActConfig(HeadSet({0: [1, 3], 2: [0, 2]}), SinkSettings(beta=0.2, threshold=0.05))
    with torch.inference_mode():
        batched = tiny.run_with_hooks(tokens, attention_mask=mask, fwd_hooks=cfg(mask))
        for row, row_ids in enumerate(ids):
            alone = tiny.run_with_hooks(torch.tensor([row_ids]), fwd_hooks=cfg(None))
            assert torch.allclose(batched[row, -1], alone[0, -1], atol=1e-4)


def test_no_hook_left_after_run_error_context_and_generation(tiny):
    toks = _tokens(tiny, TEXTS[1])
    hs = HeadSet({1: [1]})
    assert _n_hooks(tiny) == 0
    with torch.inference_mode():
        tiny.run_with_hooks(toks, fwd_hooks=act_hooks(hs))
    assert _n_hooks(tiny) == 0

    def bad(pattern, hook):
        raise RuntimeError("user hook failed")

    with pytest.raises(RuntimeError, match="user hook failed"), torch.inference_mode():
        tiny.run_with_hooks(toks, fwd_hooks=[*act_hooks(hs), (pattern_hook(2), bad)])
    assert _n_hooks(tiny) == 0
    with pytest.raises(ValueError, match="inside"), calibrated(tiny, hs):
        assert _n_hooks(tiny) == 1
        raise ValueError("error inside the block")
    assert _n_hooks(tiny) == 0
    generate(tiny, TEXTS[1], hs, max_new_tokens=3)
    assert _n_hooks(tiny) == 0


def test_calibrated_context_changes_logits_and_validates(tiny):
    toks = _tokens(tiny, TEXTS[0])
    with torch.inference_mode():
        base = tiny(toks)
        with calibrated(
            tiny, ActConfig(HeadSet({2: [0, 1, 2, 3]}), SinkSettings(threshold=0.05, beta=0.0))
        ):
            inside = tiny(toks)
        after = tiny(toks)
    assert (inside - base).abs().max() > 1e-4
    assert torch.equal(base, after)
    with pytest.raises(HeadSetError, match="out of range"), calibrated(tiny, HeadSet({7: [0]})):
        pass


def test_generation_beta_one_equals_plain(tiny):
    hs = HeadSet({layer: range(4) for layer in range(3)})
    plain = generate(tiny, TEXTS[0], max_new_tokens=6, stop_at_eos=False)
    ident = generate(tiny, TEXTS[0], ActConfig(hs, beta=1.0), max_new_tokens=6, stop_at_eos=False)
    assert plain.new_tokens == ident.new_tokens
    for policy in ("prompt", "prompt+new"):
        out = generate(
            tiny,
            TEXTS[0],
            ActConfig(hs, SinkSettings(beta=0.0, threshold=0.05)),
            policy=policy,
            max_new_tokens=6,
        )
        assert len(out.new_tokens) >= 1


def test_generation_stops_at_a_stop_string_with_the_same_text(tiny):
    full = generate(tiny, TEXTS[1], max_new_tokens=12, stop_at_eos=False)
    cut = 4  # stop on the text of the first few new tokens: decoding must end right there
    stop = tiny.tokenizer.decode(full.new_tokens[:cut], skip_special_tokens=True)[-1]
    short = generate(tiny, TEXTS[1], max_new_tokens=12, stop_at_eos=False, stop=[stop])
    assert stop in short.text
    assert len(short.new_tokens) <= cut
    assert short.new_tokens == full.new_tokens[: len(short.new_tokens)]


def test_decode_policy_prompt_sinks_used_for_new_rows(tiny):
    """With policy 'prompt', every row is calibrated against sinks found on the prompt only."""
    prompt_len = len(tiny.tokenizer(TEXTS[0]).input_ids)
    seen = {}

    def spy(pattern, hook):
        seen["p"] = pattern.detach().clone()
        return pattern

    toks = _tokens(tiny, TEXTS[0] + " more words here")
    hooks = act_hooks(
        HeadSet({1: [0, 1, 2, 3]}), SinkSettings(beta=0.0, threshold=0.05), sink_queries=prompt_len
    )
    with torch.inference_mode():
        tiny.run_with_hooks(toks, fwd_hooks=[*hooks, (pattern_hook(1), spy)])
    p = seen["p"][0]
    assert torch.allclose(p.sum(-1), torch.ones_like(p.sum(-1)), atol=1e-5)
    # Columns beyond the prompt are never sinks under this policy: none was zeroed by beta=0.
    new_cols = p[:, prompt_len:, prompt_len:]
    diag = torch.diagonal(new_cols, dim1=-2, dim2=-1)
    assert (diag > 0).all()


class _ObservationOnly:
    """A model whose pattern hook is observation-only: hooks run but their output is ignored."""

    def __init__(self, model):
        self.cfg = model.cfg
        self.tokenizer = model.tokenizer
        self._model = model

    def run_with_hooks(self, tokens, fwd_hooks=(), **kw):
        observe = [
            (name, lambda p, hook, fn=fn: (fn(p.clone(), hook=hook), None)[1])
            for name, fn in fwd_hooks
        ]
        return self._model.run_with_hooks(tokens, fwd_hooks=observe, **kw)

    def hooks(self, fwd_hooks=()):
        return self._model.hooks(fwd_hooks=[])


def test_observation_only_model_is_refused(tiny):
    fake = _ObservationOnly(tiny)
    assert check_pattern_editable(tiny).ok
    with pytest.raises(PatternNotEditableError, match="observation-only"):
        check_pattern_editable(fake)
    with pytest.raises(PatternNotEditableError):
        require_pattern_editable(fake)
    with pytest.raises(PatternNotEditableError), calibrated(fake, HeadSet({1: [0]})):
        pass
    result = check_pattern_editable(fake, raise_on_fail=False)
    assert result.editable_layers == ()
