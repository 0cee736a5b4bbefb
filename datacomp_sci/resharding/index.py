"""The subset-independent header index of a local input tar, cached between reshards.

Per sample (tar order): its uid or why it has none, its member suffixes, and each
member's data offset and size; saved once per input tar under the index cache (default
``$XDG_CACHE_HOME/datacomp-sci/tar-index``), named by a hash of (absolute path, size,
mtime_ns, index format). A later reshard of the same pool with any subset reads it
instead of walking the tar. An index whose header, size, mtime or checksum does not
match is ignored and rebuilt; outputs are the same bytes with or without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tarfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from datacomp_sci.core.tars import (
    UID_BAD,
    UID_KEY,
    UID_OK,
    UID_STATUS_COUNTER,
    Member,
    ReadCounts,
    iter_local_samples,
    uid_status,
)
from datacomp_sci.core.util import atomic_open, file_cache_name, is_stale_temp, user_cache_dir

if TYPE_CHECKING:
    from datacomp_sci.resharding.reshard import ShardResult, _ShardIndex


# /2: damaged tars are read differently (headers stopping before the end marker, lone zero
# blocks), so indexes written by /1 are rebuilt rather than trusted
INDEX_FORMAT = "datacomp-sci/tar-index/2"


_INDEX_MAGIC = b"DCSTIDX\n"


_SAMPLE_DTYPE = np.dtype([("uid", "V16"), ("status", "u1"), ("members", "<u4")])


_MEMBER_DTYPE = np.dtype([("offset", "<i8"), ("size", "<i8"), ("suffix", "<u4")])


_DTYPES = f"{_SAMPLE_DTYPE.descr}/{_MEMBER_DTYPE.descr}"


def default_index_cache() -> Path:
    """``$XDG_CACHE_HOME/datacomp-sci/tar-index``, else ``~/.cache/datacomp-sci/tar-index``."""
    return user_cache_dir() / "tar-index"


@dataclass
class TarIndex:
    """What phase 1 learns from one local tar independently of the subset: per sample
    (in tar order) its uid and status (``UID_OK``/``UID_MISSING``/``UID_BAD_JSON``/``UID_BAD``)
    and member count; per member its data offset, size and suffix; plus the counts and
    error of the walk, and the size and mtime of the tar it describes."""

    samples: np.ndarray  # _SAMPLE_DTYPE
    members: np.ndarray  # _MEMBER_DTYPE
    suffixes: list[str]
    size: int
    mtime_ns: int
    skipped_members: int = 0
    error: str | None = None
    cacheable: bool = True  # False: an I/O error, or the tar changed while being read
    reader: str | None = None  # who listed the members (None: loaded from the cache)

    def apply(self, keys: np.ndarray, index: _ShardIndex, res: ShardResult) -> None:
        """Count the samples and add the kept ones (uid in the sorted ``keys``) to ``index``,
        exactly as walking the tar would."""
        status = self.samples["status"]
        res.processed += len(status)
        res.skipped_members += self.skipped_members
        counts = np.bincount(status, minlength=4)
        for code, name in UID_STATUS_COUNTER.items():
            setattr(res, name, getattr(res, name) + int(counts[code]))
        uids = np.ascontiguousarray(self.samples["uid"]).view(UID_KEY)
        mult = np.searchsorted(keys, uids, "right") - np.searchsorted(keys, uids, "left")
        mult[status != UID_OK] = 0
        kept = np.flatnonzero(mult)
        res.kept += len(kept)
        if len(kept):
            self._add(kept, mult, uids.tobytes(), index)
        res.error = self.error

    def _add(self, kept: np.ndarray, mult: np.ndarray, uid_bytes: bytes,
             index: _ShardIndex) -> None:
        starts = np.concatenate([[0], np.cumsum(self.samples["members"], dtype=np.int64)])
        offsets, sizes = self.members["offset"].tolist(), self.members["size"].tolist()
        suffixes = [self.suffixes[i] for i in self.members["suffix"].tolist()]
        for i in kept.tolist():
            lo, hi = int(starts[i]), int(starts[i + 1])
            members = list(zip(suffixes[lo:hi], offsets[lo:hi], sizes[lo:hi], strict=True))
            index.add(uid_bytes[16 * i:16 * i + 16], int(mult[i]), members)


class _IndexBuilder:
    """Accumulates samples while a tar is walked."""

    def __init__(self) -> None:
        self.samples: list[tuple[bytes, int, int]] = []
        self.members: list[tuple[int, int, int]] = []
        self.suffix_ids: dict[str, int] = {}

    def add(self, key: bytes | None, status: int, members: list[Member]) -> None:
        self.samples.append((key or bytes(16), status, len(members)))
        for suffix, offset, size in members:
            sid = self.suffix_ids.setdefault(suffix, len(self.suffix_ids))
            self.members.append((offset, size, sid))

    def build(self, st: os.stat_result, counts: ReadCounts, error: str | None,
              cacheable: bool) -> TarIndex:
        return TarIndex(np.array(self.samples, dtype=_SAMPLE_DTYPE),
                        np.array(self.members, dtype=_MEMBER_DTYPE), list(self.suffix_ids),
                        st.st_size, st.st_mtime_ns, counts.skipped_members, error, cacheable,
                        counts.tar_reader)


def walk_tar_index(path: str | os.PathLike, reader: str = "auto") -> TarIndex:
    """Build a local tar's :class:`TarIndex` from its member list (:func:`iter_local_samples`
    with ``reader``) and the samples' ``.json``.

    A tar that cannot be read to the end keeps the samples before the damage and records
    the error as the uncached reader reports it; opening errors propagate.
    """
    with open(path, "rb") as f:
        fd = f.fileno()
        st = os.fstat(fd)
        counts, built = ReadCounts(), _IndexBuilder()
        error, cacheable = None, True
        try:
            for members in iter_local_samples(f, counts, reader):
                js = next(((off, size) for suffix, off, size in members if suffix == ".json"),
                          None)
                built.add(*uid_status(os.pread(fd, js[1], js[0]) if js else None), members)
        except (tarfile.TarError, OSError, EOFError, ValueError) as e:
            error = f"{type(e).__name__}: {e}"
            cacheable = not isinstance(e, OSError)  # I/O errors may be transient
        end = os.fstat(fd)
        if (end.st_size, end.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            cacheable = False
        return built.build(st, counts, error, cacheable)


def _index_file(cache: Path, path: str, size: int, mtime_ns: int) -> Path:
    return cache / file_cache_name(INDEX_FORMAT, path, size, mtime_ns, ".idx")


def save_tar_index(file: Path, path: str, tar_index: TarIndex) -> None:
    """``magic, u64 header length, JSON header, samples, members`` (raw little-endian
    records), written atomically; no fsync: a torn file fails its checksum and is rebuilt."""
    body = tar_index.samples.tobytes() + tar_index.members.tobytes()
    header = json.dumps({
        "format": INDEX_FORMAT, "dtypes": _DTYPES, "path": path, "size": tar_index.size,
        "mtime_ns": tar_index.mtime_ns, "samples": len(tar_index.samples),
        "members": len(tar_index.members), "suffixes": tar_index.suffixes,
        "skipped_members": tar_index.skipped_members, "error": tar_index.error,
        "crc32": zlib.crc32(body),
    }, sort_keys=True).encode("ascii")  # ensure_ascii: suffixes may hold lone surrogates
    with atomic_open(file, "wb", fsync=False) as f:
        f.write(_INDEX_MAGIC + len(header).to_bytes(8, "little") + header)
        f.write(body)


def _read_index_header(data: bytes) -> tuple[dict, int]:
    """The JSON header of an index file's bytes (or its first bytes) and where the body
    starts; ``ValueError`` if it is not a readable index header."""
    if not data.startswith(_INDEX_MAGIC):
        raise ValueError("not a tar index")
    start = len(_INDEX_MAGIC) + 8
    end = start + int.from_bytes(data[len(_INDEX_MAGIC):start], "little")
    try:
        h = json.loads(data[start:end])
    except ValueError as e:
        raise ValueError(f"unreadable header: {e}") from None
    if not isinstance(h, dict):
        raise ValueError("unreadable header")
    return h, end


def load_tar_index(file: Path, path: str, st: os.stat_result) -> TarIndex:
    """Read and validate an index file; ``ValueError`` says why it cannot be used."""
    data = file.read_bytes()
    h, end = _read_index_header(data)
    want = {"format": INDEX_FORMAT, "dtypes": _DTYPES, "path": path, "size": st.st_size,
            "mtime_ns": st.st_mtime_ns}
    if any(h.get(k) != v for k, v in want.items()):
        raise ValueError("made by another version or for another file")
    n, m = int(h["samples"]), int(h["members"])
    body = data[end:]
    if n < 0 or m < 0 or len(body) != n * _SAMPLE_DTYPE.itemsize + m * _MEMBER_DTYPE.itemsize:
        raise ValueError("truncated")
    if zlib.crc32(body) != h["crc32"]:
        raise ValueError("checksum mismatch")
    samples = np.frombuffer(body, _SAMPLE_DTYPE, n)
    members = np.frombuffer(body, _MEMBER_DTYPE, m, offset=n * _SAMPLE_DTYPE.itemsize)
    suffixes = h["suffixes"]
    _check_index(samples, members, suffixes, st.st_size)
    return TarIndex(samples, members, suffixes, st.st_size, st.st_mtime_ns,
                    int(h["skipped_members"]), h["error"])


def prune_index_cache(cache: str | os.PathLike | None = None, dry_run: bool = False) -> dict:
    """Delete the index files of ``cache`` (default: :func:`default_index_cache`) that no
    reshard will read again: those of tars that are gone or have changed since (size or
    mtime), those of another index format or unreadable, and temp files of killed runs
    (:func:`.util.is_stale_temp`). Returns ``{"dir", "kept", "removed", "removed_bytes",
    "reasons"}``; ``dry_run`` only counts."""
    folder = Path(cache).expanduser() if cache is not None else default_index_cache()
    summary = {"dir": str(folder), "kept": 0, "removed": 0, "removed_bytes": 0,
               "reasons": Counter()}
    if not folder.is_dir():
        return summary
    for file in sorted(folder.iterdir()):
        if not file.is_file():
            continue
        st = file.stat()
        if file.name.startswith(".") and ".idx.tmp-" in file.name:
            if not is_stale_temp(file):
                continue  # a live run is writing it
            reason = "temp file of a killed run"
        elif file.suffix == ".idx":
            reason = _stale_reason(folder, file)
        else:
            continue  # not ours
        if reason is None:
            summary["kept"] += 1
            continue
        summary["removed"] += 1
        summary["removed_bytes"] += st.st_size
        summary["reasons"][reason] += 1
        if not dry_run:
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
    summary["reasons"] = dict(sorted(summary["reasons"].items()))
    return summary


def _stale_reason(folder: Path, file: Path) -> str | None:
    """Why the index file will never be read again, or None if it may be."""
    try:
        with open(file, "rb") as f:
            head = f.read(len(_INDEX_MAGIC) + 8)
            head += f.read(int.from_bytes(head[len(_INDEX_MAGIC):], "little")
                           if len(head) == len(_INDEX_MAGIC) + 8 else 0)
        h, _ = _read_index_header(head)
    except (OSError, ValueError):
        return "unreadable"
    if h.get("format") != INDEX_FORMAT or h.get("dtypes") != _DTYPES:
        return "other index format"
    path = h.get("path")
    if not isinstance(path, str):
        return "unreadable"
    try:
        st = os.stat(path)
    except OSError:
        return "tar gone"
    if (st.st_size, st.st_mtime_ns) != (h.get("size"), h.get("mtime_ns")):
        return "tar changed"
    if _index_file(folder, path, st.st_size, st.st_mtime_ns).name != file.name:
        return "unreadable"  # renamed or copied: never looked up under this name
    return None


def _check_index(samples: np.ndarray, members: np.ndarray, suffixes, size: int) -> None:
    if not (isinstance(suffixes, list) and all(isinstance(x, str) for x in suffixes)):
        raise ValueError("bad suffix table")
    if int(samples["members"].sum(dtype=np.int64)) != len(members):
        raise ValueError("member counts do not add up")
    if len(samples) and int(samples["status"].max()) > UID_BAD:
        raise ValueError("bad sample status")
    if len(members) and (int(members["suffix"].max()) >= len(suffixes)
                         or int(members["offset"].min()) < 0 or int(members["size"].min()) < 0
                         or int((members["offset"] + members["size"]).max()) > size):
        raise ValueError("member outside the tar")


def tar_index_cached(url: str, cache: Path | None,
                     reader: str = "auto") -> tuple[TarIndex, str]:
    """The local tar's index and where it came from: ``"reused"`` (valid cache file),
    ``"built"`` (walked and saved), ``"not saved"`` (walked; could not or should not be
    saved) or ``"off"`` (walked, no cache)."""
    path = os.path.abspath(url)
    if cache is not None:
        st = os.stat(path)
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return load_tar_index(_index_file(cache, path, st.st_size, st.st_mtime_ns), path,
                                  st), "reused"
    tar_index = walk_tar_index(path, reader)
    if cache is None:
        return tar_index, "off"
    if not tar_index.cacheable:
        return tar_index, "not saved"
    try:
        save_tar_index(_index_file(cache, path, tar_index.size, tar_index.mtime_ns), path,
                       tar_index)
    except OSError:  # read-only or full cache folder: the run goes on without it
        return tar_index, "not saved"
    return tar_index, "built"
