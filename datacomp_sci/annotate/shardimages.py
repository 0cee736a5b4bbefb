"""Where each sample's image lies in a pool's shards: uid -> (tar, byte offset, size).

A pool's metadata rows name samples by uid; the images are members of the webdataset
shards (``DIR/shards/*.tar``), whose per-sample ``.json`` carries the uid. The shards are
listed as ``reshard`` and ``dedup`` list them (:func:`datacomp_sci.core.tars.
iter_local_samples`: libarchive or tarfile, grouped by webdataset's ``group_by_keys``),
reading only each sample's ``.json``; images are later read by offset with ``os.pread``.
A damaged tar keeps the samples listed before the damage.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datacomp_sci.core.tars import iter_sample_images
from datacomp_sci.core.util import parallel_map


@dataclass
class ShardImages:
    """The image members of one shard, by uid."""

    shard: str
    uids: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    missing: int = 0  # samples without an image, a json or a uid
    error: str | None = None  # the tar could not be read to its end


def _open_shard(shard: str, storage_options: dict | None = None):
    """A local tar; or one on object storage (an fsspec URL, opened with
    ``storage_options`` over fsspec's configured ones), copied to a temp file of this
    machine (the reader lists members by file descriptor; the offsets are the same)."""
    if "://" not in shard:
        return open(shard, "rb")
    import shutil
    import tempfile

    import fsspec

    fs, path = fsspec.core.url_to_fs(shard, **(storage_options or {}))
    tmp = tempfile.TemporaryFile(prefix="datacomp-sci-shard-")
    try:
        with fs.open(path, "rb", block_size=1 << 22) as src:
            shutil.copyfileobj(src, tmp, 1 << 22)
        tmp.seek(0)
    except BaseException:
        tmp.close()
        raise
    return tmp


def list_shard_images(shard: str, storage_options: dict | None = None) -> ShardImages:
    """uid, offset and size of every sample image of one webdataset tar."""
    out = ShardImages(shard)
    try:
        with _open_shard(shard, storage_options) as f:
            for sample in iter_sample_images(f):
                if sample is None:
                    out.missing += 1
                    continue
                out.uids.append(sample[0])
                out.offsets.append(sample[1])
                out.sizes.append(sample[2])
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        out.error = f"{type(e).__name__}: {e}"
    return out


@dataclass
class ImageIndex:
    """Every sample image of a pool's shards: ``locate(uids)`` gives row-aligned
    ``(shard index, offset, size)`` with shard index -1 where the uid has no image."""

    shards: list[str]
    uid_to_row: dict[str, int]
    shard_idx: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray
    missing: int = 0
    damaged: list[str] = field(default_factory=list)

    def locate(self, uids: list[str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.array([self.uid_to_row.get(u, -1) if u else -1 for u in uids], np.int64)
        found = rows >= 0
        shard = np.where(found, self.shard_idx[np.maximum(rows, 0)], -1) if len(rows) \
            else np.empty(0, np.int64)
        off = np.where(found, self.offsets[np.maximum(rows, 0)], 0) if len(rows) \
            else np.empty(0, np.int64)
        size = np.where(found, self.sizes[np.maximum(rows, 0)], 0) if len(rows) \
            else np.empty(0, np.int64)
        return shard, off, size


def pool_image_index(shards_dir: Path | list[str], workers: int = 1,
                     storage_options: dict | None = None) -> ImageIndex:
    """List the images of every ``*.tar`` in ``shards_dir`` (sorted; the first
    occurrence of a uid wins), or of the given shard paths or URLs (opened with
    ``storage_options``)."""
    import functools

    shards = sorted(str(p) for p in Path(shards_dir).glob("*.tar")) \
        if isinstance(shards_dir, (str, Path)) else list(shards_dir)
    uid_to_row: dict[str, int] = {}
    shard_idx: list[int] = []
    offsets: list[int] = []
    sizes: list[int] = []
    missing = 0
    damaged: list[str] = []
    for i, res in enumerate(parallel_map(functools.partial(list_shard_images, storage_options=storage_options),
                                         shards, workers)):
        missing += res.missing
        if res.error:
            damaged.append(f"{Path(res.shard).name} ({res.error})")
        for uid, off, size in zip(res.uids, res.offsets, res.sizes, strict=True):
            if uid not in uid_to_row:
                uid_to_row[uid] = len(offsets)
                shard_idx.append(i)
                offsets.append(off)
                sizes.append(size)
    return ImageIndex(shards, uid_to_row, np.asarray(shard_idx, np.int64),
                      np.asarray(offsets, np.int64), np.asarray(sizes, np.int64),
                      missing, damaged)


class ImageReader:
    """Reads image bytes by (shard index, offset, size), keeping one descriptor per tar
    open (per process: a reader copied into a worker opens its own)."""

    def __init__(self, shards: list[str], storage_options: dict | None = None):
        self.shards = shards
        self.storage_options = storage_options or {}
        self._fds: dict[int, int] = {}
        self._remote: dict[int, tuple] = {}  # shard -> (file system, path) on object storage
        self._pid = os.getpid()

    def read(self, shard: int, offset: int, size: int) -> bytes:
        if self._pid != os.getpid():
            self._fds, self._remote, self._pid = {}, {}, os.getpid()
        if "://" in self.shards[shard]:  # object storage: one ranged GET
            remote = self._remote.get(shard)
            if remote is None:
                import fsspec

                remote = self._remote[shard] = fsspec.core.url_to_fs(self.shards[shard],
                                                                     **self.storage_options)
            fs, path = remote
            return fs.cat_file(path, start=offset, end=offset + size)
        fd = self._fds.get(shard)
        if fd is None:
            fd = self._fds[shard] = os.open(self.shards[shard], os.O_RDONLY)
        return os.pread(fd, size, offset)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds, self._remote = {}, {}

    def __getstate__(self):
        return {"shards": self.shards, "storage_options": self.storage_options}

    def __setstate__(self, state):
        self.__init__(state["shards"], state.get("storage_options"))


NO_IMAGE, DECODED, UNDECODABLE = 0, 1, 2  # the status of a row's image


class DecodedImages:
    """A map-style dataset (for a torch DataLoader) over images read by location: row i
    -> (``convert(image)``, status), or (None, status) when the row has no image (shard
    < 0: :data:`NO_IMAGE`) or its bytes do not decode (:data:`UNDECODABLE`). Each image
    is read and decoded once, whatever ``convert`` makes of it; a worker process opens its
    own tar descriptors."""

    def __init__(self, reader: ImageReader, shard: np.ndarray, offset: np.ndarray,
                 size: np.ndarray, convert: Callable):
        self.reader, self.shard, self.offset, self.size = reader, shard, offset, size
        self.convert = convert

    def __len__(self) -> int:
        return len(self.shard)

    def __getitem__(self, i: int):
        from PIL import Image

        if self.shard[i] < 0:
            return None, NO_IMAGE
        try:
            data = self.reader.read(int(self.shard[i]), int(self.offset[i]), int(self.size[i]))
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                return self.convert(img), DECODED
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None, UNDECODABLE
