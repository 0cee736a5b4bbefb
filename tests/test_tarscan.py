"""tarscan: libarchive lists members exactly as tarfile does, or hands the tar to tarfile.

Every tar below is indexed twice, with ``reader="libarchive"`` and ``reader="tarfile"``;
the two indexes (samples, uids, member offsets and sizes, suffixes, skipped members,
error) must be equal, and the tars that libarchive may read must have been read by it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

import datacomp_sci.resharding.index as rx
from datacomp_sci.core import tarscan
from datacomp_sci.core.uids import save_subset, uids_to_u8u8

needs_libarchive = pytest.mark.skipif(tarscan._load()[0] is None,
                                      reason="libarchive shared library not installed")


def _uid(i: int) -> str:
    return f"{i:032x}"


def _members(n: int = 4, key=lambda i: f"{i:09d}") -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        k = key(i)
        out += [(f"{k}.jpg", bytes([i % 256]) * (1000 + 517 * i)),
                (f"{k}.json", json.dumps({"uid": _uid(i), "key": k}).encode()),
                (f"{k}.txt", f"caption {i}".encode())]
    return out


def _tar(path: Path, members, fmt=tarfile.PAX_FORMAT, float_mtime=True, extra=None) -> Path:
    """A tar of regular files; ``extra(tf, i)`` may add other members before member i."""
    with tarfile.open(path, "w", format=fmt) as tf:
        for i, (name, data) in enumerate(members):
            if extra:
                extra(tf, i)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000.25 if float_mtime else 1700000000  # float: a PAX header each
            tf.addfile(info, io.BytesIO(data))
    return path


def _both(path: Path) -> tuple[rx.TarIndex, rx.TarIndex]:
    return rx.walk_tar_index(path, "libarchive"), rx.walk_tar_index(path, "tarfile")


def _assert_same(fast: rx.TarIndex, ref: rx.TarIndex) -> None:
    assert ref.reader == "tarfile"
    assert fast.samples.tobytes() == ref.samples.tobytes()
    assert fast.members.tobytes() == ref.members.tobytes()
    assert (fast.suffixes, fast.skipped_members, fast.error, fast.cacheable) == \
        (ref.suffixes, ref.skipped_members, ref.error, ref.cacheable)


def _corrupt(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(data)] = data
    path.write_bytes(bytes(raw))


def _header_offset(path: Path, name: str) -> int:
    with tarfile.open(path) as tf:
        return tf.getmember(name).offset


# tars that libarchive lists itself ------------------------------------------------------
@needs_libarchive
@pytest.mark.parametrize("fmt,float_mtime", [(tarfile.PAX_FORMAT, True), (tarfile.PAX_FORMAT, False),
                                             (tarfile.USTAR_FORMAT, False), (tarfile.GNU_FORMAT, False)])
def test_plain_tars_are_listed_by_libarchive(tmp_path, fmt, float_mtime):
    path = _tar(tmp_path / "a.tar", _members(5), fmt, float_mtime)
    fast, ref = _both(path)
    _assert_same(fast, ref)
    assert fast.reader == "libarchive" and fast.error is None
    assert len(fast.samples) == 5 and fast.suffixes == [".jpg", ".json", ".txt"]
    uids = np.ascontiguousarray(fast.samples["uid"]).tobytes()
    assert uids == b"".join(bytes.fromhex(_uid(i)) for i in range(5))


@needs_libarchive
@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_zero_and_block_sized_members(tmp_path, fmt):
    long_dir = "d" * 60 + "/" + "e" * 60  # USTAR splits it into prefix + name
    members = [(f"{long_dir}/k0.jpg", b""), (f"{long_dir}/k0.json", b'{"uid": "%s"}' % _uid(0).encode()),
               ("k1.jpg", b"x" * 512), ("k1.json", b'{"uid": "%s"}' % _uid(1).encode()),
               ("k2.tar.gz", b"y" * 1024), ("noext", b"z"), ("k3.json", b"{}")]
    if fmt != tarfile.USTAR_FORMAT:
        members.append(("f" * 150 + ".json", b'{"uid": "%s"}' % _uid(9).encode()))  # PAX/GNU only
    path = _tar(tmp_path / "a.tar", members, fmt, float_mtime=False)
    fast, ref = _both(path)
    _assert_same(fast, ref)
    assert fast.reader == "libarchive"
    assert fast.skipped_members == 1  # "noext"
    assert fast.suffixes[:2] == [".jpg", ".json"] and ".tar.gz" in fast.suffixes


@needs_libarchive
def test_global_pax_header_and_trailing_data_after_the_end_marker(tmp_path):
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "hi"}) as tf:
        for name, data in _members(3):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with open(path, "ab") as f:
        f.write(b"trailing junk" * 100)
    fast, ref = _both(path)
    _assert_same(fast, ref)
    assert fast.reader == "libarchive" and len(fast.samples) == 3


@needs_libarchive
def test_empty_tar(tmp_path):
    path = _tar(tmp_path / "a.tar", [])
    fast, ref = _both(path)
    _assert_same(fast, ref)
    assert fast.reader == "libarchive" and len(fast.samples) == 0 and fast.error is None


# tars that go to tarfile ----------------------------------------------------------------
def _dir_and_links(tf: tarfile.TarFile, i: int) -> None:
    if i == 3:
        d = tarfile.TarInfo("adir")
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        sym = tarfile.TarInfo("alink.jpg")
        sym.type, sym.linkname = tarfile.SYMTYPE, "000000000.jpg"
        tf.addfile(sym)
        hard = tarfile.TarInfo("000000001.png")
        hard.type, hard.linkname = tarfile.LNKTYPE, "000000000.jpg"
        tf.addfile(hard)


@needs_libarchive
def test_directories_and_links_go_to_tarfile(tmp_path):
    path = _tar(tmp_path / "a.tar", _members(3), extra=_dir_and_links)
    fast, ref = _both(path)
    _assert_same(fast, ref)
    assert fast.reader == "tarfile" and fast.skipped_members == 3


@needs_libarchive
@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_non_ascii_names_go_to_tarfile(tmp_path, fmt):
    members = _members(2, key=lambda i: f"é{i}") + [("k\udcff.json", b"{}")]
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w", format=fmt, encoding="utf-8", errors="surrogateescape") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    fast, ref = _both(path)
    _assert_same(fast, ref)
    assert fast.reader == "tarfile" and ".json" in fast.suffixes


@needs_libarchive
def test_v7_headers_go_to_tarfile(tmp_path):
    path = _tar(tmp_path / "a.tar", _members(2), tarfile.USTAR_FORMAT, float_mtime=False)
    raw = bytearray(path.read_bytes())
    with tarfile.open(path) as tf:
        offsets = [m.offset for m in tf]
    for off in offsets:  # turn every USTAR header into a V7 one (no magic), fix the checksum
        raw[off + 257:off + 265] = b"\0" * 8
        raw[off + 148:off + 156] = b" " * 8
        raw[off + 148:off + 156] = b"%06o\0 " % sum(raw[off:off + 512])
    path.write_bytes(bytes(raw))
    fast, ref = _both(path)
    _assert_same(fast, ref)
    assert fast.reader == "tarfile" and len(fast.samples) == 2


@needs_libarchive
@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar to write a sparse member")
def test_sparse_members_go_to_tarfile(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "k0.jpg", "wb") as f:
        f.truncate(1 << 20)
        f.seek(1 << 19)
        f.write(b"data")
    (src / "k0.json").write_bytes(b'{"uid": "%s"}' % _uid(0).encode())
    path = tmp_path / "a.tar"
    r = subprocess.run(["tar", "--sparse", "--format=pax", "-cf", str(path), "-C", str(src),
                        "k0.jpg", "k0.json"], capture_output=True)
    if r.returncode:
        pytest.skip(f"tar cannot write sparse members here: {r.stderr.decode()[:200]}")
    fast, ref = _both(path)
    _assert_same(fast, ref)
    assert fast.reader == "tarfile"


# damaged tars: the same samples and the same error with either reader ---------------------
@needs_libarchive
@pytest.mark.parametrize("damage", ["truncated_in_data", "truncated_in_header", "no_end_marker",
                                    "bad_checksum_mid_archive", "garbage_mid_archive",
                                    "size_past_the_end", "bad_pax_record"])
def test_damaged_tars_read_alike(tmp_path, damage):
    members = _members(4)
    path = _tar(tmp_path / "a.tar", members)
    raw = path.read_bytes()
    second = _header_offset(path, "000000002.jpg")  # the real header; its PAX header precedes it
    with tarfile.open(path) as tf:
        infos = tf.getmembers()
    data_end = infos[-1].offset_data + infos[-1].size
    if damage == "truncated_in_data":
        path.write_bytes(raw[:second + 700])
    elif damage == "truncated_in_header":
        path.write_bytes(raw[:second + 100])
    elif damage == "no_end_marker":
        path.write_bytes(raw[:data_end + (-data_end) % 512])
    elif damage == "bad_checksum_mid_archive":
        _corrupt(path, second + 148, b"0000000\0")
    elif damage == "garbage_mid_archive":
        _corrupt(path, second, os.urandom(512))
    elif damage == "size_past_the_end":
        _corrupt(path, second + 124, b"%011o\0" % (len(raw) * 4))
        raw2 = bytearray(path.read_bytes())
        raw2[second + 148:second + 156] = b" " * 8
        raw2[second + 148:second + 156] = b"%06o\0 " % sum(raw2[second:second + 512])
        path.write_bytes(bytes(raw2))
    elif damage == "bad_pax_record":  # "size=abc": tarfile takes size 0 and then meets JPEG bytes
        pax = second + 512  # the records of sample 2's PAX header
        _corrupt(path, pax, b"13 size=abcd\n")
    fast, ref = _both(path)
    _assert_same(fast, ref)
    assert fast.reader == "tarfile"
    assert fast.error is not None  # damage is reported, never a silent short read
    # samples 0 and 1 lie before the damage; the last one read is held back, as it may be
    # incomplete (its other members could have followed); no_end_marker loses sample 3, and
    # with size=abcd sample 2's header is still read (the damage follows it)
    assert len(fast.samples) == {"no_end_marker": 3, "bad_pax_record": 2}.get(damage, 1)


def test_corrupt_header_mid_archive_is_an_error_not_the_end(tmp_path):
    """tarfile alone stops silently at an invalid header; the walk reports it."""
    path = _tar(tmp_path / "a.tar", _members(4))
    _corrupt(path, _header_offset(path, "000000002.jpg") + 148, b"0000000\0")
    with tarfile.open(path) as tf:
        assert len(tf.getmembers()) < 12  # what tarfile does on its own: no error
    index = rx.walk_tar_index(path, "tarfile")
    assert len(index.samples) == 1  # sample 1 may be incomplete: held back
    assert "damaged archive: no valid tar header at byte" in index.error


# choosing the reader ----------------------------------------------------------------------
def test_reader_choice_and_missing_libarchive(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown tar reader"):
        tarscan.resolve_reader("bsdtar")
    assert tarscan.resolve_reader("tarfile")[0] == "tarfile"
    monkeypatch.setenv(tarscan.ENV_READER, "tarfile")
    assert tarscan.resolve_reader()[0] == "tarfile"
    monkeypatch.delenv(tarscan.ENV_READER)
    monkeypatch.setattr(tarscan, "_load", lambda: (None, "libarchive is not available (test)"))
    reader, line = tarscan.resolve_reader("auto")
    assert reader == "tarfile" and "install libarchive13" in line
    with pytest.raises(RuntimeError, match="apt-get install libarchive13"):
        tarscan.resolve_reader("libarchive")
    path = _tar(tmp_path / "a.tar", _members(2))
    assert tarscan.scan_regular_members(os.open(path, os.O_RDONLY)) is None
    assert rx.walk_tar_index(path, "auto").reader == "tarfile"


@needs_libarchive
def test_reshard_outputs_do_not_depend_on_the_reader(shard_factory, tmp_path):
    from click.testing import CliRunner

    from datacomp_sci.cli import main

    folder, samples = shard_factory("p", 3, [5, 6, 4])
    # shard 1 gets a directory member: tarfile reads it, the others go to libarchive
    with tarfile.open(folder / "00000001.tar") as tf:
        members = [(m, tf.extractfile(m).read()) for m in tf.getmembers()]
    with tarfile.open(folder / "00000001.tar", "w") as tf:
        d = tarfile.TarInfo("somedir")
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        for m, data in members:
            tf.addfile(m, io.BytesIO(data))
    subset = tmp_path / "s.npy"
    save_subset(subset, uids_to_u8u8([s.uid for shard in samples for s in shard][::2]))
    outs = {}
    for reader in ("auto", "tarfile", "libarchive"):
        out = tmp_path / reader
        r = CliRunner().invoke(main, ["reshard", "-i", str(folder), "--subset", str(subset),
                                      "-o", str(out), "--no-index-cache", "--tar-reader", reader,
                                      "--shard-size", "4", "-j", "2", "--no-progress"])
        assert r.exit_code == 0, r.output
        outs[reader] = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
        want = "listed 0 input shards with libarchive, 3 with tarfile" if reader == "tarfile" \
            else "listed 2 input shards with libarchive, 1 with tarfile"
        assert want in r.output
    assert outs["auto"] == outs["tarfile"] == outs["libarchive"]
    assert json.loads(outs["tarfile"]["meta.json"])["output_count"] == 8


@needs_libarchive
def test_lone_zero_block_mid_archive_is_an_error(tmp_path):
    """One zero block between members: tarfile takes it as the end, GNU tar warns of a
    "lone zero block"; the walk reports it instead of silently losing the members after it."""
    path = _tar(tmp_path / "a.tar", _members(4))
    raw = path.read_bytes()
    cut = _header_offset(path, "000000002.jpg")
    path.write_bytes(raw[:cut] + b"\0" * 512 + raw[cut:])
    fast, ref = _both(path)
    _assert_same(fast, ref)
    assert fast.reader == "tarfile" and len(fast.samples) == 1
    assert "lone zero block" in fast.error


@needs_libarchive
def test_odd_but_ascii_names_read_alike(tmp_path):
    names = ["./k1.jpg", "./k1.json", "/abs/k2.jpg", "a//b/k3.jpg", "k4.", "k5..json",
             "dir.with.dots/k6.txt", " k7 .json", "k8.json/"]
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for n in names:
            info = tarfile.TarInfo(n)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"abc"))
    fast, ref = _both(path)
    _assert_same(fast, ref)
