"""Unit tests for act_lens.hooks.headset: construction, JSON round trip, validation against a model."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from act_lens.errors import HeadSetError
from act_lens.hooks.headset import HeadSet, model_fingerprint, model_identity


def stand_in_model(n_layers: int = 4, n_heads: int = 2, scale: float = 1.0) -> SimpleNamespace:
    params = [
        ("blocks.0.attn.W_Q", torch.arange(6.0).reshape(2, 3) * scale),
        ("embed.W_E", torch.ones(3)),
    ]
    return SimpleNamespace(
        cfg=SimpleNamespace(n_layers=n_layers, n_heads=n_heads, model_name="x"),
        named_parameters=lambda: list(params),
    )


# ---------------------------------------------------------------- construction


def test_from_dict_is_normalised() -> None:
    hs = HeadSet({3: [4, 1, 1], 0: (2,), 5: []})
    assert hs.heads == {0: (2,), 3: (1, 4)}  # sorted, deduplicated, empty layers dropped
    assert hs.layers == (0, 3)
    assert len(hs) == 3
    assert list(hs) == [(0, 2), (3, 1), (3, 4)]


def test_from_pairs_is_normalised() -> None:
    hs = HeadSet([(3, 4), (0, 2), (3, 1), (3, 4)])
    assert hs == HeadSet({0: [2], 3: [1, 4]})
    assert list(hs) == [(0, 2), (3, 1), (3, 4)]
    assert HeadSet(iter([(1, 0), (1, 0)])).heads == {1: (0,)}


def test_membership() -> None:
    hs = HeadSet({3: [1, 4]})
    assert (3, 1) in hs and (3, 4) in hs
    assert (3, 2) not in hs and (4, 1) not in hs and (1, 3) not in hs
    assert 3 not in hs and (3,) not in hs and "3,1" not in hs and (3, 1, 0) not in hs


def test_empty_head_set() -> None:
    hs = HeadSet()
    assert len(hs) == 0 and list(hs) == [] and hs.layers == ()
    assert hs.summary() == "0 heads in 0 layers"


def test_summary() -> None:
    assert HeadSet({5: [0], 3: [4, 1]}).summary() == "3 heads in 2 layers: L3:[1, 4] L5:[0]"


def test_equality_ignores_provenance_and_with_provenance_merges() -> None:
    a = HeadSet({1: [0]}, {"search": "sst2"})
    b = a.with_provenance(margin=0.01)
    assert a == b and a == HeadSet({1: [0]})
    assert b.provenance == {"search": "sst2", "margin": 0.01}
    assert a.provenance == {"search": "sst2"}
    assert HeadSet({1: [0]}) != HeadSet({1: [1]})


@pytest.mark.parametrize(
    ("heads", "match"), [({-1: [0]}, ">= 0"), ({1: [-2]}, ">= 0"), ([(1, -1)], ">= 0")]
)
def test_negative_numbers_raise(heads: Any, match: str) -> None:
    with pytest.raises(HeadSetError, match=match):
        HeadSet(heads)


_UNCHECKED = """
import json, sys
import numpy as np
import torch
from act_lens.errors import HeadSetError
from act_lens.hooks.headset import HeadSet

out = {}
for name, heads in [
    ("int_not_list", {1: 2}),
    ("str_head", [(1, "a")]),
    ("float_head", [(1, 1.5)]),
    ("float_layer", {1.5: [0]}),
    ("triple", [(1, 2, 3)]),
    ("bare_int", [1]),
]:
    try:
        HeadSet(heads)
        out[name] = "accepted"
    except HeadSetError as err:
        out[name] = "HeadSetError: " + str(err)
    except Exception as err:
        out[name] = type(err).__name__
