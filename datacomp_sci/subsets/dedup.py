"""Exact and near-duplicate removal within and across pools.

* **Exact**: same ``sha256`` (of the image bytes, as img2dataset records it).
* **Near**: perceptual hashes (``imagehash.phash``, 64 bits) within Hamming distance
  ``radius``. Candidates come from multi-index hashing: the 64 bits are cut into
  ``radius + 2`` blocks; two hashes within ``radius`` bits agree exactly on at least two
  of them (pigeonhole), so only hashes sharing the values of a pair of blocks (a key of
  about ``128 / (radius + 2)`` bits: 21 at radius 4) are compared. Work grows with the
  number of candidate pairs, not with n^2.

Duplicates form groups: connected components of the "exact or near duplicate" graph
(single linkage, so a chain a~b~c is one group). From each group one sample is kept:
the largest ``original_width * original_height``, then the lexicographically smallest
uid. The rule depends only on the rows, not on their order: same inputs, same subset.

The phash is computed once per pool from its shards (``DIR/shards/*.tar``: the
``.jpg`` of each sample, its uid from the sample's ``.json``) and stored in row-aligned
sidecars ``DIR/sidecars/<stem>.phash.parquet`` (``uid``, ``phash`` uint64, NULL where
the sample has no image), which the DuckDB views expose as column ``phash``.
Images are decoded with JPEG draft mode (DCT downscaling to >= 256 px) before the
32x32 phash resize: several times faster than a full decode, same hashes for
(near-)identical images, since every image is hashed the same way.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import imagehash
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from datacomp_sci.core.tars import iter_sample_images
from datacomp_sci.core.util import atomic_open, parallel_map
from datacomp_sci.pool.pools import Pool, sidecar_fresh, sidecar_metadata, sidecar_path

PHASH_SCHEMA = pa.schema([pa.field("uid", pa.string()), pa.field("phash", pa.uint64())])
DEFAULT_RADIUS = 4
_DRAFT_SIZE = (256, 256)


# --- perceptual hashes ----------------------------------------------------------------
def phash_u64(image_bytes: bytes) -> int:
    """64-bit phash of an encoded image, bits in ``str(imagehash.phash(img))`` order."""
    with Image.open(io.BytesIO(image_bytes)) as img:
        if img.format == "JPEG":
            img.draft("L", _DRAFT_SIZE)
        bits = imagehash.phash(img).hash.flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


@dataclass
class ShardHashes:
    """phashes of one shard's samples."""

    shard: Path
    uids: list[str] = field(default_factory=list)
    phashes: list[int] = field(default_factory=list)
    errors: int = 0  # undecodable images
    missing: int = 0  # samples without an image, a json or a uid


def shard_phashes(shard: Path) -> ShardHashes:
    """Hash every sample image of one webdataset tar (uid from its ``.json``).

    Samples are listed as ``reshard`` lists them (libarchive or tarfile, grouped by
    webdataset's ``group_by_keys``) and their members read by offset. A damaged tar keeps
    the hashes of the samples before the damage and counts one error."""
    out = ShardHashes(shard=shard)
    try:
        with open(shard, "rb") as f:
            fd = f.fileno()
            for sample in iter_sample_images(f):
                if sample is None:
                    out.missing += 1
                    continue
                uid, offset, size = sample
                try:
                    value = phash_u64(os.pread(fd, size, offset))
                except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                    out.errors += 1
                    continue
                out.uids.append(uid)
                out.phashes.append(value)
    except (tarfile.TarError, OSError, EOFError, ValueError):
        out.errors += 1
    return out


@dataclass
class PhashStats:
    """What ``ensure_phash_sidecars`` did."""

    pools_hashed: list[str] = field(default_factory=list)
    pools_reused: list[str] = field(default_factory=list)
    pools_without_shards: list[str] = field(default_factory=list)
    shards: int = 0
    images: int = 0
    errors: int = 0
    missing: int = 0
    rows_without_phash: int = 0


