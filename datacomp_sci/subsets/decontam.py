"""Decontamination: drop pool samples whose image is a copy of an evaluation image.

Training images that also appear in an evaluation set inflate its score. The pool side
uses the 64-bit perceptual hashes that ``dedup`` computes from the pool's shards
(``DIR/sidecars/*.phash.parquet``); the evaluation side hashes every image member
(``.jpg``, ``.jpeg``, ``.png``, ``.webp``, WinoGAViL's candidates included) of the test
shards of a suite's tasks in a folder laid out as ``download-evalsets`` writes it
(clip_benchmark's ``wds_*/test/{i}.tar``). A pool sample is removed when its hash lies
within Hamming distance ``radius`` of any evaluation image's; samples without a hash
(no image in the shards, undecodable) are kept and counted as unchecked.

Evaluation hashes are cached per test shard under ``$XDG_CACHE_HOME/datacomp-sci/
evalset-phash`` (named by a hash of the shard's path, size and mtime), so a second
decontamination of another pool hashes nothing again.

Search: multi-index hashing across the two sets (the 64 bits cut into ``radius + 2``
blocks: a pair within ``radius`` bits agrees exactly on at least two of them, so each
pair of blocks is a lookup key of about ``128 / (radius + 2)`` bits), candidates
expanded in bounded batches, so memory stays flat however skewed the hashes are.

Not the paper's method: arXiv 2311.04711 scored pool images against the evaluation
images with dataset2metadata's copy-detection descriptor model (``isc_ft_v107``,
threshold 0.604169), which also catches crops, overlays and colour edits; that is
``--method isc`` (:mod:`datacomp_sci.subsets.decontam_isc`), which needs its weights file.
A perceptual hash, the default that needs no weights, catches resized, recompressed and
slightly edited copies (the bulk of web duplicates), not crops.
"""

from __future__ import annotations

import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datacomp_sci.core.util import atomic_open, file_cache_name, parallel_map, user_cache_dir
from datacomp_sci.subsets.dedup import pair_keys, phash_u64, split_key

CACHE_FORMAT = "datacomp-sci/evalset-phash/1"
EVAL_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
_BATCH = 1 << 22  # candidate pairs compared per step


# --- evaluation-side hashes -------------------------------------------------------------
@dataclass
class EvalTarHashes:
    """phashes of the image members of one evaluation shard."""

    path: str
    names: list[str] = field(default_factory=list)  # member names, tar order
    phashes: list[int] = field(default_factory=list)
    errors: int = 0  # undecodable images
    error: str | None = None  # the tar could not be read to its end


def default_cache() -> Path:
    return user_cache_dir() / "evalset-phash"


def _cache_file(cache: Path, path: Path) -> Path:
    st = path.stat()
    return cache / file_cache_name(CACHE_FORMAT, path.resolve(), st.st_size, st.st_mtime_ns,
                                   ".npz")


def hash_eval_tar(path: str) -> EvalTarHashes:
    """Hash every image member of one tar (streamed: each member is read once)."""
    out = EvalTarHashes(path)
    try:
        with tarfile.open(path, "r|") as tf:
            for member in tf:
                ext = member.name.rsplit(".", 1)[-1].lower() if "." in member.name else ""
                if not member.isfile() or ext not in EVAL_IMAGE_EXTS:
                    continue
                data = tf.extractfile(member).read()
                try:
                    value = phash_u64(data)
                except (OSError, ValueError, SyntaxError):  # PIL's errors for bad images
                    out.errors += 1
                    continue
                out.names.append(member.name)
                out.phashes.append(value)
    except (tarfile.TarError, OSError, EOFError) as e:
        out.error = f"{type(e).__name__}: {e}"
    return out


def _load_cached(file: Path, path: str) -> EvalTarHashes | None:
    try:
        with np.load(file, allow_pickle=False) as z:
            if str(z["format"]) != CACHE_FORMAT:
                return None
            return EvalTarHashes(path, z["names"].tolist(), z["phash"].astype(np.uint64).tolist(),
                                 int(z["errors"]))
    except (OSError, ValueError, KeyError):
        return None


def _save_cached(file: Path, res: EvalTarHashes) -> None:
    if res.error is not None:
        return  # a damaged tar is hashed again next time
    try:
        with atomic_open(file, fsync=False) as f:
            np.savez(f, format=np.array(CACHE_FORMAT), names=np.array(res.names, dtype=str),
                     phash=np.asarray(res.phashes, dtype=np.uint64), errors=np.array(res.errors))
    except OSError:
        pass  # an unwritable cache only costs time


@dataclass
class EvalHashes:
    """phashes of every evaluation image of a suite found in a data folder."""

    phash: np.ndarray  # uint64, one per image
    task: np.ndarray  # index into ``tasks``
    shard: list[str]  # per image: the shard file, relative to the data folder
    member: list[str]  # per image: the member name in its shard
    tasks: list[str]  # task keys, suite order
    images: dict[str, int] = field(default_factory=dict)  # task -> images hashed
    errors: dict[str, int] = field(default_factory=dict)  # task -> undecodable images
    damaged: list[str] = field(default_factory=list)  # "shard (error)"
    missing: list[str] = field(default_factory=list)  # "task: why"
    shards_hashed: int = 0
    shards_cached: int = 0


