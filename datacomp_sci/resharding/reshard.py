"""Reshard pools by a subset file, with DataComp's resharder semantics (docs/formats.md, "Resharding").

For every input sample, the uid in its ``.json`` is looked up in the sorted subset
(binary search over 16-byte big-endian keys); a uid listed k times is written k times
with keys ``{uid}-{j}``, j = 0..k-1. Members are copied byte for byte under the new key;
their order inside a sample, and the order of samples, is the input's. Outputs:
``{N:08d}.tar`` of at most ``shard_size`` samples, ``{N:08d}_stats.json``,
``sample_ids.npy`` (the subset), ``missing_uids.npy`` (subset uids not found in the
input), ``meta.json`` (what DataComp's and our ``train`` read) and ``reshard_report.json``.

Beyond upstream:

* Deterministic for any number of workers. Phase 1 indexes every input shard in
  parallel: its members are listed (by libarchive where :mod:`.tarscan` vouches that it
  reads the tar as tarfile does, else by tarfile's own reader; seeking over the data),
  grouped into samples by webdataset's own ``group_by_keys``, each sample's ``.json`` is
  read for its uid, and for the kept samples the new tar headers (``in_{i}.hdr``) and
  the byte ranges of their data in the input (``in_{i}.npz``) are written under
  ``OUTPUT/_work`` (remote inputs are streamed once and their kept data stored in
  ``in_{i}.data``). Phase 2 numbers output samples in (input shard order,
  member order), cuts shards by count, and writes each output shard (in parallel) from
  the headers and kernel-side copies (``copy_file_range``) of the input data. Tar headers
  carry fixed mtime/uid/gid/names/mode (as webdataset's ``TarWriter`` with ``mtime``
  set), so the same inputs give the same bytes.
* Header index cache (local inputs): what phase 1 learns from a tar that does not depend
  on the subset (per sample: uid or why it has none, member suffixes, data offsets and
  sizes) is saved once per input tar under ``--index-cache`` (default
  ``$XDG_CACHE_HOME/datacomp-sci/tar-index``), named by a hash of (absolute path, size,
  mtime_ns, index format); a later reshard of the same pool with any subset reads it
  instead of walking the tar. An index whose header, size, mtime or checksum does not
  match is ignored and rebuilt. Outputs are the same bytes with or without it.
* Resumable: each phase-1 result and each output shard is written atomically and skipped
  when present; ``meta.json`` is written last and ``_work`` removed after it. An input
  tar whose size or mtime changed since it was indexed is refused on resume.
* Inputs: pool folders, shard folders, reshard outputs, single tars, globs, brace
  patterns and fsspec URLs (read as streams), several at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from datacomp_sci import __version__
from datacomp_sci.core import tarscan
from datacomp_sci.core.uids import SUBSET_DTYPE, load_subset, u8u8_to_uids
from datacomp_sci.core.util import (
    atomic_open,
    atomic_write_json,
    dumps_stable,
    file_cache_name,
    is_stale_temp,
    remove_stale_temps,
    sha256_file,
    user_cache_dir,
)

FORMAT = "datacomp-sci/reshard/1"
OUTPUT_SHARD_FORMAT = "{:08d}.tar"
TAR_MTIME = 0
TAR_MODE = 0o444
TAR_OWNER = "bigdata"  # webdataset TarWriter's user/group name
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_KEY = np.dtype((np.void, 16))


@dataclass(frozen=True)
class ReshardOptions:
    shard_size: int = 10000
    workers: int = 1
    overwrite: bool = False
    keep_work: bool = False
    index_cache: str | os.PathLike | None = None  # None: default_index_cache()
    use_index_cache: bool = True  # False: neither read nor write header indexes
    tar_reader: str | None = None  # auto|libarchive|tarfile; None: $DATACOMP_SCI_TAR_READER or auto


@dataclass
class ShardResult:
    """Phase-1 result for one input shard (``_work/in_{i:08d}.json``)."""

    index: int
    url: str
    processed: int = 0  # samples read
    kept: int = 0  # input samples whose uid is in the subset
    written: int = 0  # output samples (kept samples times their multiplicity)
    no_uid: int = 0  # no .json, or a .json without a uid
    bad_json: int = 0  # .json that does not parse
    bad_uid: int = 0  # uid that is not 32 hex characters
    skipped_members: int = 0  # non-file members or names without an extension
    error: str | None = None  # the shard could not be read to the end (samples before kept)
    # header index: "reused", "built", "not saved", "off", None (remote); not in the report,
    # which must not depend on the cache
    index_cache: str | None = None
    # who listed the members of a local tar: "libarchive", "tarfile", None (index reused,
    # or remote: tarfile's stream reader); not in the report either
    tar_reader: str | None = None


@dataclass
class ReshardResult:
    output: str
    meta: dict
    report: dict
    already_complete: bool = False
    warnings: list[str] = field(default_factory=list)
    index_cache: dict = field(default_factory=dict)  # {"dir", "reused", "built", "not saved"}
    tar_reader: dict = field(default_factory=dict)  # {"reader": line, "libarchive": n, "tarfile": n}


# ---------------------------------------------------------------- inputs
@dataclass(frozen=True)
class InputShard:
    index: int  # position in the run's input order
    url: str  # local path or fsspec URL of the tar


@dataclass
class ResolvedInputs:
    specs: list[str]
    shards: list[InputShard]
    skipped: list[str]  # "url (reason)"


def _is_pattern(spec: str) -> bool:
    return any(c in spec for c in "*?[")


def _meta_shards(fs, folder: str) -> list[str] | None:
    meta = f"{folder}/meta.json"
    if not fs.exists(meta):
        return None
    with fs.open(meta, "rb") as f:
        info = json.load(f)
    fmt = info.get("output_shard_format", OUTPUT_SHARD_FORMAT)
    return [f"{folder}/{fmt.format(i)}" for i in range(int(info["output_shard_count"]))]


def _expand_spec(spec: str) -> tuple[object, list[str], bool]:
    """(filesystem, tar paths, explicit) for one input argument."""
    import braceexpand
    import fsspec

    fs, _ = fsspec.core.url_to_fs(spec)
    if "{" in spec:
        items = list(braceexpand.braceexpand(spec))
        return fs, [fsspec.core.url_to_fs(i)[1] for i in items], False
    path = fsspec.core.url_to_fs(spec)[1]
    if _is_pattern(spec):
        return fs, sorted(p for p in fs.glob(path) if p.endswith(".tar")), False
    if fs.isdir(path):
        listed = _meta_shards(fs, path.rstrip("/"))
        if listed is not None:
            return fs, listed, False
        if fs.isdir(f"{path.rstrip('/')}/shards"):
            path = f"{path.rstrip('/')}/shards"
        return fs, sorted(p for p in fs.glob(f"{path.rstrip('/')}/*.tar")), False
    if fs.exists(path):
        return fs, [path], True
    raise FileNotFoundError(f"{spec}: no such input (give a pool, a folder of shards, a tar, "
                            "a glob or a brace pattern)")


def resolve_inputs(specs: list[str]) -> ResolvedInputs:
    """Input arguments -> ordered, de-duplicated shard list (tars need ``_stats.json``)."""
    if not specs:
        raise ValueError("give at least one input (--input)")
    shards: list[InputShard] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for spec in specs:
        fs, tars, explicit = _expand_spec(spec)
        if not tars:
            raise FileNotFoundError(f"{spec}: no shards ({{N:08d}}.tar) found")
        stats_by_dir: dict[str, set[str]] = {}
        for tar in tars:
            url = tar if fs.protocol in ("file", ("file", "local")) else fs.unstrip_protocol(tar)
            if url in seen:
                skipped.append(f"{url} (given twice)")
                continue
            folder = tar.rsplit("/", 1)[0]
            if folder not in stats_by_dir:
                stats_by_dir[folder] = set(fs.glob(f"{folder}/*_stats.json"))
            if not explicit and f"{tar[:-4]}_stats.json" not in stats_by_dir[folder]:
                skipped.append(f"{url} (no _stats.json)")
                continue
            seen.add(url)
            shards.append(InputShard(len(shards), url))
    if not shards:
        raise FileNotFoundError(f"no finished input shards in {specs} ({len(skipped)} skipped)")
    return ResolvedInputs(list(specs), shards, skipped)


# ---------------------------------------------------------------- tar reading/writing
class _CountingReader:
    """A read-only stream that counts the bytes it delivers (for truncation checks)."""

    def __init__(self, f):
        self.f, self.n = f, 0

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.n += len(data)
        return data


_WDS_FIELDS = ("__key__", "__url__")  # what webdataset's group_by_keys adds to a sample


def _group_by_key(members: Iterable[tuple | None], counts: ShardResult,
                  check_end: Callable[[], None]) -> Iterator[list[tuple]]:
    """Group consecutive file members into samples with webdataset's own
    ``group_by_keys`` (key and extension by its ``base_plus_ext``; extension case kept,
    since members are copied unchanged).

    ``members`` gives ``(name, *values)`` per file member and None per other member (a
    directory, link, ...); a sample is the list of ``(.extension, *values)`` of its
    members, in tar order. Counted in ``skipped_members``: non-file members, names
    without a key and an extension, and a name repeated within a sample (webdataset
    refuses it; that member is skipped). ``check_end()`` runs after the last member,
    before the last sample is yielded, so a truncated archive raises instead of yielding
    an incomplete sample.
    """
    from webdataset.tariterators import base_plus_ext, group_by_keys

    def files() -> Iterator[dict]:
        for member in members:
            if member is None:
                counts.skipped_members += 1
                continue
            yield {"fname": member[0], "data": member[1:], "__url__": None}
        check_end()

    def keys(name: str) -> tuple[str | None, str | None]:
        key, ext = base_plus_ext(name)
        if key is None:
            counts.skipped_members += 1
        return key, ext

    def skip_repeated_name(exn: Exception) -> bool:
        counts.skipped_members += 1
        return True  # go on with the next member

    for sample in group_by_keys(files(), keys=keys, lcase=False, handler=skip_repeated_name):
        yield [(f".{ext}", *values) for ext, values in sample.items() if ext not in _WDS_FIELDS]


def iter_tar_samples(fileobj, counts: ShardResult) -> Iterator[list[tuple[str, bytes]]]:
    """Group a tar stream's file members into samples: [(suffix, bytes), ...] per key.

    Consecutive members sharing a key form one sample (webdataset's ``group_by_keys``). A
    truncated archive (which tarfile's stream mode ends silently) raises ``ReadError``
    after the last complete sample; the incomplete one is not yielded.
    """
    src = _CountingReader(fileobj)

    with tarfile.open(fileobj=src, mode="r|") as tf:
        def check_end() -> None:
            while src.read(1 << 20):
                pass
            if src.n < tf.offset + _BLOCK:
                raise tarfile.ReadError(
                    f"truncated archive: {src.n} bytes, the end marker is missing")

        members = ((info.name, tf.extractfile(info).read()) if info.isfile() else None
                   for info in tf)
        yield from _group_by_key(members, counts, check_end)


def tar_end(size: int) -> bytes:
    """End-of-archive blocks, padded to a record as tarfile does."""
    size += 2 * _BLOCK
    return b"\0" * (2 * _BLOCK + (-size) % _RECORD)


def _fixed_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = TAR_MTIME
    info.mode = TAR_MODE
    info.uname = info.gname = TAR_OWNER
    return info


def _tarfile_header(name: str, size: int) -> bytes:
    """The header tarfile writes for ``name`` (USTAR; PAX for names over 100 bytes, which
    USTAR cannot hold without a directory to split off)."""
    fits = len(name.encode("utf-8", "surrogateescape")) <= 100
    fmt = tarfile.USTAR_FORMAT if fits else tarfile.PAX_FORMAT
    return _fixed_info(name, size).tobuf(fmt, "utf-8", "surrogateescape")


def _ustar_template() -> tuple[bytes, int]:
    """A fixed-field USTAR header with an empty name and size 0, and the checksum of its
    bytes outside the name, size and checksum fields (the checksum field counts as spaces)."""
    buf = _tarfile_header("", 0)
    rest = buf[100:124] + buf[136:148] + b" " * 8 + buf[156:]
    return buf, sum(rest)


_TEMPLATE, _TEMPLATE_SUM = _ustar_template()
_NAME_PAD = b"\0" * 100
_MAX_USTAR_SIZE = 8**11  # 11 octal digits


def tar_header(name: str, size: int) -> bytes:
    """Header of one member, byte-identical to ``TarInfo.tobuf`` with the fixed fields.

    The common case (name of at most 100 bytes, size under 8 GiB) patches the name, size
    and checksum fields of a cached USTAR template; anything else goes through tarfile.
    """
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > 100 or size >= _MAX_USTAR_SIZE or size < 0:
        return _tarfile_header(name, size)
    size_field = b"%011o\0" % size
    chksum = _TEMPLATE_SUM + sum(raw) + sum(size_field)
    return b"".join((raw, _NAME_PAD[len(raw):], _TEMPLATE[100:124], size_field,
                     _TEMPLATE[136:148], b"%06o\0 " % chksum, _TEMPLATE[156:]))


def tar_member_bytes(name: str, data: bytes) -> bytes:
    """One tar member (header + data + padding) with fixed, reproducible header fields."""
    return b"".join((tar_header(name, len(data)), data, b"\0" * ((-len(data)) % _BLOCK)))


# ---------------------------------------------------------------- phase 1: index one shard
def _work_file(path: str | os.PathLike):
    """Temp-then-rename without fsync: ``_work`` files only need to survive a killed
    process (the page cache keeps them), not a power cut; final outputs are fsynced."""
    return atomic_open(path, "wb", fsync=False, buffering=1 << 20)


def _is_local(url: str) -> bool:
    import fsspec.utils

    return fsspec.utils.get_protocol(url) in ("file", "local")


_OK, _NO_UID, _BAD_JSON, _BAD_UID = range(4)  # why a sample has (no) uid
_STATUS_COUNTER = {_NO_UID: "no_uid", _BAD_JSON: "bad_json", _BAD_UID: "bad_uid"}


def _uid_status(raw: bytes | None) -> tuple[bytes | None, int]:
    """The uid in a sample's ``.json`` as 16 big-endian bytes (or None), and its status."""
    if raw is None:
        return None, _NO_UID
    try:
        uid = json.loads(raw).get("uid")
    except (ValueError, AttributeError, RecursionError):
        return None, _BAD_JSON
    if not uid:
        return None, _NO_UID
    try:
        key = bytes.fromhex(uid) if isinstance(uid, str) and len(uid) == 32 else None
    except ValueError:
        key = None
    return (key, _OK) if key is not None else (None, _BAD_UID)


def _uid_key(raw: bytes | None, counts: ShardResult) -> bytes | None:
    """The uid in a sample's ``.json`` as 16 big-endian bytes, or None (counted)."""
    key, status = _uid_status(raw)
    if status != _OK:
        setattr(counts, _STATUS_COUNTER[status], getattr(counts, _STATUS_COUNTER[status]) + 1)
    return key


def _multiplicity(keys: np.ndarray, key: bytes) -> int:
    k = np.frombuffer(key, dtype=_KEY)
    lo = np.searchsorted(keys, k, "left")[0]
    if lo == len(keys) or keys[lo] != k[0]:
        return 0
    return int(np.searchsorted(keys, k, "right")[0] - lo)


_Member = tuple[str, int, int]  # (suffix, data offset in the data source, size)


def iter_local_samples(f, counts: ShardResult,
                       reader: str = "auto") -> Iterator[list[_Member]]:
    """Group a local tar's file members into samples without reading their data.

    The members are listed by libarchive where :mod:`.tarscan` can vouch that it reads
    the tar as ``tarfile`` does, else by tarfile's own reader (which parses every header,
    PAX and GNU extensions included, and seeks over the data); ``reader="tarfile"``
    forces the latter. Members are grouped by key as :func:`iter_tar_samples` does. A
    truncated archive, or one whose headers stop before its end-of-archive marker (where
    tarfile ends silently), raises ``ReadError`` after the last complete sample.
    """
    fd = f.fileno()
    listed = tarscan.scan_regular_members(fd) if reader != "tarfile" else None
    if listed is not None:
        counts.tar_reader = "libarchive"
        yield from _group_by_key(listed, counts, lambda: None)
        return
    counts.tar_reader = "tarfile"
    f.seek(0)
    size = os.fstat(fd).st_size
    last: list[tuple[int, int]] = [(0, 0)]

    def members(tf: tarfile.TarFile) -> Iterator[tuple | None]:
        for info in tf:
            if info.isfile():
                last[0] = (info.offset_data, info.size)
                yield info.name, info.offset_data, info.size
            else:
                yield None

    with tarfile.open(fileobj=f, mode="r:") as tf:
        def check_end() -> None:
            # tf.offset: where tarfile stopped, having read no member header there
            problem = tarscan.TRUNCATED.format(size=size) if sum(last[0]) > size \
                else tarscan.end_problem(fd, tf.offset)
            if problem is not None:
                raise tarfile.ReadError(problem)

        yield from _group_by_key(members(tf), counts, check_end)


# ---------------------------------------------------------------- phase 1: header index (cached)
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
    (in tar order) its uid and status (``_OK``/``_NO_UID``/``_BAD_JSON``/``_BAD_UID``)
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
        for code, name in _STATUS_COUNTER.items():
            setattr(res, name, getattr(res, name) + int(counts[code]))
        uids = np.ascontiguousarray(self.samples["uid"]).view(_KEY)
        mult = np.searchsorted(keys, uids, "right") - np.searchsorted(keys, uids, "left")
        mult[status != _OK] = 0
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

    def add(self, key: bytes | None, status: int, members: list[_Member]) -> None:
        self.samples.append((key or bytes(16), status, len(members)))
        for suffix, offset, size in members:
            sid = self.suffix_ids.setdefault(suffix, len(self.suffix_ids))
            self.members.append((offset, size, sid))

    def build(self, st: os.stat_result, counts: ShardResult, error: str | None,
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
        counts, built = ShardResult(-1, str(path)), _IndexBuilder()
        error, cacheable = None, True
        try:
            for members in iter_local_samples(f, counts, reader):
                js = next(((off, size) for suffix, off, size in members if suffix == ".json"),
                          None)
                built.add(*_uid_status(os.pread(fd, js[1], js[0]) if js else None), members)
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
    if len(samples) and int(samples["status"].max()) > _BAD_UID:
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


class _ShardIndex:
    """Phase-1 output for one input shard: the new headers of every output member, and
    where each member's data lies in the data source (the input tar itself, or for
    remote inputs ``in_{i}.data``, which holds the kept members' data)."""

    def __init__(self, headers) -> None:
        self.headers = headers  # file receiving the header bytes
        self.rows: list[tuple[int, int, int]] = []  # (data offset, size, header length)
        self.sample_members: list[int] = []  # members per output sample
        self.found: list[bytes] = []

    def add(self, key: bytes, multiplicity: int, members: list[_Member]) -> None:
        uid = key.hex()
        self.found.append(key)
        for j in range(multiplicity):
            for suffix, offset, size in members:
                header = tar_header(f"{uid}-{j}{suffix}", size)
                self.headers.write(header)
                self.rows.append((offset, size, len(header)))
            self.sample_members.append(len(members))

    def save(self, path: Path, source: str) -> None:
        st = os.stat(source)
        with _work_file(path) as f:
            np.savez(f, members=np.asarray(self.rows, dtype=np.int64).reshape(-1, 3),
                     sample_members=np.asarray(self.sample_members, dtype=np.int64),
                     found=np.frombuffer(b"".join(self.found), dtype=_KEY),
                     source=np.asarray([st.st_size, st.st_mtime_ns], dtype=np.int64))


def _index_local(url: str, keys: np.ndarray, index: _ShardIndex, res: ShardResult,
                 cache: Path | None, reader: str) -> None:
    """Apply the subset to the local tar's header index (cached, or built now)."""
    tar_index, res.index_cache = tar_index_cached(url, cache, reader)
    res.tar_reader = tar_index.reader
    tar_index.apply(keys, index, res)


def _index_remote(url: str, keys: np.ndarray, index: _ShardIndex, res: ShardResult,
                  data_path: Path) -> None:
    import fsspec

    with _work_file(data_path) as data, fsspec.open(url, "rb", block_size=1 << 22) as f:
        try:
            for members in iter_tar_samples(f, res):
                res.processed += 1
                js = next((d for suffix, d in members if suffix == ".json"), None)
                key = _uid_key(js, res)
                mult = _multiplicity(keys, key) if key is not None else 0
                if mult:
                    res.kept += 1
                    placed = []
                    for suffix, d in members:
                        placed.append((suffix, data.tell(), len(d)))
                        data.write(d)
                    index.add(key, mult, placed)
        finally:
            data.flush()


def filter_shard(shard: InputShard, keys_path: str, work: str,
                 index_cache: str | None = None, reader: str = "auto") -> ShardResult:
    """Phase 1 for one input shard: the kept samples' new headers (``in_{i}.hdr``) and
    data locations (``in_{i}.npz``); ``in_{i}.json`` (the counts) is written last.
    Local shards use (and fill) the header index cache ``index_cache`` unless it is None."""
    keys = np.load(keys_path, mmap_mode="r")
    res = ShardResult(shard.index, shard.url)
    stem = Path(work) / f"in_{shard.index:08d}"
    local = _is_local(shard.url)
    source = shard.url if local else f"{stem}.data"
    with _work_file(f"{stem}.hdr") as headers:
        index = _ShardIndex(headers)
        try:
            if local:
                _index_local(shard.url, keys, index, res,
                             Path(index_cache) if index_cache is not None else None, reader)
            else:
                _index_remote(shard.url, keys, index, res, Path(source))
        except (tarfile.TarError, OSError, EOFError, ValueError) as e:
            res.error = f"{type(e).__name__}: {e}"
        res.written = len(index.sample_members)
    index.save(Path(f"{stem}.npz"), source)
    with _work_file(f"{stem}.json") as f:  # last: marks the shard as done
        f.write(dumps_stable(asdict(res)).encode())
    return res


def _load_result(work: Path, index: int) -> ShardResult | None:
    path = work / f"in_{index:08d}.json"
    if not path.exists():
        return None
    return ShardResult(**json.loads(path.read_text()))


# ---------------------------------------------------------------- phase 2: assemble
@dataclass(frozen=True)
class _Run:
    """Output members [start, stop) of one input shard's index (a contiguous run)."""

    stem: str  # _work/in_{i}
    source: str  # where the data lies: the input tar, or _work/in_{i}.data
    start: int
    stop: int


def _output_plan(work: Path, results: list[ShardResult],
                 shard_size: int) -> Iterator[tuple[list[_Run], int]]:
    """Yield, per output shard, its runs of members and its sample count."""
    runs: list[_Run] = []
    count = 0
    for r in results:
        stem = work / f"in_{r.index:08d}"
        per_sample = np.load(f"{stem}.npz")["sample_members"]
        bounds = np.concatenate([[0], np.cumsum(per_sample)])
        source = r.url if _is_local(r.url) else f"{stem}.data"
        pos = 0
        while pos < len(per_sample):
            take = min(shard_size - count, len(per_sample) - pos)
            runs.append(_Run(str(stem), source, int(bounds[pos]), int(bounds[pos + take])))
            pos += take
            count += take
            if count == shard_size:
                yield runs, count
                runs, count = [], 0
    if count:
        yield runs, count


class _TarSink:
    """Writes tar members to a raw fd: small pieces are gathered into one ``write``, member
    data is copied in the kernel (``copy_file_range``) where the platform allows."""

    SMALL = 1 << 14

    def __init__(self, fd: int) -> None:
        self.fd, self.pending, self.size = fd, bytearray(), 0
        self.kernel_copy = hasattr(os, "copy_file_range")

    def add(self, data: bytes) -> None:
        self.pending += data
        self.size += len(data)

    def flush(self) -> None:
        with memoryview(self.pending) as view:
            done = 0
            while done < len(view):
                done += os.write(self.fd, view[done:])
        self.pending.clear()

    def copy(self, src: int, offset: int, size: int) -> None:
        if size <= self.SMALL or not self.kernel_copy:
            self._read_copy(src, offset, size)
        else:
            self.flush()
            done = 0
            while done < size:
                try:
                    n = os.copy_file_range(src, self.fd, size - done, offset + done)
                except OSError:  # e.g. EXDEV on old kernels: copy through user space
                    self.kernel_copy = False
                    self._read_copy(src, offset + done, size - done)
                    break
                if n <= 0:
                    raise OSError("input shard shorter than indexed; rerun with --overwrite")
                done += n
            self.size += size
        self.add(b"\0" * ((-size) % _BLOCK))

    def _read_copy(self, src: int, offset: int, size: int) -> None:
        while size:
            data = os.pread(src, min(size, 1 << 24), offset)
            if not data:
                raise OSError("input shard shorter than indexed; rerun with --overwrite")
            self.add(data)
            offset, size = offset + len(data), size - len(data)
            if len(self.pending) >= 1 << 20:
                self.flush()


def _copy_run(run: _Run, sink: _TarSink) -> None:
    index = np.load(f"{run.stem}.npz")
    rows = index["members"]
    first = int(rows[:run.start, 2].sum())
    rows = rows[run.start:run.stop]
    with open(f"{run.stem}.hdr", "rb") as f:
        f.seek(first)
        headers = f.read(int(rows[:, 2].sum()))
    with open(run.source, "rb") as src:
        st = os.fstat(src.fileno())
        if [st.st_size, st.st_mtime_ns] != index["source"].tolist():
            raise FileExistsError(f"{run.source} changed after this run indexed it; "
                                  "rerun with --overwrite")
        pos = 0
        for offset, size, header_len in rows.tolist():
            sink.add(headers[pos:pos + header_len])
            pos += header_len
            sink.copy(src.fileno(), offset, size)


def _write_output_shard(out_dir: Path, work: Path, n: int, runs: list[_Run], count: int) -> None:
    name = OUTPUT_SHARD_FORMAT.format(n)
    with atomic_open(out_dir / name) as out:
        out.flush()
        sink = _TarSink(out.fileno())
        for run in runs:
            _copy_run(run, sink)
        sink.add(tar_end(sink.size))
        sink.flush()
    atomic_write_json(out_dir / f"{Path(name).stem}_stats.json", {"count": count, "successes": count})


def _run_phase2(out: Path, work: Path, results: list[ShardResult], opts: ReshardOptions) -> int:
    """Write every output shard not written yet; returns the number of output shards."""
    todo = []
    n_out = 0
    for n, (runs, count) in enumerate(_output_plan(work, results, opts.shard_size)):
        if not (out / f"{n:08d}_stats.json").exists():
            todo.append((out, work, n, runs, count))
        n_out = n + 1
    if opts.workers <= 1 or len(todo) <= 1:
        for args in todo:
            _write_output_shard(*args)
    else:
        with ProcessPoolExecutor(max_workers=min(opts.workers, len(todo))) as pool:
            for fut in [pool.submit(_write_output_shard, *args) for args in todo]:
                fut.result()
    return n_out


# ---------------------------------------------------------------- the run
def _subset_keys(subset: np.ndarray) -> np.ndarray:
    be = np.empty((len(subset), 2), dtype=">u8")
    be[:, 0] = subset["f0"]
    be[:, 1] = subset["f1"]
    return np.sort(be.view(_KEY).ravel())


def _keys_to_subset(keys: np.ndarray) -> np.ndarray:
    be = np.ascontiguousarray(keys).view(">u8").reshape(-1, 2)
    out = np.empty(len(be), dtype=SUBSET_DTYPE)
    out["f0"], out["f1"] = be[:, 0], be[:, 1]
    return out


def _fingerprint(inputs: list[InputShard], subset_sha: str, opts: ReshardOptions) -> dict:
    urls = "\n".join(s.url for s in inputs).encode()
    return {"format": FORMAT, "inputs_sha256": hashlib.sha256(urls).hexdigest(),
            "n_inputs": len(inputs), "subset_sha256": subset_sha, "shard_size": opts.shard_size}


def _prepare_output(out: Path, fingerprint: dict, opts: ReshardOptions) -> Path:
    work = out / "_work"
    if opts.overwrite and out.exists():
        shutil.rmtree(out)
    run_file = work / "run.json"
    if run_file.exists():
        if json.loads(run_file.read_text()) != fingerprint:
            raise FileExistsError(
                f"{out}: holds an unfinished reshard of other inputs/subset/shard size; "
                "rerun with the same arguments to resume, or pass --overwrite"
            )
    elif out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: not empty; choose a new folder or pass --overwrite")
    remove_stale_temps(out)  # of a killed run being resumed
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_file, fingerprint)
    return work


def _completed(out: Path, fingerprint: dict) -> dict | None:
    meta_path = out / "meta.json"
    if not meta_path.exists() or (out / "_work").exists():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("fingerprint") != fingerprint:
        raise FileExistsError(
            f"{out}: already holds a different reshard; choose a new folder or pass --overwrite"
        )
    return meta


def _run_phase1(inputs: list[InputShard], keys_path: Path, work: Path, workers: int,
                progress: Callable[[ShardResult], None],
                index_cache: Path | None = None, reader: str = "auto") -> list[ShardResult]:
    results: dict[int, ShardResult] = {}
    todo = []
    for s in inputs:
        done = _load_result(work, s.index)
        if done is None:
            todo.append(s)
        else:
            results[s.index] = done
            progress(done)
    cache = str(index_cache) if index_cache is not None else None
    if workers <= 1 or len(todo) <= 1:
        for s in todo:
            results[s.index] = filter_shard(s, str(keys_path), str(work), cache, reader)
            progress(results[s.index])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(filter_shard, s, str(keys_path), str(work), cache, reader)
                       for s in todo]
            for fut in futures:
                r = fut.result()
                results[r.index] = r
                progress(r)
    return [results[s.index] for s in inputs]


def _totals(results: list[ShardResult]) -> dict:
    total: Counter = Counter()
    for r in results:
        for k in ("processed", "kept", "written", "no_uid", "bad_json", "bad_uid", "skipped_members"):
            total[k] += getattr(r, k)
    return dict(total)


def _missing_and_duplicates(work: Path, results: list[ShardResult], keys: np.ndarray):
    parts = [np.load(work / f"in_{r.index:08d}.npz")["found"] for r in results]
    found = np.concatenate(parts) if parts else np.empty(0, dtype=_KEY)
    uniq_found = np.unique(found)
    uniq_subset = np.unique(keys)
    missing = uniq_subset[~np.isin(uniq_subset, uniq_found)]
    return _keys_to_subset(missing), int(len(found) - len(uniq_found))


def reshard(inputs: list[str], subset_path: str | os.PathLike, output: str | os.PathLike,
            opts: ReshardOptions = ReshardOptions(),
            progress: Callable[[int, int, dict], None] | None = None) -> ReshardResult:
    """Write the samples of ``inputs`` whose uid is in the subset to ``output`` (see module doc)."""
    if opts.shard_size < 1:
        raise ValueError("--shard-size must be at least 1")
    if opts.index_cache is not None and not opts.use_index_cache:
        raise ValueError("give --index-cache DIR or --no-index-cache, not both")
    subset_path = Path(subset_path)
    if not subset_path.exists():
        raise FileNotFoundError(f"{subset_path}: no such subset file")
    reader, reader_line = tarscan.resolve_reader(opts.tar_reader)
    resolved = resolve_inputs(inputs)
    out = Path(output).expanduser().resolve()
    fingerprint = _fingerprint(resolved.shards, sha256_file(subset_path), opts)
    if not opts.overwrite and (meta := _completed(out, fingerprint)) is not None:
        report = json.loads((out / "reshard_report.json").read_text())
        return ReshardResult(str(out), meta, report, already_complete=True)
    work = _prepare_output(out, fingerprint, opts)
    subset = load_subset(subset_path)
    keys = _subset_keys(subset)
    keys_path = work / "subset_keys.npy"
    if not keys_path.exists():
        with atomic_open(keys_path) as f:
            np.save(f, keys)

    totals: Counter = Counter()

    def step(r: ShardResult) -> None:
        totals["shards"] += 1
        totals["processed"] += r.processed
        totals["written"] += r.written
        if progress:
            progress(totals["shards"], len(resolved.shards), dict(totals))

    cache = _index_cache_dir(opts)
    results = _run_phase1(resolved.shards, keys_path, work, opts.workers, step, cache, reader)
    n_out = _run_phase2(out, work, results, opts)
    missing, dup_in_input = _missing_and_duplicates(work, results, keys)
    res = _finish(out, work, subset, missing, dup_in_input, results, resolved, fingerprint, n_out,
                  opts)
    res.index_cache = _cache_summary(cache, results)
    used = Counter(r.tar_reader for r in results if r.tar_reader is not None)
    res.tar_reader = {"reader": reader_line, "libarchive": used["libarchive"],
                      "tarfile": used["tarfile"]}
    if res.index_cache["not saved"]:
        res.warnings.append(f"{res.index_cache['not saved']} input shard header indexes could not "
                            f"be saved to {cache} (not writable?); the output is unaffected")
    return res


def _index_cache_dir(opts: ReshardOptions) -> Path | None:
    if not opts.use_index_cache:
        return None
    if opts.index_cache is None:
        return default_index_cache()
    return Path(opts.index_cache).expanduser().resolve()


def _cache_summary(cache: Path | None, results: list[ShardResult]) -> dict:
    """How the local input shards got their header index in this run (resumed shards
    keep what their first run recorded)."""
    seen = Counter(r.index_cache for r in results if r.index_cache is not None)
    return {"dir": str(cache) if cache is not None else None, "reused": seen["reused"],
            "built": seen["built"], "not saved": seen["not saved"]}


def _report_row(r: ShardResult) -> dict:
    row = asdict(r)
    del row["index_cache"], row["tar_reader"]  # the report is the same with or without them
    return row


def _finish(out: Path, work: Path, subset: np.ndarray, missing: np.ndarray, dup_in_input: int,
            results: list[ShardResult], resolved, fingerprint: dict, n_out: int,
            opts: ReshardOptions) -> ReshardResult:
    with atomic_open(out / "sample_ids.npy") as f:
        np.save(f, np.asarray(subset, dtype=SUBSET_DTYPE))
    with atomic_open(out / "missing_uids.npy") as f:
        np.save(f, missing)
    totals = _totals(results)
    errors = {r.url: r.error for r in results if r.error}
    report = {
        "inputs": resolved.specs, "input_shards": len(results),
        "skipped_input_shards": resolved.skipped, "unreadable_input_shards": errors,
        "subset_size": int(len(subset)), "missing_uids": int(len(missing)),
        "duplicate_uids_in_input": dup_in_input, **totals,
        "per_input_shard": [_report_row(r) for r in results],
    }
    atomic_write_json(out / "reshard_report.json", report)
    meta = {
        "output_shard_count": n_out, "output_shard_format": OUTPUT_SHARD_FORMAT,
        "processed_count": totals.get("processed", 0), "output_count": totals.get("written", 0),
        "input_shard_count": len(results), "shard_size": opts.shard_size,
        "missing_count": int(len(missing)), "no_uid_count": totals.get("no_uid", 0),
        "fingerprint": fingerprint, "datacomp_sci_version": __version__,
    }
    atomic_write_json(out / "meta.json", meta)
    if not opts.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return ReshardResult(str(out), meta, report, warnings=_warnings(report))


def _warnings(report: dict) -> list[str]:
    w = []
    if report["missing_uids"]:
        w.append(f"{report['missing_uids']} uids of the subset were not found in the input "
                 "(listed in missing_uids.npy)")
    for k in ("no_uid", "bad_json", "bad_uid"):
        if report.get(k):
            w.append(f"{report[k]} input samples skipped: {k}")
    if report["skipped_input_shards"]:
        w.append(f"{len(report['skipped_input_shards'])} input shards without _stats.json skipped "
                 "(unfinished download?)")
    if report["unreadable_input_shards"]:
        w.append(f"{len(report['unreadable_input_shards'])} input shards could not be read to the "
                 "end (see reshard_report.json)")
    if report["duplicate_uids_in_input"]:
        w.append(f"{report['duplicate_uids_in_input']} subset uids occur in more than one input "
                 "sample; each occurrence was written")
    return w


def missing_uids(output: str | os.PathLike) -> list[str]:
    """The subset uids a finished reshard did not find, as hex strings."""
    path = Path(output) / "missing_uids.npy"
    if not path.exists():
        raise FileNotFoundError(f"{output}: no missing_uids.npy (not a finished reshard output)")
    return u8u8_to_uids(np.load(path))
