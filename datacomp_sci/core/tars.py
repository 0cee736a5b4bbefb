"""Tar shards as webdataset and DataComp's tools see them: reading samples (members
grouped by key with webdataset's own ``group_by_keys``), the uid in each sample's
``.json``, and writing members with fixed, reproducible headers.

Two readers list a local tar's members: libarchive where :mod:`.tarscan` vouches that it
reads the tar exactly as Python's ``tarfile`` does (much less CPU for img2dataset shards,
which carry a PAX header per member), else ``tarfile`` itself, the reference. Both stop
with ``tarfile.ReadError`` at damage, after the last complete sample. Used by resharding
(to list and copy members) and by deduplication (to hash images).
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from datacomp_sci.core import tarscan


@dataclass
class ReadCounts:
    """What reading a tar skipped or could not use (a sample's uid status counters)."""

    no_uid: int = 0  # no .json, or a .json without a uid
    bad_json: int = 0  # .json that does not parse
    bad_uid: int = 0  # uid that is not 32 hex characters
    skipped_members: int = 0  # non-file members, names without an extension, repeated names
    tar_reader: str | None = None  # who listed the members: "libarchive" or "tarfile"


TAR_MTIME = 0


TAR_MODE = 0o444


TAR_OWNER = "bigdata"  # webdataset TarWriter's user/group name


BLOCK = tarfile.BLOCKSIZE


RECORD = tarfile.RECORDSIZE


UID_KEY = np.dtype((np.void, 16))


class _CountingReader:
    """A read-only stream that counts the bytes it delivers (for truncation checks)."""

    def __init__(self, f):
        self.f, self.n = f, 0

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.n += len(data)
        return data


_WDS_FIELDS = ("__key__", "__url__")  # what webdataset's group_by_keys adds to a sample


def _group_by_key(members: Iterable[tuple | None], counts: ReadCounts,
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


def iter_tar_samples(fileobj, counts: ReadCounts) -> Iterator[list[tuple[str, bytes]]]:
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
            if src.n < tf.offset + BLOCK:
                raise tarfile.ReadError(
                    f"truncated archive: {src.n} bytes, the end marker is missing")

        members = ((info.name, tf.extractfile(info).read()) if info.isfile() else None
                   for info in tf)
        yield from _group_by_key(members, counts, check_end)


def tar_end(size: int) -> bytes:
    """End-of-archive blocks, padded to a record as tarfile does."""
    size += 2 * BLOCK
    return b"\0" * (2 * BLOCK + (-size) % RECORD)


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
    return b"".join((tar_header(name, len(data)), data, b"\0" * ((-len(data)) % BLOCK)))


UID_OK, UID_MISSING, UID_BAD_JSON, UID_BAD = range(4)  # why a sample has (no) uid


UID_STATUS_COUNTER = {UID_MISSING: "no_uid", UID_BAD_JSON: "bad_json", UID_BAD: "bad_uid"}


def uid_status(raw: bytes | None) -> tuple[bytes | None, int]:
    """The uid in a sample's ``.json`` as 16 big-endian bytes (or None), and its status."""
    if raw is None:
        return None, UID_MISSING
    try:
        uid = json.loads(raw).get("uid")
    except (ValueError, AttributeError, RecursionError):
        return None, UID_BAD_JSON
    if not uid:
        return None, UID_MISSING
    try:
        key = bytes.fromhex(uid) if isinstance(uid, str) and len(uid) == 32 else None
    except ValueError:
        key = None
    return (key, UID_OK) if key is not None else (None, UID_BAD)


Member = tuple[str, int, int]  # (suffix, data offset in the data source, size)


def iter_local_samples(f, counts: ReadCounts,
                       reader: str = "auto") -> Iterator[list[Member]]:
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


SAMPLE_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")  # in the order a sample's image is picked


def iter_sample_images(f) -> Iterator[tuple[str, int, int] | None]:
    """Per sample of a local tar (listed by :func:`iter_local_samples`): ``(uid, image
    offset, image size)``, or None for a sample without an image, a ``.json`` or a uid.
    Only each ``.json`` is read; the image is left for the caller to read by offset.
    Raises as :func:`iter_local_samples` at damage, after the samples before it."""
    fd = f.fileno()
    for members in iter_local_samples(f, ReadCounts()):
        found = {suffix[1:].lower(): (offset, size) for suffix, offset, size in members}
        ext = next((e for e in SAMPLE_IMAGE_EXTS if e in found), None)
        try:
            meta = json.loads(os.pread(fd, found["json"][1], found["json"][0])) \
                if "json" in found else {}
        except ValueError:
            meta = {}
        uid = meta.get("uid") if isinstance(meta, dict) else None
        if ext is None or not isinstance(uid, str):
            yield None
        else:
            yield (uid, *found[ext])