out["integer_like"] = list(HeadSet([(np.int64(2), torch.tensor(1))]))
print(json.dumps(out))
"""


def test_bad_types_raise_head_set_error_as_users_see_them() -> None:
    # Under pytest the runtime checker refuses annotation-violating arguments with a
    # TypeError first; a plain interpreter shows the package's own errors.
    done = subprocess.run(
        [sys.executable, "-c", _UNCHECKED], capture_output=True, text=True, timeout=60, check=True
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out.pop("integer_like") == [[2, 1]]
    assert "must be a list" in out.pop("int_not_list")
    for name, result in out.items():
        assert result.startswith("HeadSetError: expected (layer, head) pairs of ints"), (
            name,
            result,
        )
    with pytest.raises((HeadSetError, TypeError)):
        HeadSet({1: 2})  # type: ignore[dict-item]
    with pytest.raises((HeadSetError, TypeError)):
        HeadSet([(1, 1.5)])  # type: ignore[list-item]


# ---------------------------------------------------------------- JSON


def test_json_round_trip(tmp_path: Path) -> None:
    model = stand_in_model()
    hs = HeadSet({3: [1, 0], 1: [1]}, {"model": model_identity(model), "rule": "gain > 0.01"})
    path = hs.save(tmp_path / "sub" / "heads.json")
    assert path == tmp_path / "sub" / "heads.json"
    data = json.loads(path.read_text())
    assert data["heads"] == {"1": [1], "3": [0, 1]}
    assert data["format"] == "act_lens.HeadSet/1"
    again = HeadSet.load(path)
    assert again == hs
    assert again.provenance == hs.provenance
    assert all(isinstance(h, int) for _, h in again)
    assert HeadSet.load(str(path), model=model) == hs  # made for this model: validates
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left


def test_to_dict_from_dict_round_trip() -> None:
    hs = HeadSet({2: [1]}, {"note": "x"})
    again = HeadSet.from_dict(json.loads(json.dumps(hs.to_dict())))
    assert again == hs and again.provenance == {"note": "x"}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[]", "'heads'"),
        ('"heads"', "'heads'"),
        ('{"provenance": {}}', "'heads'"),
        ('{"heads": [[1, 2]]}', "'heads'"),
        ('{"heads": {"one": [1]}}', "layer numbers"),
        ('{"heads": {"1": ["a"]}}', "list of integers"),
        ('{"heads": {"1": ["2"]}}', "list of integers"),
        ('{"heads": {"1": [1.5]}}', "list of integers"),
        ('{"heads": {"1": [true]}}', "list of integers"),
        ('{"heads": {"1": [null]}}', "list of integers"),
        ('{"heads": {"1": "12"}}', "list of integers"),
        ('{"heads": {"1": 2}}', "list of integers"),
        ('{"heads": {"1": {"0": 1}}}', "list of integers"),
        ('{"heads": {"-1": [0]}}', ">= 0"),
        ('{"heads": {"1": [-3]}}', ">= 0"),
    ],
)
def test_invalid_files_raise_head_set_error(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(HeadSetError, match=match) as info:
        HeadSet.load(path)
    if match != ">= 0":
        assert str(path) in str(info.value)  # the message names the file


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HeadSetError, match="does not exist"):
        HeadSet.load(tmp_path / "nope.json")


# ---------------------------------------------------------------- validation


def test_validate_in_range_passes() -> None:
    HeadSet({0: [0, 1], 3: [1]}).validate(stand_in_model())


@pytest.mark.parametrize(("layer", "head"), [(4, 0), (9, 1), (0, 2), (3, 7)])
def test_validate_out_of_range(layer: int, head: int) -> None:
    with pytest.raises(
        HeadSetError, match=rf"\({layer}, {head}\) is out of range .* 4 layers and 2 heads"
    ):
        HeadSet({layer: [head]}).validate(stand_in_model())
    # allow_model_mismatch never excuses a head that does not exist.
    with pytest.raises(HeadSetError):
        HeadSet({layer: [head]}).validate(stand_in_model(), allow_model_mismatch=True)


def test_validate_model_mismatch(tmp_path: Path) -> None:
    model = stand_in_model()
    hs = HeadSet({1: [0]}, {"model": {"model_name": "y", "weights_sha256": "other"}})
    with pytest.raises(HeadSetError, match="allow_model_mismatch=True") as info:
        hs.validate(model)
    assert "'y'" in str(info.value) and "'x'" in str(info.value)
    hs.validate(model, allow_model_mismatch=True)
    path = hs.save(tmp_path / "h.json")
    with pytest.raises(HeadSetError, match="not for this one"):
        HeadSet.load(path, model=model)
    assert HeadSet.load(path, model=model, allow_model_mismatch=True) == hs


def test_validate_same_model_and_unrecorded_weights_pass() -> None:
    model = stand_in_model()
    HeadSet({1: [0]}, {"model": model_identity(model)}).validate(model)
    HeadSet({1: [0]}, {"model": {"model_name": "x"}}).validate(model)
    HeadSet({1: [0]}).validate(model)
    # Other weights of the same architecture are another model.
    with pytest.raises(HeadSetError, match="not for this one"):
        HeadSet({1: [0]}, {"model": model_identity(model)}).validate(stand_in_model(scale=2.0))


def test_model_fingerprint_is_stable_and_weight_sensitive() -> None:
    assert model_fingerprint(stand_in_model()) == model_fingerprint(stand_in_model())
    assert model_fingerprint(stand_in_model()) != model_fingerprint(stand_in_model(scale=-1.0))
    ident = model_identity(stand_in_model())
    assert ident["model_name"] == "x" and ident["n_layers"] == 4 and ident["n_heads"] == 2
    assert len(ident["weights_sha256"]) == 32
