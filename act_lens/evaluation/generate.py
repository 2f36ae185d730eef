"""Greedy generation with ACT, with a defined decode-step policy.

act_lens runs its own decode loop: every step is a full forward over prompt + generated tokens
(no KV cache; the bridge's cached generation is broken with transformers 5.x, see models.md).
Decode-step policy, the same as a KV-cache implementation would give:

* ``policy="prompt"`` (default): sinks are detected on the prompt rows and columns only, and
  that sink set is calibrated in every row, the generated tokens' rows included. Prompt rows
  are therefore calibrated exactly as at prefill, and the rows of new tokens (one query each
  in a cached decoder) re-balance the prompt's sinks.
* ``policy="prompt+new"``: sinks are re-detected on every step over all rows, so generated
  tokens can become sinks too.

Rows always sum to 1; with ``beta=1`` the output equals plain greedy decoding.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from act_lens.core.settings import SinkRule, SinkSettings
from act_lens.errors import ConfigError
from act_lens.hooks.act import ActConfig, act_hooks
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.interventions import Compose, intervention_for
from act_lens.hooks.spec import Hook

Policy = Literal["prompt", "prompt+new"]


@dataclass(frozen=True)
class Generation:
    """A generated continuation."""

    prompt: str
    text: str
    prompt_tokens: tuple[int, ...]
    new_tokens: tuple[int, ...]


def prompt_ids(
    model: Any, prompt: str, *, chat: bool = False, system: str | None = None
) -> list[int]:
    """Token ids of a prompt; ``chat=True`` wraps it in the tokenizer's chat template."""
    tok = model.tokenizer
    if chat:
        if not getattr(tok, "chat_template", None):
            raise ConfigError("this tokenizer has no chat template; call with chat=False")
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(tok(text, add_special_tokens=False).input_ids)
    return list(tok(prompt).input_ids)


def generate(
    model: Any,
    prompt: str,
    head_set: "HeadSet | Any | None" = None,
    *,
    max_new_tokens: int = 32,
    settings: SinkSettings | None = None,
    beta: float | None = None,
    threshold: float | None = None,
    rule: SinkRule | None = None,
    policy: Policy = "prompt",
    chat: bool = False,
    system: str | None = None,
    hooks: Sequence[Hook] = (),
    stop_at_eos: bool = True,
    stop: Sequence[str] = (),
) -> Generation:
    """Greedy decoding with ACT on ``head_set`` (None or empty: plain decoding).

    Args:
        model: a TransformerBridge.
        prompt: the prompt text.
        head_set: heads to calibrate (ACT with ``settings``; a
            ``method="zerotuning"`` set gets its ZeroTuning hooks), or an intervention config
            (``ActConfig``, ``ZeroTuningConfig``, ``Compose``): ACT parts follow ``policy``,
            ZeroTuning scales the first token's attention in every row.
        max_new_tokens: tokens to generate at most.
        settings: how ACT finds and calibrates sinks (default: method.md's).
        beta, threshold, rule: keyword conveniences on top of ``settings``.
        policy: ``"prompt"`` or ``"prompt+new"`` (see the module docstring).
        chat: wrap the prompt in the chat template.
        system: optional system message for ``chat``.
        hooks: other hooks active during generation (after ACT's on the same point).
        stop_at_eos: stop at the end-of-sequence token.
        stop: stop once the decoded new text contains one of these strings (the returned text
            still contains it, as Hugging Face's ``stop_strings`` do; cut it off yourself).

    Example:
        >>> generate(model, "What is the capital of France?", chat=True).text   # doctest: +SKIP
        'The capital of France is Paris.'
    """
    if policy not in ("prompt", "prompt+new"):
        raise ConfigError(f"policy must be 'prompt' or 'prompt+new', got {policy!r}")
    if max_new_tokens < 0:
        raise ConfigError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    head_set = head_set if head_set is not None else HeadSet()
    if isinstance(head_set, HeadSet) and head_set.method == "act":
        config: Any = ActConfig(head_set, settings, beta=beta, threshold=threshold, rule=rule)
    else:
        config = _as_config(head_set)
    config = config.for_model(model)
    ids = prompt_ids(model, prompt, chat=chat, system=system)
    n_prompt = len(ids)
    eos = model.tokenizer.eos_token_id
    device = model.cfg.device
    new: list[int] = []
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    calib = generation_hooks(config, n_prompt if policy == "prompt" else None)
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            tokens = torch.tensor([ids + new], device=device)
            logits = model.run_with_hooks(tokens, fwd_hooks=[*calib, *hooks])
            next_id = int(logits[0, -1].argmax())
            new.append(next_id)
            if stop_at_eos and next_id == eos:
                break
            if stops and _ends_decoding(model.tokenizer, new, stops):
                break
    text = model.tokenizer.decode(new, skip_special_tokens=True)
    return Generation(prompt, text, tuple(ids), tuple(new))


def _as_config(head_set: Any) -> Any:
    if isinstance(head_set, HeadSet):
        return intervention_for(head_set)
    if not hasattr(head_set, "for_model"):
        raise ConfigError(
            f"head_set must be a HeadSet or an intervention config (ActConfig, ZeroTuningConfig, "
            f"Compose), got {type(head_set).__name__}"
        )
    return head_set


def generation_hooks(config: Any, sink_queries: int | None) -> list[Hook]:
    """The hooks of one decode step: ACT parts detect sinks on the first ``sink_queries``
    rows (the prompt; None: every row), any other part is called with no mask (one prompt)."""
    parts = config.parts if isinstance(config, Compose) else (config,)
    hooks: list[Hook] = []
    for part in parts:
        if isinstance(part, ActConfig):
            hooks += act_hooks(part.head_set, part.settings, sink_queries=sink_queries)
        elif callable(part):
            hooks += list(part(None))
        else:
            hooks += list(part)
    return hooks


def _ends_decoding(tokenizer: Any, new: list[int], stops: Sequence[str]) -> bool:
    # Decoded text, not tokens: a stop string may span several tokens or end inside one.
    text = tokenizer.decode(new, skip_special_tokens=True)
    return any(s and s in text for s in stops)
