"""lm-evaluation-harness model class: run any lm-eval task with an act_lens intervention (ACT)
active.

``ActLensLM(model, intervention=ActConfig(head_set))`` answers lm-eval's three request types
with act_lens's own machinery, so padding-aware ACT works in batches:

* ``loglikelihood``: :func:`act_lens.evaluation.scoring.continuation_scores` (left-padded, length-sorted
  batches, one forward each), the same scores as ``act_lens.evaluate(..., scoring="full")``.
* ``loglikelihood_rolling``: lm-eval's own disjoint rolling windows, scored the same way.
* ``generate_until``: :func:`act_lens.generate` (greedy, one request at a time), with ACT's
  decode policy: ``"prompt"`` detects sinks on the prompt and calibrates that sink set in every
  generated row, ``"prompt+new"`` re-detects over all tokens each step.

Importing this module registers the class under the lm-eval model name ``act_lens``. lm-eval
0.4.13 has no plugin entry point for models, so for ``lm_eval --model act_lens`` act_lens also
installs ``act_lens_lm_eval.pth`` (see ``startup/_act_lens_lm_eval.py``): a hook that registers
the name lazily when, and only when, a process imports lm-eval's model registry.
"""

from collections.abc import Sequence
from typing import Any, cast

import torch
from tqdm.auto import tqdm

try:
    # lm-eval adds its built-in model names to an *empty* registry only (get_model), so they
    # must be in before act_lens registers its own, or `--model hf` would stop working.
    import lm_eval.models  # noqa: F401
    from lm_eval.api.model import LM
    from lm_eval.api.registry import register_model
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        'act_lens.integrations.lm_eval needs lm-evaluation-harness: pip install "act-lens[lm-eval]"'
    ) from err

from act_lens.core.settings import SinkSettings, settings_from
from act_lens.errors import ConfigError, config_from, renamed_keyword
from act_lens.evaluation.generate import Policy, generate, prompt_ids
from act_lens.evaluation.scoring import continuation_scores
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.interventions import as_intervention, intervention_for
from act_lens.hooks.spec import Intervention
from act_lens.integrations.lm_eval_requests import (
    LMConfig,
    cut_at_stop,
    encode_request,
    fit_window,
    parse_gen_kwargs,
    prefix_token_id,
)


