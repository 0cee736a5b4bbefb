"""``filter --name decontaminate --method isc``: the paper's decontamination.

Every pool image (from the pool's shards, by uid) and every image member (``.jpg``,
``.jpeg``, ``.png``, ``.webp``, WinoGAViL's candidates included) of the test shards of a
suite's tasks get the copy-detection descriptor of :mod:`datacomp_sci.annotate.isc`; a
pool sample is removed when its best match among the evaluation images scores at least
the threshold (0.604169 by default, DataComp's). Samples without an image in the shards
or with an undecodable one are kept and counted as unchecked.

Evaluation descriptors are cached per test shard under ``$XDG_CACHE_HOME/datacomp-sci/
evalset-isc``, named by the shard's path, size and mtime and the weights' sha256, so a
second decontamination (another pool, another threshold) describes no evaluation image
again.
"""

from __future__ import annotations

import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from datacomp_sci.annotate.isc import ISCModel, best_matches, describe
from datacomp_sci.annotate.shardimages import pool_image_index
from datacomp_sci.core.util import atomic_open, file_cache_name, user_cache_dir
from datacomp_sci.pool.pools import Pool
from datacomp_sci.subsets.decontam import EVAL_IMAGE_EXTS

CACHE_FORMAT = "datacomp-sci/evalset-isc/1"


def default_cache() -> Path:
    return user_cache_dir() / "evalset-isc"


@dataclass
class EvalDescriptors:
    desc: np.ndarray  # float32, one row per evaluation image
    task: np.ndarray  # index into ``tasks``
    shard: list[str]
    member: list[str]
    tasks: list[str]
    images: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    damaged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    shards_described: int = 0
    shards_cached: int = 0


def _image_members(path: Path) -> tuple[list[str], np.ndarray, str | None]:
    """Names and (0, offset, size) of the image members of one tar (headers only)."""
    names, locs, error = [], [], None
    try:
        with tarfile.open(path, "r:") as tf:
            for m in tf:
                ext = m.name.rsplit(".", 1)[-1].lower() if "." in m.name else ""
                if m.isfile() and ext in EVAL_IMAGE_EXTS:
                    names.append(m.name)
                    locs.append((0, m.offset_data, m.size))
    except (tarfile.TarError, OSError, EOFError) as e:
        error = f"{type(e).__name__}: {e}"
    return names, np.asarray(locs, np.int64).reshape(-1, 3), error


def _cache_file(cache: Path, path: Path, isc: ISCModel) -> Path:
    st = path.stat()
    fmt = f"{CACHE_FORMAT}/{isc.sha256}/{isc.input_size}"
    return cache / file_cache_name(fmt, path.resolve(), st.st_size, st.st_mtime_ns, ".npz")


def _describe_shard(path: Path, isc: ISCModel, cache: Path, batch_size: int, workers: int,
                    device: str, on_images) -> tuple[list[str], np.ndarray, int, str | None, bool]:
    file = _cache_file(cache, path, isc)
    try:
        with np.load(file, allow_pickle=False) as z:
            if str(z["format"]) == CACHE_FORMAT:
                return z["names"].tolist(), z["desc"], int(z["errors"]), None, True
    except (OSError, ValueError, KeyError):
        pass
    names, locs, error = _image_members(path)
    desc, ok = describe(isc, [str(path)], locs, batch_size, workers, device, on_images)
    names = [n for n, good in zip(names, ok, strict=True) if good]
    desc, errors = desc[ok], int((~ok).sum())
    if error is None:  # a damaged tar is described again next time
        try:
            with atomic_open(file, fsync=False) as f:
                np.savez(f, format=np.array(CACHE_FORMAT), names=np.array(names, dtype=str),
                         desc=desc, errors=np.array(errors))
        except OSError:
            pass
    return names, desc, errors, error, False


def evalset_descriptors(data_dir: str | Path, suite: str, isc: ISCModel, batch_size: int = 64,
                        workers: int = 0, device: str = "cpu", cache: Path | None = None,
                        on_images: Callable[[int], None] | None = None,
                        require_all: bool = False) -> EvalDescriptors:
    from datacomp_sci.core.evaldata import suite_shards

    found = suite_shards(data_dir, suite, require_all)
    root, tasks, jobs, missing = found.root, found.tasks, found.jobs, found.missing
    cache = cache or default_cache()
    descs, task_idx, shard, member = [], [], [], []
    images: Counter = Counter()
    errors: Counter = Counter()
    damaged: list[str] = []
    described = cached = 0
    for t, path in jobs:
        names, desc, errs, error, hit = _describe_shard(path, isc, cache, batch_size, workers,
                                                        device, on_images)
        cached += hit
        described += not hit
        rel = str(path.relative_to(root))
        descs.append(desc)
        task_idx += [t] * len(names)
        shard += [rel] * len(names)
        member += names
        images[tasks[t]] += len(names)
        errors[tasks[t]] += errs
        if error:
            damaged.append(f"{rel} ({error})")
    return EvalDescriptors(
        np.concatenate(descs) if descs else np.zeros((0, 0), np.float32),
        np.asarray(task_idx, np.int64), shard, member, tasks,
        {t: images[t] for t in tasks}, {t: errors[t] for t in tasks if errors[t]},
        damaged, missing, described, cached)


@dataclass
class PoolDescriptors:
    uids: list[str]  # every metadata row, in pool and file order
    desc: np.ndarray  # rows with a decoded image only
    rows: np.ndarray  # which of ``uids`` those are
    no_image: int = 0
    undecodable: int = 0


def pool_descriptors(pools: list[Pool], isc: ISCModel, batch_size: int = 64, workers: int = 0,
                     device: str = "cpu",
                     on_images: Callable[[int], None] | None = None) -> PoolDescriptors:
    uids: list[str] = []
    descs, rows = [], []
    no_image = undecodable = 0
    for pool in pools:
        if not pool.shards_dir.is_dir():
            raise FileNotFoundError(
                f"pool {pool.name} ({pool.root}) has no shards/ folder: --method isc compares "
                "images, so download them first (datacomp-sci download-pool)")
        index = pool_image_index(pool.shards_dir, workers=max(1, workers))
        for meta in pool.metadata_files:
            file_uids = pq.read_table(meta, columns=["uid"]).column("uid").to_pylist()
            shard, off, size = index.locate(file_uids)
            have = np.flatnonzero(shard >= 0)
            no_image += len(file_uids) - len(have)
            locs = np.stack([shard[have], off[have], size[have]], axis=1)
            desc, ok = describe(isc, index.shards, locs, batch_size, workers, device, on_images)
            undecodable += int((~ok).sum())
            descs.append(desc[ok])
            rows.append(have[ok] + len(uids))
            uids += file_uids
    return PoolDescriptors(uids, np.concatenate(descs) if descs else np.zeros((0, 0)),
                           np.concatenate(rows) if rows else np.zeros(0, np.int64),
                           no_image, undecodable)


def match(pool: PoolDescriptors, ev: EvalDescriptors, threshold: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pool row, evaluation image, similarity) of every pool row whose best match scores
    >= threshold, by pool row."""
    if len(pool.desc) == 0 or len(ev.desc) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    best, arg = best_matches(pool.desc.astype(np.float32), ev.desc.astype(np.float32))
    hit = best >= np.float32(threshold)
    return pool.rows[hit], arg[hit], best[hit]
