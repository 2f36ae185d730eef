"""Atomic writes: whole files only, and the permissions a plain open() would give."""

import os
import stat

import pytest

from act_lens.io import atomic_write_bytes, atomic_write_text


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.json", "{}")
        plain = tmp_path / "plain.json"
        plain.write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o644


def test_failed_write_leaves_no_temporary_and_keeps_the_old_file(tmp_path):
    path = atomic_write_bytes(tmp_path / "x.bin", b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]
