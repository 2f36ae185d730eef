"""Greedy generation with ACT, with a defined decode-step policy.

act_lens runs its own decode loop: every step is a full forward over prompt + generated tokens
(no KV cache; the bridge's cached generation is broken with transformers 5.x, see the
documentation's *Models and architectures* page).
Decode-step policy, the same as a KV-cache implementation would give:

* ``policy="prompt"`` (default): sinks are detected on the prompt rows and columns only, and
  that sink set is calibrated in every row, the generated tokens' rows included. Prompt rows
  are therefore calibrated exactly as at prefill, and the rows of new tokens (one query each
  in a cached decoder) re-balance the prompt's sinks.
* ``policy="prompt+new"``: sinks are re-detected on every step over all rows, so generated
  tokens can become sinks too.

Rows always sum to 1; with ``beta=1`` the output equals plain greedy decoding. The policy is
the ``sink_queries`` argument of :meth:`Intervention.hooks <act_lens.hooks.spec.Intervention.hooks>`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from act_lens.errors import ConfigError, config_from, renamed_keyword, warn_deprecated
from act_lens.hooks.interventions import (
    OLD_SETTINGS_KEYWORDS,
    Compose,
    as_intervention,
    with_old_settings,
)

Policy = Literal["prompt", "prompt+new"]


@dataclass(frozen=True)
class GenerateConfig:
    """How ``generate`` decodes.

    Attributes:
        max_new_tokens: tokens to generate at most.
        policy: ``"prompt"`` or ``"prompt+new"`` (see the module docstring).
        chat: wrap the prompt in the tokenizer's chat template.
        system: optional system message for ``chat``.
        stop_at_eos: stop at the end-of-sequence token.
        stop: stop once the decoded new text contains one of these strings (the returned text
            still contains it, as Hugging Face's ``stop_strings`` do; cut it off yourself).

    Example:
        >>> GenerateConfig(max_new_tokens=8, chat=True).policy
        'prompt'
    """

    max_new_tokens: int = 32
    policy: Policy = "prompt"
    chat: bool = False
    system: str | None = None
    stop_at_eos: bool = True
    stop: "Sequence[str] | str" = ()

    def __post_init__(self) -> None:
        if self.policy not in ("prompt", "prompt+new"):
            raise ConfigError(f"policy must be 'prompt' or 'prompt+new', got {self.policy!r}")
        if self.max_new_tokens < 0:
            raise ConfigError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")

    @property
    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


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
    intervention: Any = None,
    *,
    config: GenerateConfig | None = None,
    **options: Any,
) -> Generation:
    """Greedy decoding with an intervention (None: plain decoding).

    Args:
        model: a TransformerBridge.
        prompt: the prompt text.
        intervention: anything ``as_intervention`` takes: ``ActConfig``, ``ZeroTuningConfig``,
            ``Compose``, a hook list, or a ``HeadSet`` (its own method and the sink settings it
            was searched with). ACT parts follow ``policy``; ZeroTuning scales the first
            token's attention in every row; hook lists run unchanged on every step.
        config: how to decode: ``max_new_tokens``, ``policy``, ``chat``, ``system``,
            ``stop_at_eos``, ``stop`` (:class:`GenerateConfig`; default ``GenerateConfig()``).
        **options: ``GenerateConfig`` fields as keywords instead of ``config``
            (``generate(model, "Hi", max_new_tokens=8)``).

    Deprecated for one release, still working: ``head_set=`` (now ``intervention=``),
    ``hooks=`` (other hooks: write ``Compose(intervention, hooks)``), and ``settings``,
    ``beta``, ``threshold``, ``rule`` for a HeadSet (write ``ActConfig(head_set, settings)``).

    Raises:
        ConfigError: a bad ``policy`` or ``max_new_tokens``, an intervention that is none, an
            unknown keyword or an option given beside ``config``.
        HeadSetError: heads the model lacks.

    Example:
        >>> generate(model, "What is the capital of France?", chat=True).text   # doctest: +SKIP
        'The capital of France is Paris.'
        >>> generate(model, "Hello", ActConfig(head_set, beta=0.2)).text         # doctest: +SKIP
    """
    cfg, old = config_from(
        GenerateConfig,
        config,
        options,
        where="generate",
        deprecated=(*OLD_SETTINGS_KEYWORDS, "head_set", "hooks"),
    )
    intervention = renamed_keyword("generate", "intervention", intervention, old, "head_set")
    intervention = with_old_settings("generate", intervention, old)
    if old.get("hooks"):
        warn_deprecated("generate(..., hooks=...)", "generate(..., Compose(intervention, hooks))")
        intervention = Compose(as_intervention(intervention), old["hooks"])
    applied = as_intervention(intervention).for_model(model)
    ids = prompt_ids(model, prompt, chat=cfg.chat, system=cfg.system)
    n_prompt = len(ids)
    eos = model.tokenizer.eos_token_id
    device = model.cfg.device
    new: list[int] = []
    stops = cfg.stops
    calib = applied.hooks(None, sink_queries=n_prompt if cfg.policy == "prompt" else None)
    with torch.inference_mode():
        for _ in range(cfg.max_new_tokens):
            tokens = torch.tensor([ids + new], device=device)
            logits = model.run_with_hooks(tokens, fwd_hooks=calib)
            next_id = int(logits[0, -1].argmax())
            new.append(next_id)
            if cfg.stop_at_eos and next_id == eos:
                break
            if stops and _ends_decoding(model.tokenizer, new, stops):
                break
    text = model.tokenizer.decode(new, skip_special_tokens=True)
    return Generation(prompt, text, tuple(ids), tuple(new))


def _ends_decoding(tokenizer: Any, new: list[int], stops: Sequence[str]) -> bool:
    # Decoded text, not tokens: a stop string may span several tokens or end inside one.
    text = tokenizer.decode(new, skip_special_tokens=True)
    return any(s and s in text for s in stops)