def _write_phash_sidecars(pool: Pool, uids: pa.Array, hashes: pa.Array) -> int:
    """Row-align the shard hashes with each metadata file; return rows left without one."""
    unmatched = 0
    for meta in pool.metadata_files:
        col = pq.read_table(meta, columns=["uid"]).column("uid").cast(pa.string())
        idx = pc.index_in(col, value_set=uids)
        ph = hashes.take(idx)
        unmatched += ph.null_count
        schema = PHASH_SCHEMA.with_metadata(sidecar_metadata(meta))
        table = pa.table({"uid": col, "phash": ph}, schema=schema)
        with atomic_open(sidecar_path(meta, "phash")) as f:
            pq.write_table(table, f, compression="zstd")
    return unmatched


def _pool_shards(pool: Pool) -> list[Path]:
    return sorted(pool.shards_dir.glob("*.tar")) if pool.shards_dir.is_dir() else []


def ensure_phash_sidecars(
    pools: list[Pool],
    workers: int = 1,
    on_shard: Callable[[ShardHashes], None] | None = None,
) -> PhashStats:
    """Compute phash sidecars for pools whose sidecars are missing or stale."""
    stats = PhashStats()
    for pool in pools:
        if all(sidecar_fresh(m, "phash") for m in pool.metadata_files):
            stats.pools_reused.append(pool.name)
            continue
        shards = _pool_shards(pool)
        if not shards:
            stats.pools_without_shards.append(pool.name)
            continue
        uids: list[str] = []
        hashes: list[int] = []
        for res in parallel_map(shard_phashes, shards, workers):
            stats.shards += 1
            stats.images += len(res.uids)
            stats.errors += res.errors
            stats.missing += res.missing
            uids += res.uids
            hashes += res.phashes
            if on_shard:
                on_shard(res)
        uid_arr = pa.array(uids, pa.string())
        hash_arr = pa.array(np.asarray(hashes, dtype=np.uint64), pa.uint64())
        stats.rows_without_phash += _write_phash_sidecars(pool, uid_arr, hash_arr)
        stats.pools_hashed.append(pool.name)
    return stats