@register_model("act_lens")
class ActLensLM(LM):
    """An lm-eval ``LM`` backed by a TransformerBridge, with an intervention on every forward.

    Args:
        model: a TransformerBridge, or a ``load_model`` spec (``"smollm2-135m"``, a ``.gguf``
            path, a checkpoint folder, ``"tiny-random"``): what ``--model_args model=...`` gives.
        intervention: anything ``act_lens.evaluate`` takes (``ActConfig(head_set)``, a
            ``HeadSet``, ``Compose``, a hook list...), or the path of a head-set JSON file
            (``--model_args intervention=head_set.json``), applied with its own method and the
            sink settings it was searched with. Checked against the model once.
        config: batching, the token window, the generation budget and ACT's decode policy
            (:class:`~act_lens.integrations.lm_eval_requests.LMConfig`: ``batch_size``,
            ``max_length``, ``max_gen_toks``, ``decode_policy``, ``max_batch_size``). Its
            fields are also taken as keywords, which is how lm-eval passes them
            (``--model_args decode_policy=prompt+new --batch_size 8``).
        settings: the ACT settings for a head set given as a path or a ``HeadSet`` (replacing
            its stored ones).
        beta: convenience for the command line (``beta=0.4``): changes a head set's beta.
        device: where to load a model given by spec (a CUDA device without CUDA falls back to
            the CPU, since lm-eval's CLI passes ``cuda:0`` by default); ignored for a model object.
        **options: ``LMConfig`` fields as keywords instead of ``config``.

    Deprecated for one release, still working: ``hooks=`` and ``head_set=`` (both now
    ``intervention=``), ``threshold=`` and ``rule=`` (now ``settings=SinkSettings(...)``).

    Raises:
        ConfigError: ``settings`` or ``beta`` without a head set, or with an intervention that
            carries its own settings, both ``settings`` and ``beta``, a batch size that is not
            a positive integer, an unknown decode policy, an unknown keyword, or an option
            given beside ``config``.

    Example:
        >>> from lm_eval import simple_evaluate                              # doctest: +SKIP
        >>> lm = ActLensLM(model, ActConfig(head_set), batch_size=8)
        >>> simple_evaluate(model=lm, tasks=["arc_easy"], limit=100)["results"]
    """

    def __init__(
        self,
        model: Any = "smollm2-135m",
        intervention: Any = None,
        *,
        config: LMConfig | None = None,
        settings: SinkSettings | None = None,
        beta: float | None = None,
        device: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        # Arguments first: a bad one fails before a model is loaded.
        self.config, old = config_from(
            LMConfig,
            config,
            options,
            where="ActLensLM",
            deprecated=("hooks", "head_set", "threshold", "rule"),
        )
        for old_name in ("hooks", "head_set"):
            intervention = renamed_keyword("ActLensLM", "intervention", intervention, old, old_name)
        loose: dict[str, Any] = {k: old.pop(k) for k in ("threshold", "rule") if k in old}
        if loose:  # as earlier releases did: these and beta over the defaults
            settings = settings_from(settings, beta=beta, loose=loose, where="ActLensLM")
            beta = None
        _check_settings(intervention, settings, beta)  # before a model is loaded
        self.bridge = _load(model, device) if isinstance(model, str) else model
        self.intervention = _intervention(self.bridge, intervention, settings, beta)
        self._max_length = int(self.config.max_length or self.bridge.cfg.n_ctx)
        self._device = self.bridge.cfg.device

    @property
    def tokenizer(self) -> Any:
        return self.bridge.tokenizer

    @property
    def eot_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def max_gen_toks(self) -> int:
        return int(self.config.max_gen_toks)

    @property
    def batch_size(self) -> int:
        return int(self.config.batch_size)

    @property
    def decode_policy(self) -> Policy:
        return cast(Policy, self.config.decode_policy)

    def loglikelihood(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list:
        """``(log p(continuation | context), is_greedy)`` per request ``(context, continuation)``."""
        pairs = [encode_request(self.tokenizer, *req.args) for req in requests]
        pairs = [fit_window(c, k, self.max_length) for c, k in pairs]
        scores = self._score(pairs, "loglikelihood", disable_tqdm)
        out = [(float(lp), bool(g)) for lp, g in zip(*scores, strict=True)]
        for req, res in zip(requests, out, strict=True):
            self.cache_hook.add_partial("loglikelihood", req.args, res)
        return out

    def loglikelihood_rolling(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list:
        """Log-likelihood of each whole text (after a BOS), over lm-eval's disjoint windows.

        Windows hold ``max_length - 1`` predicted positions: act_lens also feeds the last
        token, so each forward is ``max_length`` tokens at most.
        """
        owner, pairs = [], []
        for i, req in enumerate(requests):
            (text,) = req.args
            ids = list(self.tokenizer(text, add_special_tokens=False).input_ids)
            windows = get_rolling_token_windows(
                token_list=ids,
                prefix_token=prefix_token_id(self.tokenizer),
                max_seq_len=self.max_length - 1,
                context_len=1,
            )
            for window in windows:
                pairs.append(make_disjoint_window(window))
                owner.append(i)
        totals = [0.0] * len(requests)
        if pairs:
            logprobs, _ = self._score(pairs, "loglikelihood_rolling", disable_tqdm)
            for i, lp in zip(owner, logprobs.tolist(), strict=True):
                totals[i] += lp
        for req, total in zip(requests, totals, strict=True):
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, total)
        return totals

    def generate_until(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[str]:
        """Greedy continuation of each context, cut before the first ``until`` string.

        Raises:
            ConfigError: sampling arguments (``do_sample=True``, ``temperature > 0``) or any
                argument other than ``until``/``max_gen_toks``, or a prompt that leaves no room
                for ``max_gen_toks`` in ``max_length``.
        """
        out = []
        for req in tqdm(requests, desc="act_lens generate_until", disable=disable_tqdm):
            context, gen_kwargs = req.args
            settings = parse_gen_kwargs(gen_kwargs, self.max_gen_toks)
            n_prompt = len(prompt_ids(self.bridge, context))
            if n_prompt + settings.max_gen_toks > self.max_length:
                raise ConfigError(
                    f"a {n_prompt}-token prompt plus max_gen_toks={settings.max_gen_toks} exceeds "
                    f"max_length={self.max_length}; lower max_gen_toks or num_fewshot"
                )
            # act_lens.generate's decode-step policy: ACT's sinks from the prompt rows
            gen = generate(
                self.bridge,
                context,
                self.intervention,
                max_new_tokens=settings.max_gen_toks,
                policy=self.decode_policy,
                stop=settings.until,
            )
            text = cut_at_stop(gen.text, settings.until)
            self.cache_hook.add_partial("generate_until", req.args, text)
            out.append(text)
        return out

    def get_model_info(self) -> dict[str, Any]:
        """What lm-eval records in ``results["config"]``: the model and the intervention."""
        return {
            "act_lens_model": str(getattr(self.bridge.cfg, "model_name", "model")),
            "act_lens_intervention": self.intervention.to_dict(),
            "act_lens_decode_policy": self.decode_policy,
        }

    def _score(self, pairs: list, what: str, disable_tqdm: bool) -> tuple[torch.Tensor, ...]:
        bar = tqdm(total=len(pairs), desc=f"act_lens {what}", disable=disable_tqdm, leave=False)
        try:
            contexts, continuations = zip(*pairs, strict=True) if pairs else ((), ())
            return tuple(
                continuation_scores(
                    self.bridge,
                    contexts,
                    continuations,
                    hooks=self.intervention,
                    batch_size=self.batch_size,
                    progress=bar,
                )
            )
        finally:
            bar.close()


def _load(spec: str, device: str | None) -> Any:
    from act_lens.models.loading import load_model

    if device is None or (device.startswith("cuda") and not torch.cuda.is_available()):
        device = "cpu"
    return load_model(spec, device=device)


def _check_settings(intervention: Any, settings: SinkSettings | None, beta: float | None) -> None:
    given = [name for name, v in (("settings", settings), ("beta", beta)) if v is not None]
    if not given:
        return
    if intervention is None:
        raise ConfigError(
            f"{'/'.join(given)} set without a head set: pass intervention=PATH (a head-set JSON) "
            "or intervention=ActConfig(head_set, settings)"
        )
    if not isinstance(intervention, str | HeadSet):
        raise ConfigError(
            f"{'/'.join(given)} apply to a head set (a path or a HeadSet), but the intervention is "
            f"a {type(intervention).__name__}, which carries its own settings: set them there"
        )


def _intervention(
    model: Any, intervention: Any, settings: SinkSettings | None, beta: float | None
) -> Intervention:
    if isinstance(intervention, str):  # lm-eval's command line: a head-set file
        intervention = HeadSet.load(intervention, model=model)
    if isinstance(intervention, HeadSet):
        intervention = intervention_for(intervention, settings, beta=beta)
    return as_intervention(intervention).for_model(model)  # checked, windows filled in
