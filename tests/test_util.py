"""Shared helpers: atomic writes by file object and by path, link-or-copy."""

from __future__ import annotations

import pytest

from datacomp_sci.util import atomic_open, atomic_path, link_or_copy


def test_atomic_path_renames_on_success_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.db"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("new")
        (tmp.parent / f"{tmp.name}.wal").write_text("log")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.db"]

    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.db"]


def test_atomic_open_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(ValueError), atomic_open(target, fsync=False) as f:
        f.write(b"partial")
        raise ValueError
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


def test_link_or_copy_gives_the_same_bytes(tmp_path):
    src = tmp_path / "a"
    src.write_bytes(b"payload")
    link_or_copy(src, tmp_path / "d" / "b")
    assert (tmp_path / "d" / "b").read_bytes() == b"payload"
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["b"]
