"""HeadSet: which (layer, head) pairs to calibrate, with provenance, saved as JSON."""

import datetime as _dt
import hashlib
import json
import operator
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from act_lens.errors import HeadSetError
from act_lens.io import atomic_write_text

HeadPairs = Mapping[int, Iterable[int]] | Iterable[tuple[int, int]]
FORMAT = "act_lens.HeadSet/1"
BUNDLE_FORMAT = "act_lens.HeadSets/1"
# What a head set's heads are calibrated with (``intervention_for`` in
# ``act_lens.hooks.interventions`` picks the hooks).
METHODS = ("act", "zerotuning")


def model_fingerprint(model: Any) -> str:
    """A cheap, stable fingerprint of a model's weights (sha256 over names, shapes, leading values)."""
    import torch  # here, not at import: reading a head set file must not need torch

    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        digest.update(name.encode())
        digest.update(str(tuple(param.shape)).encode())
        head = param.detach().reshape(-1)[:4096].to(torch.float32).cpu().contiguous()
        digest.update(head.numpy().tobytes())
    return digest.hexdigest()[:32]


def model_identity(model: Any) -> dict[str, Any]:
    """Name, shape and weight fingerprint recorded in a HeadSet's provenance."""
    return {
        "model_name": str(getattr(model.cfg, "model_name", "unknown")),
        "n_layers": int(model.cfg.n_layers),
        "n_heads": int(model.cfg.n_heads),
        "weights_sha256": model_fingerprint(model),
    }


