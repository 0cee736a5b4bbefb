"""reshard: DataComp resharder semantics, determinism, resume, remote inputs, hostile input."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

import datacomp_sci.resharding.index as rx
import datacomp_sci.resharding.reshard as rs
from datacomp_sci.core import tars
from datacomp_sci.core.uids import load_subset, save_subset, u8u8_to_uids, uids_to_u8u8
from datacomp_sci.resharding.shardsets import resolve_shards

ABSENT = ["f" * 32, "0" * 31 + "1"]


@pytest.fixture(autouse=True)
def xdg_cache(tmp_path, monkeypatch) -> Path:
    """Every run's default header index cache lies in the test's tmp dir, not in ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "datacomp-sci" / "tar-index"


def _no_uid(shard: int, index: int) -> str | None:
    from helpers import default_uid

    return None if (shard, index) == (1, 3) else default_uid(shard, index)


@pytest.fixture
def pool(shard_factory):
    """3 shards of 5, 7 and 4 samples; sample (1, 3) has no uid."""
    return shard_factory("pool", 3, [5, 7, 4], uid_fn=_no_uid)


def _subset_for(tmp_path: Path, samples, picks: dict[tuple[int, int], int]) -> Path:
    uids = []
    for (s, i), k in picks.items():
        uids += [samples[s][i].uid] * k
    uids += ABSENT
    path = tmp_path / "subset.npy"
    save_subset(path, uids_to_u8u8(uids))
    return path


PICKS = {(0, 0): 1, (0, 4): 3, (1, 0): 1, (1, 6): 1, (2, 1): 2, (2, 3): 1}


def _read_tar(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers()]


def _all_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_reshard_writes_exact_datacomp_outputs(pool, tmp_path):
    folder, samples = pool
    subset = _subset_for(tmp_path, samples, PICKS)
    res = rs.reshard([str(folder)], subset, tmp_path / "out", rs.ReshardOptions(shard_size=4))
    out = Path(res.output)

    expected = []  # (key, sample) in (input shard order, member order)
    for (s, i), k in sorted(PICKS.items()):
        expected += [(f"{samples[s][i].uid}-{j}", samples[s][i]) for j in range(k)]
    assert len(expected) == 9
    members = []
    for n in range(3):
        members += _read_tar(out / f"{n:08d}.tar")
    assert [name for name, _ in members] == [f"{k}.{e}" for k, _ in expected for e in ("jpg", "json", "txt")]
    assert [data for _, data in members] == [s.members[e] for _, s in expected for e in ("jpg", "json", "txt")]
    assert [json.loads((out / f"{n:08d}_stats.json").read_text())["successes"] for n in range(3)] == [4, 4, 1]
    assert not (out / "00000003.tar").exists() and not (out / "_work").exists()

    meta = json.loads((out / "meta.json").read_text())
    assert (meta["output_shard_count"], meta["output_shard_format"]) == (3, "{:08d}.tar")
    assert (meta["processed_count"], meta["output_count"], meta["no_uid_count"]) == (16, 9, 1)
    assert np.array_equal(np.load(out / "sample_ids.npy"), load_subset(subset))
    assert sorted(u8u8_to_uids(np.load(out / "missing_uids.npy"))) == sorted(ABSENT)
    assert rs.missing_uids(out) == sorted(ABSENT)
    assert res.report["kept"] == 6 and res.report["missing_uids"] == 2
    assert any("2 uids of the subset were not found" in w for w in res.warnings)

    ss = resolve_shards(out)  # what train reads
    assert (ss.n_shards, ss.shard_samples, ss.found_by) == (3, (4, 4, 1), "meta.json")
    with tarfile.open(out / "00000000.tar") as tf:
        m = tf.getmembers()[0]
        assert (m.mtime, m.mode, m.uname, m.gname, m.uid, m.gid) == (0, 0o444, "bigdata", "bigdata", 0, 0)


