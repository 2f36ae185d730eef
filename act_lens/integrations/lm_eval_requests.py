"""lm-evaluation-harness requests as token ids and decode settings (pure; no lm_eval import).

Tokenization is act_lens's (:func:`act_lens.evaluation.evaluate.score_prompts`): a context is tokenized by
the model's tokenizer with its special tokens (the BOS that act_lens models prepend), a
continuation on its own without special tokens. Two lm-eval conventions are kept: trailing
whitespace of a context moves to the front of its continuation, and an empty context becomes
the prefix token (BOS, else EOS).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from act_lens.errors import ConfigError

# What generate_until accepts; everything else changes greedy decoding or needs sampling.
GEN_KWARGS = ("until", "max_gen_toks", "max_new_tokens", "do_sample", "temperature")


@dataclass(frozen=True)
class GenerationRequest:
    """Decode settings of one ``generate_until`` request: stop strings and a token budget."""

    until: tuple[str, ...]
    max_gen_toks: int


@dataclass(frozen=True)
class LMConfig:
    """How ``ActLensLM`` batches, cuts and decodes (lm-eval's ``--model_args`` strings are
    accepted: ``batch_size="8"`` becomes 8).

    Attributes:
        batch_size: sequences per forward for the log-likelihood requests.
        decode_policy: ACT in ``generate_until``: ``"prompt"`` or ``"prompt+new"``.
        max_length: token window (None: the model's ``n_ctx``); longer inputs are cut from
            the left.
        max_gen_toks: generation budget when a request names none.
        max_batch_size: accepted because lm-eval's command line always passes it; there is no
            automatic batch size, so it has no effect.

    Raises:
        ConfigError: a size that is not a positive integer, ``max_length`` below 2, or an
            unknown decode policy.
    """

    # int | str: lm-eval's command line passes strings; __post_init__ makes them ints.
    batch_size: int | str = 8
    decode_policy: str = "prompt"
    max_length: int | str | None = None
    max_gen_toks: int | str = 256
    max_batch_size: int | str | None = None

    def __post_init__(self) -> None:
        if self.decode_policy not in ("prompt", "prompt+new"):
            raise ConfigError(
                f"decode_policy must be 'prompt' or 'prompt+new', got {self.decode_policy!r}"
            )
        hint = "; no automatic batch size: pass e.g. --batch_size 8"
        object.__setattr__(self, "batch_size", positive_int(self.batch_size, "batch_size", hint))
        object.__setattr__(self, "max_gen_toks", positive_int(self.max_gen_toks, "max_gen_toks"))
        if self.max_length is not None:
            length = positive_int(self.max_length, "max_length")
            if length < 2:
                raise ConfigError(
                    f"max_length must be >= 2 (context + continuation), got {self.max_length}"
                )
            object.__setattr__(self, "max_length", length)


def positive_int(value: Any, name: str, hint: str = "") -> int:
    """``value`` (an int or lm-eval's string form) as a positive int.

    Raises:
        ConfigError: anything else, naming ``name`` (and ``hint``).
    """
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}{hint}")
    return int(text)


def prefix_token_id(tokenizer: Any) -> int:
    """The token an empty context stands for: BOS, else EOS (as lm-eval's ``HFLM``)."""
    bos = tokenizer.bos_token_id
    return int(bos if bos is not None else tokenizer.eos_token_id)


def encode_request(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of one ``loglikelihood`` request ``(context, continuation)``.

    Args:
        tokenizer: the model's tokenizer (``model.tokenizer``).
        context: the conditioning text (may be empty).
        continuation: the scored text, word-boundary space included (``" Paris"``).

    Returns:
        ``(context_ids, continuation_ids)``; context ids start with the tokenizer's BOS.

    Raises:
        ConfigError: the continuation tokenizes to nothing.

    Example:
        >>> encode_request(model.tokenizer, "Answer:", " yes")      # doctest: +SKIP
        ([1, 21350, 42], [2987])
    """
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    ctx = list(tokenizer(context).input_ids) if context else []
    if not ctx:
        ctx = [prefix_token_id(tokenizer)]
    cont = list(tokenizer(continuation, add_special_tokens=False).input_ids)
    if not cont:
        raise ConfigError(
            f"continuation {continuation!r} tokenizes to nothing; lm-eval requests must score "
            "at least one token"
        )
    return ctx, cont


def fit_window(
    context: Sequence[int], continuation: Sequence[int], max_length: int
) -> tuple[list[int], list[int]]:
    """Cut the context from the left so that ``context + continuation`` has ``max_length`` tokens
    at most (lm-eval's truncation; the BOS goes first).

    Raises:
        ConfigError: the continuation alone leaves no room for one context token.
    """
    if len(continuation) >= max_length:
        raise ConfigError(
            f"a continuation of {len(continuation)} tokens does not fit the model's "
            f"{max_length}-token window with any context; shorten it or raise max_length"
        )
    room = max_length - len(continuation)
    return list(context)[-room:], list(continuation)


def parse_gen_kwargs(
    gen_kwargs: Mapping[str, Any] | None, default_max_gen_toks: int
) -> GenerationRequest:
    """Check a request's generation arguments: greedy decoding with ``until``/``max_gen_toks``.

    Args:
        gen_kwargs: the request's arguments (task ``generation_kwargs`` and ``--gen_kwargs``).
        default_max_gen_toks: budget when neither ``max_gen_toks`` nor ``max_new_tokens`` is set.

    Returns:
        A GenerationRequest.

    Raises:
        ConfigError: sampling (``do_sample=True``, ``temperature > 0``), any other argument, a
            malformed ``until`` or a budget below 1.

    Example:
        >>> parse_gen_kwargs({"until": "\\n", "do_sample": False}, 256)
        GenerationRequest(until=('\\n',), max_gen_toks=256)
    """
    kw = dict(gen_kwargs or {})
    if kw.get("do_sample"):
        raise ConfigError(
            "generate_until got do_sample=True: act_lens decodes greedily only (its own decode "
            "loop, with the ACT decode policy); set do_sample=False in the task's "
            "generation_kwargs or --gen_kwargs"
        )
    temperature = kw.get("temperature")
    if temperature is not None and float(temperature) > 0:
        raise ConfigError(
            f"generate_until got temperature={temperature}: act_lens decodes greedily only; "
            "use temperature=0 (or drop it) in the task's generation_kwargs or --gen_kwargs"
        )
    unknown = sorted(set(kw) - set(GEN_KWARGS))
    if unknown:
        raise ConfigError(
            f"generate_until got unsupported generation arguments {unknown}: act_lens decodes "
            f"greedily and accepts only {list(GEN_KWARGS)}; remove the others"
        )
    until = kw.get("until")
    if until is None:
        stops: tuple[str, ...] = ()
    elif isinstance(until, str):
        stops = (until,)
    elif isinstance(until, Sequence) and all(isinstance(s, str) for s in until):
        stops = tuple(until)
    else:
        raise ConfigError(f"until must be a string or a list of strings, got {until!r}")
    budget = kw.get("max_gen_toks", kw.get("max_new_tokens", default_max_gen_toks))
    if int(budget) < 1:
        raise ConfigError(f"max_gen_toks must be >= 1, got {budget}")
    return GenerationRequest(tuple(s for s in stops if s), int(budget))


def cut_at_stop(text: str, until: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop string (what lm-eval scores).

    Example:
        >>> cut_at_stop("Paris.\\nQuestion: and", ["\\n", "Question:"])
        'Paris.'
    """
    hits = [i for i in (text.find(s) for s in until if s) if i >= 0]
    return text[: min(hits)] if hits else text