@dataclass(frozen=True, eq=True)
class HeadSet:
    """A set of attention heads, ``layer -> heads``, with provenance.

    Example:
        >>> hs = HeadSet({3: [1, 4], 5: [0]})
        >>> len(hs), hs.layers, (3, 4) in hs
        (3, (3, 5), True)
    """

    heads: Mapping[int, tuple[int, ...]]
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False)
    method: str = "act"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        heads: HeadPairs = (),
        provenance: Mapping[str, Any] | None = None,
        *,
        method: str = "act",
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if method not in METHODS:
            raise HeadSetError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
        object.__setattr__(self, "heads", _normalise(heads))
        object.__setattr__(self, "provenance", dict(provenance or {}))
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "params", dict(params or {}))

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(sorted(self.heads))

    def __len__(self) -> int:
        return sum(len(h) for h in self.heads.values())

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for layer in self.layers:
            for head in self.heads[layer]:
                yield layer, head

    def __contains__(self, item: object) -> bool:
        if not (isinstance(item, tuple) and len(item) == 2):
            return False
        return item[1] in self.heads.get(item[0], ())

    def with_provenance(self, **info: Any) -> "HeadSet":
        return HeadSet(
            self.heads, {**self.provenance, **info}, method=self.method, params=self.params
        )

    def summary(self) -> str:
        parts = [f"L{layer}:{list(self.heads[layer])}" for layer in self.layers]
        what = "" if self.method == "act" else f"{self.method} {dict(self.params)}, "
        reason = self.provenance.get("decision", {}).get("reason")
        return (
            what
            + f"{len(self)} heads in {len(self.heads)} layers"
            + (": " + " ".join(parts) if parts else "")
            + (f"\n  decision: {reason}" if reason else "")
        )

    def validate(
        self, model: Any, *, allow_model_mismatch: bool = False, fix: str | None = None
    ) -> None:
        """Check that every head exists in ``model`` and that the set was made for it.

        ``fix``: what the messages tell the user to do (default: the Python arguments).

        Raises:
            HeadSetError: a layer or head out of range, or (unless allowed) a different model.
        """
        n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
        for layer, head in self:
            if not (0 <= layer < n_layers and 0 <= head < n_heads):
                raise HeadSetError(
                    f"head ({layer}, {head}) is out of range for a model with {n_layers} layers "
                    f"and {n_heads} heads; was this head set made for another model?"
                    + (f" {fix}" if fix else "")
                )
        recorded = self.provenance.get("model")
        if recorded and not allow_model_mismatch:
            here = model_identity(model)
            if recorded.get("weights_sha256") not in (None, here["weights_sha256"]):
                raise HeadSetError(
                    f"head set was made for model {recorded.get('model_name')!r} (weights "
                    f"{recorded.get('weights_sha256')}), not for this one ({here['model_name']!r}, "
                    f"weights {here['weights_sha256']}); "
                    + (
                        fix
                        or "search heads for this model, or pass allow_model_mismatch=True "
                        "to apply it anyway"
                    )
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "method": self.method,
            "params": dict(self.params),
            "heads": {str(layer): list(self.heads[layer]) for layer in self.layers},
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "head set") -> "HeadSet":
        # ``data`` is typed Any: it is whatever JSON a file held, and is checked right here.
        if isinstance(data, Mapping) and data.get("format") == BUNDLE_FORMAT:
            raise HeadSetError(
                f"{source} holds one head set per task ({', '.join(data.get('per_task', {}))}); "
                "read it with act_lens.hooks.headset.load_head_sets, or pass one task's set"
            )
        if not isinstance(data, Mapping) or not isinstance(data.get("heads"), Mapping):
            raise HeadSetError(
                f"{source}: expected a JSON object with a 'heads' object mapping layer -> [heads]"
            )
        try:
            heads = {int(layer): _head_list(hs) for layer, hs in data["heads"].items()}
        except (TypeError, ValueError) as err:
            raise HeadSetError(
                f"{source}: 'heads' must map layer numbers to lists of head numbers ({err})"
            ) from err
        params = data.get("params") or {}
        if not isinstance(params, Mapping):
            raise HeadSetError(f"{source}: 'params' must be an object, got {params!r}")
        return cls(
            heads,
            data.get("provenance") or {},
            method=str(data.get("method", "act")),  # files before 0.2 are all ACT sets
            params=params,
        )

    def save(self, path: "str | os.PathLike[str]") -> Path:
        """Write JSON atomically (a crash never leaves a half file)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def load(
        cls,
        path: "str | os.PathLike[str]",
        *,
        model: Any = None,
        allow_model_mismatch: bool = False,
    ) -> "HeadSet":
        """Read a HeadSet JSON; with ``model``, validate it against that model.

        Raises:
            HeadSetError: missing file, bad JSON, bad structure, or a mismatch with ``model``.
        """
        path = Path(path)
        head_set = cls.from_dict(_read_json(path), source=str(path))
        if model is not None:
            head_set.validate(model, allow_model_mismatch=allow_model_mismatch)
        return head_set


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise HeadSetError(f"head set file {path} does not exist") from err
    except IsADirectoryError as err:
        raise HeadSetError(f"head set path {path} is a folder; pass its head_set.json") from err
    except OSError as err:
        raise HeadSetError(f"head set file {path} cannot be read ({err.strerror})") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise HeadSetError(f"head set file {path} is not valid JSON ({err})") from err


def save_head_sets(path: "str | os.PathLike[str]", per_task: Mapping[str, HeadSet]) -> Path:
    """Write one head set per task into one JSON file (``act-lens search --per-task``)."""
    data = {"format": BUNDLE_FORMAT, "per_task": {t: hs.to_dict() for t, hs in per_task.items()}}
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True))


def load_head_sets(path: "str | os.PathLike[str]") -> dict[str | None, HeadSet]:
    """Read a head-set file: ``{task: HeadSet}`` for a per-task file, ``{None: HeadSet}`` for
    a single set (which then applies to every task).

    Raises:
        HeadSetError: missing or malformed file.

    Example:
        >>> sets = load_head_sets("runs/search/head_sets.json")   # doctest: +SKIP
        >>> sets["sst2"].summary()                                # doctest: +SKIP
    """
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, Mapping) and data.get("format") == BUNDLE_FORMAT:
        per_task = data.get("per_task")
        if not isinstance(per_task, Mapping) or not per_task:
            raise HeadSetError(f"{path}: 'per_task' must map task names to head sets")
        return {str(t): HeadSet.from_dict(d, source=f"{path} [{t}]") for t, d in per_task.items()}
    return {None: HeadSet.from_dict(data, source=str(path))}


def head_set_for(sets: Mapping[str | None, HeadSet], task: str) -> HeadSet:
    """The set that applies to ``task``: its own, or the single shared one.

    Raises:
        HeadSetError: a per-task file without this task.
    """
    if task in sets:
        return sets[task]
    if None in sets:
        return sets[None]
    raise HeadSetError(
        f"the per-task head-set file has no set for task {task!r} (it has "
        f"{', '.join(str(t) for t in sets)}); search that task too, or pass a single head set"
    )


# The sink settings a search records in a head set's provenance (read by ``intervention_for``).
STORED_SETTINGS = ("beta", "threshold", "rule", "redistribute")


def stored_settings(head_set: HeadSet) -> dict[str, Any]:
    """The sink settings recorded in a head set's provenance (empty for a hand-made set).

    Example:
        >>> stored_settings(HeadSet({1: [0]}, {"beta": 0.2, "tasks": ["sst2"]}))
        {'beta': 0.2}
    """
    prov = head_set.provenance
    return {k: prov[k] for k in STORED_SETTINGS if k in prov}


def provenance_now() -> dict[str, Any]:
    from act_lens import __version__

    return {
        "act_lens_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _normalise(heads: HeadPairs) -> dict[int, tuple[int, ...]]:
    pairs: list[tuple[int, int]] = []
    if isinstance(heads, Mapping):
        for layer, hs in heads.items():
            if isinstance(hs, int):
                raise HeadSetError(f"layer {layer}: heads must be a list, got the int {hs}")
            pairs.extend((layer, h) for h in hs)
    else:
        pairs = list(heads)  # type: ignore[arg-type]
    out: dict[int, set[int]] = {}
    for pair in pairs:
        try:
            # operator.index, not int(): a float such as 1.5 must be refused, not truncated.
            layer, head = (operator.index(x) for x in pair)
        except (TypeError, ValueError) as err:
            raise HeadSetError(f"expected (layer, head) pairs of ints, got {pair!r}") from err
        if layer < 0 or head < 0:
            raise HeadSetError(f"layer and head must be >= 0, got ({layer}, {head})")
        out.setdefault(layer, set()).add(head)
    return {layer: tuple(sorted(hs)) for layer, hs in sorted(out.items()) if hs}


def _head_list(heads: Any) -> list[int]:
    """A JSON list of head numbers; refuse what ``int()`` would silently reinterpret."""
    # int() would truncate 1.5, read true as 1 and iterate the string "12" as heads 1 and 2.
    if not isinstance(heads, list) or any(
        isinstance(h, bool) or not isinstance(h, int) for h in heads
    ):
        raise TypeError(f"expected a list of integers, got {heads!r}")
    return heads