def test_output_is_identical_for_any_worker_count(pool, tmp_path):
    folder, samples = pool
    subset = _subset_for(tmp_path, samples, PICKS)
    one = rs.reshard([str(folder)], subset, tmp_path / "w1", rs.ReshardOptions(shard_size=3, workers=1))
    two = rs.reshard([str(folder)], subset, tmp_path / "w2", rs.ReshardOptions(shard_size=3, workers=2))
    a, b = _all_bytes(Path(one.output)), _all_bytes(Path(two.output))
    assert sorted(a) == sorted(b) and len([k for k in a if k.endswith(".tar")]) == 3
    assert a == b


def test_interrupted_run_resumes_to_identical_bytes(pool, tmp_path, monkeypatch):
    folder, samples = pool
    subset = _subset_for(tmp_path, samples, PICKS)
    opts = rs.ReshardOptions(shard_size=2)
    clean = _all_bytes(Path(rs.reshard([str(folder)], subset, tmp_path / "clean", opts).output))

    real_filter, real_write = rs.filter_shard, rs._write_output_shard
    calls = {"filter": 0, "write": 0}

    def flaky_filter(*args):
        calls["filter"] += 1
        if calls["filter"] == 3:
            raise KeyboardInterrupt
        return real_filter(*args)

    def flaky_write(*args):
        calls["write"] += 1
        if calls["write"] == 3:
            raise KeyboardInterrupt
        return real_write(*args)

    monkeypatch.setattr(rs, "filter_shard", flaky_filter)
    monkeypatch.setattr(rs, "_write_output_shard", flaky_write)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        rs.reshard([str(folder)], subset, out, opts)  # dies in phase 1, after 2 input shards
    assert sorted(p.name for p in (out / "_work").glob("in_*.json")) == ["in_00000000.json", "in_00000001.json"]
    with pytest.raises(KeyboardInterrupt):
        rs.reshard([str(folder)], subset, out, opts)  # dies writing output shard 2
    assert (out / "00000001_stats.json").exists() and not (out / "meta.json").exists()
    assert calls["filter"] == 4  # only the third input shard was filtered again
    res = rs.reshard([str(folder)], subset, out, opts)
    assert _all_bytes(out) == clean
    again = rs.reshard([str(folder)], subset, out, opts)
    assert again.already_complete and again.meta == res.meta