# --- near-duplicate search ------------------------------------------------------------
def hash_blocks(radius: int) -> list[tuple[int, int]]:
    """``(shift, width)`` of the ``radius + 1`` blocks covering 64 bits."""
    if not 0 <= radius < 64:
        raise ValueError(f"--radius must be between 0 and 63 bits (got {radius})")
    m = radius + 1
    widths = [64 // m + (1 if i < 64 % m else 0) for i in range(m)]
    shifts = np.cumsum([0] + widths[:-1]).tolist()
    return list(zip(shifts, widths, strict=True))


def pair_keys(radius: int) -> list[list[tuple[int, int]]]:
    """Keys to look pairs up by: the 64 bits cut into ``m = radius + 2`` blocks, two hashes
    within ``radius`` bits differ in at most ``radius`` blocks, so they agree exactly on at
    least two; each key is a pair of blocks, ``[(shift, width), (shift, width)]``."""
    if not 0 <= radius < 64:
        raise ValueError(f"--radius must be between 0 and 63 bits (got {radius})")
    if radius >= 62:  # too few bits per block for pairs: single blocks (pigeonhole)
        return [[b] for b in hash_blocks(radius)]
    m = radius + 2
    widths = [64 // m + (1 if i < 64 % m else 0) for i in range(m)]
    shifts = np.cumsum([0] + widths[:-1]).tolist()
    blocks = list(zip(shifts, widths, strict=True))
    return [[blocks[a], blocks[b]] for a in range(m) for b in range(a + 1, m)]


def split_key(values: np.ndarray, parts: list[tuple[int, int]]) -> np.ndarray:
    key = np.zeros(len(values), np.uint64)
    for shift, width in parts:
        key = (key << np.uint64(width)) | ((values >> np.uint64(shift)) & np.uint64((1 << width) - 1))
    return key


def near_pairs(values: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(a, b)`` of distinct ``values`` (uint64) within Hamming ``radius``.

    Multi-index hashing (:func:`pair_keys`); a pair may be reported more than once (once
    per key it agrees on).
    """
    values = np.asarray(values, dtype=np.uint64)
    n = len(values)
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    if n < 2 or radius == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    for parts in pair_keys(radius):
        key = split_key(values, parts)
        order = np.argsort(key, kind="stable")
        sk = key[order]
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        lengths = np.diff(np.r_[starts, n])
        run_end = np.repeat(starts + lengths, lengths)
        cand = np.flatnonzero(np.arange(n) + 1 < run_end)
        d = 1
        while cand.size:
            a, b = order[cand], order[cand + d]
            close = np.bitwise_count(values[a] ^ values[b]) <= radius
            found_a.append(a[close])
            found_b.append(b[close])
            d += 1
            cand = cand[cand + d < run_end[cand]]
    if not found_a:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(found_a).astype(np.int64), np.concatenate(found_b).astype(np.int64)


def _chain_equal(keys: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges linking consecutive rows that share a key (one chain per key)."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    same = np.flatnonzero(sk[1:] == sk[:-1])
    return rows[order[same]], rows[order[same + 1]]


@dataclass
class DedupInput:
    """Columns of the rows to deduplicate (same length, any order)."""

    uid_hi: np.ndarray  # uint64
    uid_lo: np.ndarray  # uint64
    area: np.ndarray  # int64, original_width * original_height; -1 when unknown
    sha_key: np.ndarray  # uint64 hash of sha256
    sha_valid: np.ndarray  # bool
    phash: np.ndarray  # uint64
    phash_valid: np.ndarray  # bool


@dataclass
class DedupResult:
    """Which rows are kept, the group of every row, and counts."""

    keep: np.ndarray  # bool per row
    group: np.ndarray  # int64 component label per row (equal label = same group)
    stats: dict[str, int]


def _components(n: int, edges: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, np.ndarray]:
    a = np.concatenate([e[0] for e in edges] + [np.empty(0, np.int64)])
    b = np.concatenate([e[1] for e in edges] + [np.empty(0, np.int64)])
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    return int(count), labels.astype(np.int64)


def _exact_edges(data: DedupInput) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero(data.sha_valid)
    return _chain_equal(data.sha_key[rows], rows)


def _near_edges(data: DedupInput, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rows = np.flatnonzero(data.phash_valid)
    values = data.phash[rows]
    edges = [_chain_equal(values, rows)]  # identical phash
    uniq, first = np.unique(values, return_index=True)
    a, b = near_pairs(uniq, radius)
    edges.append((rows[first[a]], rows[first[b]]))
    return edges


def find_duplicates(data: DedupInput, radius: int = DEFAULT_RADIUS, near: bool = True) -> DedupResult:
    """Group exact and near duplicates and pick one row per group (module docstring)."""
    n = len(data.uid_hi)
    exact = _exact_edges(data)
    n_exact, _ = _components(n, [exact])
    edges = [exact] + (_near_edges(data, radius) if near else [])
    n_groups, labels = _components(n, edges)
    order = np.lexsort((data.uid_lo, data.uid_hi, -data.area, labels))
    first = np.r_[True, labels[order][1:] != labels[order][:-1]] if n else np.empty(0, bool)
    keep = np.zeros(n, dtype=bool)
    keep[order[first]] = True
    sizes = np.bincount(labels, minlength=n_groups) if n else np.empty(0, np.int64)
    stats = {
        "rows": n,
        "rows_with_sha256": int(data.sha_valid.sum()),
        "rows_with_phash": int(data.phash_valid.sum()),
        "duplicate_groups": int((sizes > 1).sum()),
        "rows_in_duplicate_groups": int(sizes[sizes > 1].sum()),
        "largest_group": int(sizes.max()) if n else 0,
        "removed_exact": n - n_exact,
        "removed_near": n_exact - n_groups,
        "kept": int(keep.sum()),
    }
    return DedupResult(keep=keep, group=labels, stats=stats)
