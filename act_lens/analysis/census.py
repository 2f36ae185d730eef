"""Sink census: where hidden sinks occur (layer x head), how much attention they take, and
what tokens they sit on, over a set of prompts."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor
from tqdm.auto import tqdm

from act_lens.core.settings import SinkSettings, settings_from
from act_lens.core.token_classes import TOKEN_CLASSES, classify_token
from act_lens.errors import ConfigError, DataError, config_from
from act_lens.evaluation.batching import encode, make_batches, pad_id_of
from act_lens.hooks.arch import model_settings
from act_lens.hooks.interventions import as_intervention
from act_lens.hooks.recorder import SinkRecorder
from act_lens.io import JsonFile


@dataclass(frozen=True)
class SinkCensus(JsonFile):
    """Per layer x head sink statistics over a prompt set (see ``sink_census``).

    Attributes:
        hidden_sink_freq: [layer, head] fraction of prompts where the head has a hidden sink.
        first_mass: [layer, head] mean attention on the first real token.
        hidden_mass: [layer, head] mean attention on hidden sinks.
        entropy: [layer, head] mean attention entropy (nats).
        class_counts: [layer, head, class] number of sinks per token class (``classes``).
        top_tokens: the most frequent hidden-sink tokens, ``(text, count)``.
        example: one prompt's tokens, head-mean patterns per layer and per-head sink masks.
        head_top_tokens: ``[layer][head]`` the head's most frequent hidden-sink tokens,
            ``(text, count)`` (empty in censuses saved before it was recorded).
    """

    model: str
    n_prompts: int
    layers: tuple[int, ...]
    threshold: float
    rule: str
    hidden_sink_freq: Tensor
    first_mass: Tensor
    hidden_mass: Tensor
    entropy: Tensor
    class_counts: Tensor
    classes: tuple[str, ...] = TOKEN_CLASSES
    top_tokens: tuple[tuple[str, int], ...] = ()
    example: dict[str, Any] = field(default_factory=dict)
    head_top_tokens: tuple[tuple[tuple[tuple[str, int], ...], ...], ...] = ()
    KIND: ClassVar[str] = "sink census"

    def top(self, k: int = 10) -> list[dict[str, Any]]:
        """The ``k`` heads with the most frequent hidden sinks (ties broken by hidden mass)."""
        n_heads = self.hidden_sink_freq.shape[1]
        key = self.hidden_sink_freq * 10 + self.hidden_mass
        order = torch.argsort(key.flatten(), descending=True)[:k]
        return [
            {
                "layer": self.layers[int(i) // n_heads],
                "head": int(i) % n_heads,
                "hidden_sink_freq": float(self.hidden_sink_freq.flatten()[i]),
                "hidden_mass": float(self.hidden_mass.flatten()[i]),
                "first_mass": float(self.first_mass.flatten()[i]),
            }
            for i in order
        ]

    def class_totals(self, hidden_only: bool = True) -> dict[str, int]:
        totals = self.class_counts.sum(dim=(0, 1))
        return {
            c: int(n)
            for c, n in zip(self.classes, totals, strict=True)
            if not (hidden_only and c == "first")
        }

    def n_heads_with_hidden_sinks(self, min_freq: float = 0.5) -> int:
        return int((self.hidden_sink_freq >= min_freq).sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "act_lens.SinkCensus/1",
            "model": self.model,
            "n_prompts": self.n_prompts,
            "layers": list(self.layers),
            "threshold": self.threshold,
            "rule": self.rule,
            "hidden_sink_freq": self.hidden_sink_freq.tolist(),
            "first_mass": self.first_mass.tolist(),
            "hidden_mass": self.hidden_mass.tolist(),
            "entropy": self.entropy.tolist(),
            "class_counts": self.class_counts.tolist(),
            "classes": list(self.classes),
            "top_tokens": [list(t) for t in self.top_tokens],
            "example": self.example,
            "head_top_tokens": [
                [[list(tc) for tc in head] for head in row] for row in self.head_top_tokens
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SinkCensus":
        try:
            return cls(
                model=d["model"],
                n_prompts=int(d["n_prompts"]),
                layers=tuple(d["layers"]),
                threshold=float(d["threshold"]),
                rule=d["rule"],
                hidden_sink_freq=torch.tensor(d["hidden_sink_freq"]),
                first_mass=torch.tensor(d["first_mass"]),
                hidden_mass=torch.tensor(d["hidden_mass"]),
                entropy=torch.tensor(d["entropy"]),
                class_counts=torch.tensor(d["class_counts"], dtype=torch.long),
                classes=tuple(d["classes"]),
                top_tokens=tuple((str(t), int(n)) for t, n in d.get("top_tokens", [])),
                example=d.get("example", {}),
                head_top_tokens=tuple(
                    tuple(tuple((str(t), int(n)) for t, n in head) for head in row)
                    for row in d.get("head_top_tokens", [])
                ),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"not a SinkCensus dictionary ({type(err).__name__}: {err})") from err


@dataclass(frozen=True)
class CensusConfig:
    """How a sink census runs over its prompts.

    Attributes:
        batch_size: prompts per forward (left-padded, sorted by length).
        example_index: prompt whose head-averaged maps are kept for figures (None: none).
        add_special_tokens: let the tokenizer add its BOS.
        progress: show a progress bar.
    """

    batch_size: int = 8
    example_index: int | None = 0
    add_special_tokens: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")


def sink_census(
    model: Any,
    prompts: Sequence[str],
    intervention: Any = None,
    *,
    layers: Sequence[int] | None = None,
    settings: SinkSettings | None = None,
    config: CensusConfig | None = None,
    **options: Any,
) -> SinkCensus:
    """Run the model over ``prompts`` and count sinks per layer x head.

    Args:
        model: a TransformerBridge.
        prompts: prompt texts (tokenized with the model's tokenizer).
        intervention: active while recording (anything ``as_intervention`` takes): the census
            then counts the sinks of the patterns the intervention left, e.g. after ACT.
        layers: layers to record (default: all).
        settings: the sink rule (``threshold``, ``rule``; default: ``SinkSettings()``); the
            model's sliding windows are filled in when ``settings.windows`` is None.
            ``threshold=`` and ``rule=`` of earlier releases still work for one release, with
            a DeprecationWarning.
        config: batch size, the example prompt kept for figures, BOS, progress bar
            (:class:`CensusConfig`; default ``CensusConfig()``).
        **options: ``CensusConfig`` fields as keywords instead of ``config``
            (``sink_census(model, prompts, batch_size=16)``).

    Returns:
        A SinkCensus.

    Raises:
        ConfigError: no prompts, layers the model lacks, a keyword beside ``settings`` or
            ``config``, or an unknown keyword.

    Example:
        >>> census = sink_census(model, ["Sentence: fine.\\nSentiment:"])   # doctest: +SKIP
        >>> census.top(3)                                                     # doctest: +SKIP
    """
    cfg, loose = config_from(
        CensusConfig, config, options, where="sink_census", deprecated=("threshold", "rule")
    )
    if not prompts:
        raise ConfigError("sink_census needs at least one prompt")
    layers = _layers(model, layers)
    # Sliding-window layers score each key over the queries that can see it (act_lens.hooks.arch).
    settings = model_settings(model, settings_from(settings, loose=loose, where="sink_census"))
    applied = as_intervention(intervention).for_model(model)
    tok = model.tokenizer
    ids = encode(tok, list(prompts), add_special_tokens=cfg.add_special_tokens)
    tally = _Tally(tok, layers, int(model.cfg.n_heads))
    example: dict[str, Any] = {}
    example_index = cfg.example_index
    keep = {layer: None for layer in layers} if example_index is not None else {}
    bar = tqdm(total=len(prompts), desc="sink census", disable=not cfg.progress, leave=False)
    device = model.cfg.device
    for batch in make_batches(ids, cfg.batch_size, pad_id_of(tok)):
        want_example = example_index is not None and example_index in batch.index
        rec = SinkRecorder(layers, settings, keep_patterns=keep if want_example else {})
        mask = batch.attention_mask.to(device)
        with torch.inference_mode():
            # the recorder goes last: it sees the patterns the intervention left
            model.run_with_hooks(
                batch.tokens.to(device),
                attention_mask=mask,
                fwd_hooks=[*applied.hooks(mask), *rec.hooks(mask)],
            )
        tally.add(rec, batch, ids)
        if want_example and example_index is not None:
            example = _example(tok, rec, batch, ids, layers, example_index)
        bar.update(len(batch.index))
    bar.close()
    return tally.census(
        str(getattr(model.cfg, "model_name", "model")), len(prompts), settings, example
    )


def _layers(model: Any, layers: Sequence[int] | None) -> tuple[int, ...]:
    """The layers to record: ``layers`` (None: all), each a layer of ``model``."""
    n_layers = int(model.cfg.n_layers)
    layers = tuple(range(n_layers)) if layers is None else tuple(layers)
    outside = [la for la in layers if not 0 <= la < n_layers]
    if outside or not layers:
        raise ConfigError(
            f"sink_census: layers {outside or '[]'} are not layers of this model, which has "
            f"{n_layers} (0..{n_layers - 1}); pass layers in that range, or None for all"
        )
    return layers


class _Tally:
    """The census's running sums over batches, per recorded layer x head."""

    def __init__(self, tok: Any, layers: tuple[int, ...], n_heads: int) -> None:
        self.tok, self.layers, self.n_heads = tok, layers, n_heads
        self.specials = set(getattr(tok, "all_special_ids", []) or [])
        self.cache: dict[int, tuple[str, str]] = {}  # token id -> (decoded text, class)
        self.classes = {c: i for i, c in enumerate(TOKEN_CLASSES)}
        shape = (len(layers), n_heads)
        self.has_hidden, self.first_mass = torch.zeros(shape), torch.zeros(shape)
        self.hidden_mass, self.entropy = torch.zeros(shape), torch.zeros(shape)
        self.counts = torch.zeros(*shape, len(TOKEN_CLASSES), dtype=torch.long)
        self.top: Counter[str] = Counter()
        self.per_head: dict[tuple[int, int], Counter[str]] = {}

    def add(self, rec: SinkRecorder, batch: Any, ids: Sequence[Sequence[int]]) -> None:
        for li, layer in enumerate(self.layers):
            r = rec.records[layer][0]
            self.first_mass[li] += r.first_mass.sum(0)
            self.hidden_mass[li] += r.hidden_mass.sum(0)
            self.entropy[li] += r.entropy.sum(0)
            for row, orig in enumerate(batch.index):
                offset = batch.tokens.shape[1] - len(ids[orig])
                sinks = r.sinks[row, :, offset:]  # [head, real positions]
                hidden = sinks.clone()
                hidden[:, 0] = False  # the first real token is the initial sink, not a hidden one
                self.has_hidden[li] += hidden.any(-1).float()
                for head, pos in sinks.nonzero().tolist():
                    self._count(li, head, pos, ids[orig][pos])

    def _count(self, li: int, head: int, pos: int, token_id: int) -> None:
        if pos == 0:
            self.counts[li, head, self.classes["first"]] += 1
            return
        text, cls = _describe_token(self.tok, token_id, self.specials, self.cache)
        self.counts[li, head, self.classes[cls]] += 1
        self.top[text] += 1
        self.per_head.setdefault((li, head), Counter())[text] += 1

    def census(
        self, model: str, n_prompts: int, settings: SinkSettings, example: dict[str, Any]
    ) -> SinkCensus:
        n = float(n_prompts)
        return SinkCensus(
            model=model,
            n_prompts=n_prompts,
            layers=self.layers,
            threshold=settings.threshold,
            rule=settings.rule,
            hidden_sink_freq=self.has_hidden / n,
            first_mass=self.first_mass / n,
            hidden_mass=self.hidden_mass / n,
            entropy=self.entropy / n,
            class_counts=self.counts,
            top_tokens=tuple(self.top.most_common(30)),
            example=example,
            head_top_tokens=tuple(
                tuple(
                    tuple(self.per_head.get((li, h), Counter()).most_common(3))
                    for h in range(self.n_heads)
                )
                for li in range(len(self.layers))
            ),
        )


def _example(
    tok: Any,
    rec: SinkRecorder,
    batch: Any,
    ids: Sequence[Sequence[int]],
    layers: tuple[int, ...],
    index: int,
) -> dict[str, Any]:
    """One prompt's tokens, head-mean patterns per layer and per-head sinks and scores."""
    row = batch.index.index(index)
    offset = batch.tokens.shape[1] - len(ids[index])
    records = [rec.records[layer][0] for layer in layers]
    assert all(r.pattern is not None for r in records), "kept layers record full patterns"
    return {
        "prompt_index": index,
        "tokens": [tok.decode([t]) for t in ids[index]],
        "head_mean_patterns": [
            r.pattern[row, :, offset:, offset:].mean(0).tolist()  # type: ignore[index]
            for r in records
        ],
        "sinks": [r.sinks[row, :, offset:].int().tolist() for r in records],
        "scores": [r.scores[row, :, offset:].tolist() for r in records],
    }


def _describe_token(
    tok: Any, token_id: int, specials: set[int], cache: dict[int, tuple[str, str]]
) -> tuple[str, str]:
    """Decoded text and token class of a hidden-sink token, decoded once per token id."""
    if token_id not in cache:
        text = tok.decode([token_id])
        cache[token_id] = (text, classify_token(text, is_special=token_id in specials))
    return cache[token_id]