def test_other_subset_in_unfinished_output_is_refused(pool, tmp_path, monkeypatch):
    folder, samples = pool
    subset = _subset_for(tmp_path, samples, PICKS)
    monkeypatch.setattr(rs, "_write_output_shard", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        rs.reshard([str(folder)], subset, tmp_path / "o", rs.ReshardOptions(shard_size=2))
    with pytest.raises(FileExistsError, match="unfinished reshard"):
        rs.reshard([str(folder)], subset, tmp_path / "o", rs.ReshardOptions(shard_size=3))


def test_several_pools_globs_and_loopback_http_inputs(shard_factory, tmp_path, http_server):
    a, sa = shard_factory("a/shards", 2, 3)  # a pool folder: a/shards/
    b, sb = shard_factory("b", 2, 2, uid_fn=lambda s, i: f"{s:016x}{i + 100:016x}")
    picks = [sa[0][1].uid, sa[1][2].uid, sb[0][0].uid, sb[1][1].uid]
    subset = tmp_path / "s.npy"
    save_subset(subset, uids_to_u8u8(picks))
    local = rs.reshard([str(tmp_path / "a"), str(b / "*.tar")], subset, tmp_path / "local",
                       rs.ReshardOptions(shard_size=10))
    names = [n for n, _ in _read_tar(Path(local.output) / "00000000.tar")]
    assert names[::3] == [f"{u}-0.jpg" for u in picks]

    base = http_server(tmp_path)
    remote = rs.reshard([f"{base}/a/shards/{{00000000..00000001}}.tar", f"{base}/b/"], subset,
                        tmp_path / "remote", rs.ReshardOptions(shard_size=10))
    assert (Path(remote.output) / "00000000.tar").read_bytes() == (Path(local.output) / "00000000.tar").read_bytes()
    assert remote.report["input_shards"] == 4
    # only local inputs are indexed in the cache
    assert (local.index_cache["built"], remote.index_cache["built"], remote.index_cache["reused"]) == (4, 0, 0)
    assert len(list((tmp_path / "xdg" / "datacomp-sci" / "tar-index").iterdir())) == 4


def test_hostile_input_is_counted_not_fatal(shard_factory, tmp_path):
    folder, samples = shard_factory("p", 3, 4)
    # shard 1: truncated mid-archive; shard 2: one sample's json is garbage
    raw = (folder / "00000001.tar").read_bytes()
    with tarfile.open(folder / "00000001.tar") as tf:
        cut = tf.getmember(f"{samples[1][1].key}.json").offset + 100  # inside sample 1
    (folder / "00000001.tar").write_bytes(raw[:cut])
    with tarfile.open(folder / "00000002.tar") as tf:
        members = [(m.name, tf.extractfile(m).read()) for m in tf.getmembers()]
    with tarfile.open(folder / "00000002.tar", "w") as tf:
        for name, data in members:
            data = b"{not json" if name.endswith("0002.json") else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    (folder / "00000003.tar").write_bytes(b"")  # unfinished: no stats file, skipped
    everything = [s.uid for shard in samples for s in shard]
    subset = tmp_path / "s.npy"
    save_subset(subset, uids_to_u8u8(everything))
    res = rs.reshard([str(folder)], subset, tmp_path / "out", rs.ReshardOptions(shard_size=100))
    assert res.report["bad_json"] == 1
    assert list(res.report["unreadable_input_shards"]) == [str(folder / "00000001.tar")]
    assert res.report["skipped_input_shards"] == [f"{folder / '00000003.tar'} (no _stats.json)"]
    # shard 1 keeps the complete samples read before the truncation: sample 0 only
    kept_1 = res.report["per_input_shard"][1]["kept"]
    assert kept_1 == 1
    assert res.meta["output_count"] == 4 + kept_1 + 3
    assert res.report["missing_uids"] == 12 - res.meta["output_count"]


def test_user_errors_are_clear(tmp_path, pool):
    folder, _ = pool
    with pytest.raises(FileNotFoundError, match="no such subset file"):
        rs.reshard([str(folder)], tmp_path / "nope.npy", tmp_path / "o")
    save_subset(tmp_path / "s.npy", uids_to_u8u8(ABSENT))
    with pytest.raises(FileNotFoundError, match="no such input"):
        rs.reshard([str(tmp_path / "missing")], tmp_path / "s.npy", tmp_path / "o")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        rs.reshard([str(folder)], tmp_path / "s.npy", tmp_path / "busy")


def _tarfile_member(name: str, data: bytes) -> bytes:
    """What tarfile itself writes for one member with reshard's fixed header fields."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o444
    info.uname = info.gname = "bigdata"
    fmt = tarfile.USTAR_FORMAT if len(name.encode("utf-8", "surrogateescape")) <= 100 else tarfile.PAX_FORMAT
    return info.tobuf(fmt, "utf-8", "surrogateescape") + data + b"\0" * (-len(data) % 512)


@pytest.mark.parametrize("name", ["0123456789abcdef0123456789abcdef-0.jpg", "k-1.json", "",
                                  "x" * 100, "x" * 101, "é" * 50 + ".txt", "a" * 99 + "é",
                                  "k.\udcff.bin"])
@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, 56_789])
def test_templated_headers_equal_tarfile_headers(name, size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert tars.tar_member_bytes(name, data) == _tarfile_member(name, data)
    with tarfile.open(fileobj=io.BytesIO(tars.tar_member_bytes(name, data) + tars.tar_end(0))) as tf:
        m = tf.next()
        assert (m.name, m.size, m.mode, m.mtime, m.uname) == (name, size, 0o444, 0, "bigdata")
        assert tf.extractfile(m).read() == data


def test_pax_and_long_members_are_copied_exactly(tmp_path):
    """Input written with PAX headers and long member names; 2 workers, small shards."""
    uids = [f"{i:032x}" for i in range(6)]
    shards = tmp_path / "in"
    shards.mkdir()
    expected = []
    for s in range(2):
        with tarfile.open(shards / f"{s:08d}.tar", "w", format=tarfile.PAX_FORMAT) as tf:
            for i in range(3):
                uid = uids[3 * s + i]
                key = f"dir/sub/{'k' * 120}{s}{i}"  # > 100 characters: PAX path records
                members = {".json": json.dumps({"uid": uid}).encode(),
                           ".jpg": bytes([i]) * (700 * i + 3), ".ünï.txt": b"caption"}
                for suffix, data in members.items():
                    info = tarfile.TarInfo(key + suffix)
                    info.size, info.mtime = len(data), 1.5  # float mtime: a PAX record
                    tf.addfile(info, io.BytesIO(data))
                if i != 1:
                    expected += [(f"{uid}-0{suffix}", data) for suffix, data in members.items()]
        (shards / f"{s:08d}_stats.json").write_text("{}")
    subset = tmp_path / "s.npy"
    save_subset(subset, uids_to_u8u8([u for n, u in enumerate(uids) if n % 3 != 1]))
    res = rs.reshard([str(shards)], subset, tmp_path / "o", rs.ReshardOptions(shard_size=3, workers=2))
    out = Path(res.output)
    assert res.meta["output_shard_count"] == 2
    assert _read_tar(out / "00000000.tar") + _read_tar(out / "00000001.tar") == expected
    one = rs.reshard([str(shards)], subset, tmp_path / "o1", rs.ReshardOptions(shard_size=3))
    assert _all_bytes(out) == _all_bytes(Path(one.output))


def test_input_changed_before_resume_is_refused(pool, tmp_path, monkeypatch):
    folder, samples = pool
    subset = _subset_for(tmp_path, samples, PICKS)
    monkeypatch.setattr(rs, "_write_output_shard", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        rs.reshard([str(folder)], subset, tmp_path / "o", rs.ReshardOptions(shard_size=2))
    monkeypatch.undo()
    tar = folder / "00000000.tar"
    tar.write_bytes(tar.read_bytes() + b"\0" * 10240)  # rewritten after phase 1 indexed it
    with pytest.raises(FileExistsError, match="changed after this run indexed it"):
        rs.reshard([str(folder)], subset, tmp_path / "o", rs.ReshardOptions(shard_size=2))


# ---------------------------------------------------------------- header index cache
OTHER_PICKS = {(0, 1): 2, (0, 4): 1, (1, 2): 1, (2, 0): 1, (2, 3): 3}


def _walks(monkeypatch) -> list[str]:
    """Record every tar walk (the only place reshard reads local tars)."""
    calls: list[str] = []
    real = rx.walk_tar_index

    def walk(path, reader="auto"):
        calls.append(Path(path).name)
        return real(path, reader)

    monkeypatch.setattr(rx, "walk_tar_index", walk)
    return calls


def _forbid_tar_walks(monkeypatch) -> None:
    def fail(*args):
        raise AssertionError("walked a tar although its index is cached")

    monkeypatch.setattr(rx, "walk_tar_index", fail)
    monkeypatch.setattr(rx, "iter_local_samples", fail)


def test_index_cache_is_reused_for_another_subset(pool, tmp_path, xdg_cache, monkeypatch):
    folder, samples = pool
    other = _subset_for(tmp_path, samples, OTHER_PICKS).rename(tmp_path / "other.npy")
    first = _subset_for(tmp_path, samples, PICKS)
    opts = rs.ReshardOptions(shard_size=3)
    plain = rs.reshard([str(folder)], other, tmp_path / "plain",
                       rs.ReshardOptions(shard_size=3, use_index_cache=False))

    res1 = rs.reshard([str(folder)], first, tmp_path / "one", opts)  # default cache folder
    assert res1.index_cache == {"dir": str(xdg_cache), "reused": 0, "built": 3, "not saved": 0}
    files = sorted(xdg_cache.iterdir())
    assert len(files) == 3 and all(f.suffix == ".idx" and f.stat().st_size < 2000 for f in files)

    _forbid_tar_walks(monkeypatch)
    for workers in (1, 2):
        out = tmp_path / f"two_{workers}"
        res2 = rs.reshard([str(folder)], other, out, rs.ReshardOptions(shard_size=3, workers=workers))
        assert res2.index_cache == {"dir": str(xdg_cache), "reused": 3, "built": 0, "not saved": 0}
        assert _all_bytes(out) == _all_bytes(Path(plain.output))
        assert res2.meta["output_count"] == 8 and res2.report["no_uid"] == 1
    assert sorted(xdg_cache.iterdir()) == files


def test_modified_input_invalidates_its_index(pool, tmp_path, monkeypatch):
    folder, samples = pool
    subset = _subset_for(tmp_path, samples, PICKS)
    cache = tmp_path / "cache"
    opts = rs.ReshardOptions(shard_size=4, index_cache=cache)
    rs.reshard([str(folder)], subset, tmp_path / "a", opts)
    st = (folder / "00000001.tar").stat()
    os.utime(folder / "00000001.tar", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched
    tar2 = folder / "00000002.tar"
    tar2.write_bytes(tar2.read_bytes() + b"\0" * 10240)  # size changed (still a valid tar)
    walked = _walks(monkeypatch)
    res = rs.reshard([str(folder)], subset, tmp_path / "b", opts)
    assert sorted(walked) == ["00000001.tar", "00000002.tar"]
    assert (res.index_cache["reused"], res.index_cache["built"]) == (1, 2)
    assert len(list(cache.iterdir())) == 5  # stale indexes are never read again
    plain = rs.reshard([str(folder)], subset, tmp_path / "c",
                       rs.ReshardOptions(shard_size=4, use_index_cache=False))
    assert _all_bytes(Path(res.output)) == _all_bytes(Path(plain.output))


def test_corrupt_or_lying_index_is_rebuilt(pool, tmp_path, monkeypatch):
    folder, samples = pool
    subset = _subset_for(tmp_path, samples, PICKS)
    cache = tmp_path / "cache"
    opts = rs.ReshardOptions(shard_size=4, index_cache=cache)
    clean = _all_bytes(Path(rs.reshard([str(folder)], subset, tmp_path / "a", opts).output))
    tars = [str(folder / f"{i:08d}.tar") for i in range(3)]
    files = {t: rx._index_file(cache, t, os.stat(t).st_size, os.stat(t).st_mtime_ns) for t in tars}
    raw = files[tars[0]].read_bytes()
    files[tars[0]].write_bytes(raw[:-7])  # torn write
    raw = bytearray(files[tars[1]].read_bytes())
    raw[-20] ^= 0xFF  # one flipped bit of member data: checksum mismatch
    files[tars[1]].write_bytes(bytes(raw))
    lying = rx.walk_tar_index(tars[2])  # well-formed, but points past the end of the tar
    lying.members = lying.members.copy()
    lying.members["offset"][-1] = os.stat(tars[2]).st_size
    rx.save_tar_index(files[tars[2]], tars[2], lying)
    for t in tars:
        with pytest.raises(ValueError, match="truncated|checksum|outside the tar"):
            rx.load_tar_index(files[t], t, os.stat(t))

    walked = _walks(monkeypatch)
    res = rs.reshard([str(folder)], subset, tmp_path / "b", opts)
    assert len(walked) == 3 and res.index_cache["built"] == 3
    assert _all_bytes(Path(res.output)) == clean
    monkeypatch.undo()
    _forbid_tar_walks(monkeypatch)  # rebuilt files are valid again
    again = rs.reshard([str(folder)], subset, tmp_path / "c", opts)
    assert again.index_cache["reused"] == 3 and _all_bytes(Path(again.output)) == clean


def test_no_index_cache_writes_nothing(pool, tmp_path, xdg_cache):
    from click.testing import CliRunner

    from datacomp_sci.cli import main

    folder, samples = pool
    subset = _subset_for(tmp_path, samples, PICKS)
    base = ["reshard", "-i", str(folder), "--subset", str(subset), "-j", "1", "--no-progress"]
    r = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "a"), "--no-index-cache"])
    assert r.exit_code == 0, r.output
    assert "index cache off" in r.output
    assert not (tmp_path / "xdg").exists()
    r = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "b"), "--index-cache", str(tmp_path / "ic")])
    assert r.exit_code == 0, r.output
    assert "index cache 0 input shards reused, 3 indexed and saved, 0 not saved" in r.output
    assert len(list((tmp_path / "ic").iterdir())) == 3 and not (tmp_path / "xdg").exists()
    assert _all_bytes(tmp_path / "a") == _all_bytes(tmp_path / "b")
    with pytest.raises(ValueError, match="not both"):
        rs.reshard([str(folder)], subset, tmp_path / "c",
                   rs.ReshardOptions(index_cache=tmp_path / "ic", use_index_cache=False))


def test_unwritable_index_cache_is_a_warning(pool, tmp_path):
    folder, samples = pool
    subset = _subset_for(tmp_path, samples, PICKS)
    blocker = tmp_path / "cache_is_a_file"
    blocker.write_text("x")
    res = rs.reshard([str(folder)], subset, tmp_path / "o",
                     rs.ReshardOptions(shard_size=4, index_cache=blocker))
    assert res.index_cache["not saved"] == 3 and res.meta["output_count"] == 9
    assert any("3 input shard header indexes could not be saved" in w for w in res.warnings)


def test_default_index_cache_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert rx.default_index_cache() == tmp_path / "datacomp-sci" / "tar-index"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert rx.default_index_cache() == tmp_path / "home" / ".cache" / "datacomp-sci" / "tar-index"


def test_prune_index_cache_keeps_only_readable_indexes(shard_factory, tmp_path):
    from click.testing import CliRunner

    from datacomp_sci.cli import main

    folder, samples = shard_factory("p", 4, 3)
    cache = tmp_path / "cache"
    subset = tmp_path / "s.npy"
    save_subset(subset, uids_to_u8u8([samples[0][0].uid]))
    rs.reshard([str(folder)], subset, tmp_path / "o", rs.ReshardOptions(index_cache=cache))
    files = sorted(cache.iterdir())
    assert len(files) == 4
    (folder / "00000000.tar").unlink()  # gone
    st = (folder / "00000001.tar").stat()
    os.utime(folder / "00000001.tar", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # changed
    by_tar = {}
    for f in files:
        header_len = int.from_bytes(f.read_bytes()[8:16], "little")
        by_tar[Path(json.loads(f.read_bytes()[16:16 + header_len])["path"]).name] = f
    older = by_tar["00000002.tar"]  # written by an older index format
    older.write_bytes(older.read_bytes().replace(rx.INDEX_FORMAT.encode(), b"datacomp-sci/tar-index/1"))
    (cache / "junk.idx").write_bytes(b"not an index")
    stale_tmp = cache / ".abc.idx.tmp-999999"
    stale_tmp.write_bytes(b"x" * 10)
    os.utime(stale_tmp, (1, 1))
    fresh_tmp = cache / ".def.idx.tmp-1"
    fresh_tmp.write_bytes(b"y")
    (cache / "README").write_text("not ours")

    dry = rx.prune_index_cache(cache, dry_run=True)
    assert dry["removed"] == 5 and len(list(cache.iterdir())) == 8
    r = CliRunner().invoke(main, ["prune-index-cache", "--index-cache", str(cache)])
    assert r.exit_code == 0, r.output
    assert "removed 5 files" in r.output and "kept 1 indexes" in r.output
    assert "1 other index format" in r.output and "1 tar changed" in r.output
    assert "1 tar gone" in r.output and "1 unreadable" in r.output
    assert "1 temp file of a killed run" in r.output
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [by_tar["00000003.tar"].name, fresh_tmp.name, "README"])
    # the kept index is still used
    res = rs.reshard([str(folder / "00000003.tar")], subset, tmp_path / "o2",
                     rs.ReshardOptions(index_cache=cache))
    assert res.index_cache["reused"] == 1
    assert rx.prune_index_cache(tmp_path / "nothing_here")["removed"] == 0


def test_samples_are_grouped_by_webdatasets_group_by_keys(tmp_path):
    """Keys and extensions as webdataset splits them; extension case kept; a name
    repeated within a sample is skipped and counted (webdataset refuses it)."""
    from webdataset.tariterators import group_by_keys, tar_file_expander

    uids = [f"{i:032x}" for i in range(1, 4)]
    members = [("a/k1.jpg", b"img1"), ("a/k1.json", json.dumps({"uid": uids[0]}).encode()),
               ("a/k1.txt", b"first"), ("a/k1.txt", b"second"),
               ("k2.JPG", b"img2"), ("k2.json", json.dumps({"uid": uids[1]}).encode()),
               ("noext", b"x"), (".hidden", b"y"),
               ("k3.seg.png", b"png3"), ("k3.json", json.dumps({"uid": uids[2]}).encode())]
    folder = tmp_path / "p"
    folder.mkdir()
    with tarfile.open(folder / "00000000.tar", "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    subset = tmp_path / "s.npy"
    save_subset(subset, uids_to_u8u8(uids))
    for reader in ("libarchive", "tarfile"):
        res = rs.reshard([str(folder / "00000000.tar")], subset, tmp_path / reader,
                         rs.ReshardOptions(use_index_cache=False, tar_reader=reader))
        assert res.report["skipped_members"] == 3 and res.meta["output_count"] == 3
        got = _read_tar(tmp_path / reader / "00000000.tar")
        assert got == [(f"{uids[0]}-0.jpg", b"img1"), (f"{uids[0]}-0.json", members[1][1]),
                       (f"{uids[0]}-0.txt", b"first"),
                       (f"{uids[1]}-0.JPG", b"img2"), (f"{uids[1]}-0.json", members[5][1]),
                       (f"{uids[2]}-0.seg.png", b"png3"), (f"{uids[2]}-0.json", members[9][1])]
    # the same keys as webdataset's own pipeline (which lowercases extensions by default)
    with open(folder / "00000000.tar", "rb") as f:
        wds_samples = list(group_by_keys(tar_file_expander([{"stream": f, "url": "x"}]),
                                         handler=lambda e: True))
    assert [s["__key__"] for s in wds_samples] == ["a/k1", "k2", "k3"]


def test_killed_process_resumes_to_identical_bytes(shard_factory, tmp_path):
    """SIGKILL the CLI in phase 1 and again in phase 2; each rerun continues, and the
    output equals an uninterrupted run's, byte for byte."""
    import signal
    import subprocess
    import sys
    import time

    folder, samples = shard_factory("p", 120, 6)
    subset = tmp_path / "s.npy"
    save_subset(subset, uids_to_u8u8([s.uid for shard in samples for s in shard][::2]))

    def cmd(out: Path) -> list[str]:
        return [sys.executable, "-m", "datacomp_sci.cli", "reshard", "-i", str(folder),
                "--subset", str(subset), "-o", str(out), "--shard-size", "3", "-j", "1",
                "--no-index-cache", "--tar-reader", "tarfile", "--no-progress"]

    subprocess.run(cmd(tmp_path / "clean"), check=True, capture_output=True)
    out = tmp_path / "killed"
    kills = []
    for ready in (lambda: len(list((out / "_work").glob("in_*.json"))) >= 5,
                  lambda: (out / "00000002_stats.json").exists()):
        proc = subprocess.Popen(cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and not ready() and time.monotonic() < deadline:
            time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills.append(True)
        proc.wait()
    assert kills, "the run finished before it could be killed"
    assert not (out / "meta.json").exists() or len(kills) < 2
    subprocess.run(cmd(out), check=True, capture_output=True)
    assert _all_bytes(out) == _all_bytes(tmp_path / "clean")
    assert not (out / "_work").exists()