def evalset_hashes(data_dir: str | Path, suite: str, workers: int = 1,
                   cache: Path | None = None,
                   on_tar: Callable[[EvalTarHashes], None] | None = None,
                   require_all: bool = False) -> EvalHashes:
    """Hash the test images of ``suite``'s tasks in ``data_dir`` (cached per shard).
    ``require_all``: a task whose data is absent is an error (else listed in ``missing``)."""
    from datacomp_sci.core.evaldata import suite_shards

    found = suite_shards(data_dir, suite, require_all)
    root, tasks, jobs, missing = found.root, found.tasks, found.jobs, found.missing
    cache = cache or default_cache()
    results: dict[int, EvalTarHashes] = {}
    todo = []
    for i, (_t, path) in enumerate(jobs):
        hit = _load_cached(_cache_file(cache, path), str(path))
        if hit is None:
            todo.append(i)
        else:
            results[i] = hit
            if on_tar:
                on_tar(hit)
    for i, res in zip(todo, parallel_map(hash_eval_tar, [str(jobs[i][1]) for i in todo], workers),
                      strict=True):
        results[i] = res
        _save_cached(_cache_file(cache, jobs[i][1]), res)
        if on_tar:
            on_tar(res)
    phash, task_idx, shard, member = [], [], [], []
    images: Counter = Counter()
    errors: Counter = Counter()
    damaged = []
    for i, (t, path) in enumerate(jobs):
        res = results[i]
        phash += res.phashes
        task_idx += [t] * len(res.phashes)
        rel = str(path.relative_to(root))
        shard += [rel] * len(res.phashes)
        member += res.names
        images[tasks[t]] += len(res.phashes)
        errors[tasks[t]] += res.errors
        if res.error:
            damaged.append(f"{rel} ({res.error})")
    return EvalHashes(np.asarray(phash, dtype=np.uint64), np.asarray(task_idx, dtype=np.int64),
                      shard, member, tasks, {t: images[t] for t in tasks},
                      {t: errors[t] for t in tasks if errors[t]}, damaged, missing,
                      shards_hashed=len(todo), shards_cached=len(jobs) - len(todo))


# --- cross search ------------------------------------------------------------------------
_TABLE_BITS = 24  # keys this short are looked up in a dense table, longer ones by bisection


def cross_pairs(pool: np.ndarray, ref: np.ndarray, radius: int,
                batch: int = _BATCH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``(i, j, distance)`` with ``popcount(pool[i] ^ ref[j]) <= radius``, each pair
    once, sorted by (i, j).

    Multi-index hashing (see :func:`.dedup.pair_keys`): for each pair of blocks the reference
    hashes are sorted by that key, every pool hash finds the run of references sharing its
    key, and those candidates are compared in batches of at most ``batch`` pairs."""
    pool = np.asarray(pool, dtype=np.uint64)
    ref = np.asarray(ref, dtype=np.uint64)
    keys = pair_keys(radius)
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    if len(pool) and len(ref):
        for parts in keys:
            bits = sum(w for _s, w in parts)
            rkey = split_key(ref, parts)
            order = np.argsort(rkey, kind="stable")
            pkey = split_key(pool, parts)
            if bits <= _TABLE_BITS:
                counts_table = np.bincount(rkey.astype(np.int64), minlength=1 << bits)
                starts_table = np.cumsum(counts_table) - counts_table
                idx = pkey.astype(np.int64)
                lo, counts = starts_table[idx], counts_table[idx]
            else:
                sorted_keys = rkey[order]
                lo = np.searchsorted(sorted_keys, pkey, "left")
                counts = np.searchsorted(sorted_keys, pkey, "right") - lo
            rows = np.flatnonzero(counts)
            ends = np.cumsum(counts[rows])
            start = 0
            while start < len(rows):
                # rows[start:stop] expand to at most `batch` pairs (at least one row)
                limit = (ends[start - 1] if start else 0) + batch
                stop = max(start + 1, int(np.searchsorted(ends, limit, "right")))
                r = rows[start:stop]
                c = counts[r]
                i = np.repeat(r, c)
                offsets = np.arange(len(i)) - np.repeat(np.cumsum(c) - c, c)
                j = order[np.repeat(lo[r], c) + offsets]
                close = np.bitwise_count(pool[i] ^ ref[j]) <= radius
                found_i.append(i[close])
                found_j.append(j[close])
                start = stop
    if not found_i:
        empty = np.empty(0, np.int64)
        return empty, empty, np.empty(0, np.uint8)
    i = np.concatenate(found_i).astype(np.int64)
    j = np.concatenate(found_j).astype(np.int64)
    pairs = np.unique(np.stack([i, j], axis=1), axis=0)  # found once per agreeing key
    i, j = pairs[:, 0], pairs[:, 1]
    return i, j, np.bitwise_count(pool[i] ^ ref[j]).astype(np.uint8)


def nearest_matches(i: np.ndarray, j: np.ndarray, dist: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pool row with any match: the closest reference (smallest distance, then index)."""
    order = np.lexsort((j, dist, i))
    i, j, dist = i[order], j[order], dist[order]
    first = np.r_[True, i[1:] != i[:-1]] if len(i) else np.empty(0, bool)
    return i[first], j[first], dist[first]
