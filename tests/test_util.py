"""Shared helpers: atomic writes by file object and by path, link-or-copy."""

from __future__ import annotations

import os

import pytest
from helpers import dead_pid

from datacomp_sci.core.util import atomic_open, atomic_path, link_or_copy


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


def test_remove_stale_temps_removes_only_dead_writers_files(tmp_path):
    from datacomp_sci.core.util import remove_stale_temps

    dead = dead_pid()
    (tmp_path / "sub").mkdir()
    stale = [tmp_path / f".a.tar.tmp-{dead}", tmp_path / "sub" / f".b.parquet.tmp-{dead}",
             tmp_path / f".c.duckdb.tmp-{dead}.wal"]
    kept = [tmp_path / f".d.tar.tmp-{os.getpid()}", tmp_path / f".e.tar.tmp-{os.getppid()}",
            tmp_path / "f.tmp-1", tmp_path / ".g.tmp-x", tmp_path / "00000000.tar"]
    for p in stale + kept:
        p.write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == 3
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert remove_stale_temps(tmp_path / "missing") == 0
