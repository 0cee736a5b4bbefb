"""Benchmark: filtering CommonPool-sized metadata (and, from part B, resharding).

Generates ``--rows`` rows of CommonPool-shaped metadata (uid, url, text of random words,
sizes, CLIP scores, sha256) in ``--files`` parquet files, vectorised and cached in a temp
folder, then times:

* ``filter --sql`` to a subset ``.npy`` (target at 12.8M rows: < 15 s, < 4 GiB RSS),
* ``filter --name basic_filter`` (first run computes the language-id sidecars; the
  second reuses them).

Run: ``python benchmarks/filter_reshard.py --rows 12800000`` (smoke: ``--rows 100000``).
``main()`` runs every function in ``BENCHES``; each takes the parsed arguments and
returns a list of result lines.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datacomp_sci.core.schema import COMMONPOOL_SCHEMA
from datacomp_sci.subsets.filters import FilterSpec, RunOptions, run_filter

WORDS = ["the", "a", "of", "figure", "plot", "shows", "result", "model", "data", "image", "photo", "cat", "dog", "red", "blue", "large", "small", "sample", "value", "curve", "graph", "table", "network", "loss", "accuracy", "training", "test", "der", "die", "und", "le", "la", "de", "image"]
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def peak_rss_gib() -> float:
    """Peak resident memory of this process and its finished children (GiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 2**20  # ru_maxrss is in KiB on Linux


def _hex_strings(rng: np.random.Generator, n: int, nbytes: int) -> pa.Array:
    raw = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    chars = np.empty((n, 2 * nbytes), dtype=np.uint8)
    chars[:, 0::2] = _HEX[raw >> 4]
    chars[:, 1::2] = _HEX[raw & 15]
    offsets = np.arange(0, (n + 1) * 2 * nbytes, 2 * nbytes, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))


def _captions(rng: np.random.Generator, n: int) -> pa.Array:
    counts = rng.integers(1, 15, n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    words = pa.array(WORDS).take(pa.array(rng.integers(0, len(WORDS), int(offsets[-1]))))
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), words), " ")


def make_table(rng: np.random.Generator, n: int) -> pa.Table:
    uids = _hex_strings(rng, n, 16)
    side = lambda: pa.array(rng.integers(50, 2000, n), pa.int64())  # noqa: E731
    return pa.table({
        "uid": uids,
        "url": pc.binary_join_element_wise("http://example.invalid/", uids, ".jpg", ""),
        "text": _captions(rng, n),
        "original_width": side(),
        "original_height": side(),
        "clip_b32_similarity_score": pa.array(rng.random(n, np.float32) * 0.45),
        "clip_l14_similarity_score": pa.array(rng.random(n, np.float32) * 0.45),
        "face_bboxes": pa.nulls(n, COMMONPOOL_SCHEMA.field("face_bboxes").type),
        "sha256": _hex_strings(rng, n, 32),
    }, schema=COMMONPOOL_SCHEMA)


def make_pool(rows: int, files: int, cache: Path) -> Path:
    """CommonPool-shaped metadata folder, cached by (rows, files)."""
    root = cache / f"commonpool_{rows}_{files}"
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "metadata").mkdir(parents=True)
    rng = np.random.default_rng(0)
    per = -(-rows // files)
    for i in range(files):
        n = min(per, rows - i * per)
        if n > 0:
            pq.write_table(make_table(rng, n), root / "metadata" / f"{i:04d}.parquet",
                           compression="zstd", row_group_size=128_000)
    done.touch()
    return root


def _timed(label: str, rows: int, fn: Callable[[], object]) -> tuple[str, object]:
    t0 = time.perf_counter()
    res = fn()
    dt = time.perf_counter() - t0
    return (f"{label:<34} {dt:7.2f} s  {rows / dt / 1e6:6.2f} M rows/s  "
            f"peak RSS {peak_rss_gib():.2f} GiB"), res


def bench_filter(args: argparse.Namespace) -> list[str]:
    t0 = time.perf_counter()
    pool = make_pool(args.rows, args.files, Path(args.cache))
    lines = [f"{'generate/cached metadata':<34} {time.perf_counter() - t0:7.2f} s  "
             f"({args.rows:,} rows, {args.files} files)"]
    out = Path(args.cache) / "out"
    opts = RunOptions(threads=args.threads, workers=args.workers)
    sql = ("SELECT uid FROM pools WHERE clip_l14_similarity_score >= 0.1 "
           "AND length(text) > 10")
    line, res = _timed("filter --sql -> npy", args.rows,
                       lambda: run_filter([pool], out / "sql.npy", FilterSpec(sql=sql), opts))
    lines.append(f"{line}  kept {res.count:,}")
    spec = FilterSpec(name="no_filter")
    line, res = _timed("filter --name no_filter -> npy", args.rows,
                       lambda: run_filter([pool], out / "all.npy", spec, opts))
    lines.append(f"{line}  kept {res.count:,}")
    for run in ("first (language id)", "second (cached)"):
        spec = FilterSpec(name="basic_filter")
        line, res = _timed(f"basic_filter {run}", args.rows,
                           lambda spec=spec: run_filter([pool], out / "basic.npy", spec, opts))
        lines.append(f"{line}  kept {res.count:,}")
    return lines


def _noise_jpegs(rng: np.random.Generator, n: int) -> list[bytes]:
    """``n`` distinct JPEGs of realistic size (about 30-60 KB: noisy 512x384 photos)."""
    import io

    from PIL import Image

    out = []
    for i in range(n):
        base = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((512, 384), Image.BILINEAR)
        noise = rng.normal(0, 6 + i % 5, (384, 512, 3))
        arr = np.clip(np.asarray(img, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=80)
        out.append(buf.getvalue())
    return out


def make_shards(n_shards: int, per_shard: int, cache: Path) -> tuple[Path, list[str]]:
    """img2dataset-layout shards of real JPEG bytes (generated once, reused), cached."""
    import json

    import webdataset as wds

    root = cache / f"shards_{n_shards}x{per_shard}"
    uids_file = root / "uids.txt"
    if (root / ".complete").exists():
        return root, uids_file.read_text().split()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    jpegs = _noise_jpegs(rng, 24)
    uids = _hex_strings(rng, n_shards * per_shard, 16).to_pylist()
    for s in range(n_shards):
        with open(root / f"{s:08d}.tar", "wb") as f:
            writer = wds.TarWriter(f, mtime=0.0)
            for i in range(per_shard):
                uid, key = uids[s * per_shard + i], f"{s * 10**4 + i:012d}"
                meta = {"uid": uid, "caption": f"figure {i}", "key": key, "status": "success"}
                writer.write({"__key__": key, "jpg": jpegs[(s * 7 + i) % len(jpegs)],
                              "txt": meta["caption"], "json": json.dumps(meta, indent=4)})
            writer.close()
        (root / f"{s:08d}_stats.json").write_text(json.dumps({"count": per_shard,
                                                              "successes": per_shard}))
    uids_file.write_text("\n".join(uids))
    (root / ".complete").touch()
    return root, uids


def _subset_file(uids: list[str], seed: int, path: Path) -> Path:
    """A random 80 % of ``uids`` as a subset file."""
    from datacomp_sci.core.uids import save_subset, uids_to_u8u8

    keep = np.random.default_rng(seed).random(len(uids)) < 0.8
    save_subset(path, uids_to_u8u8([u for u, k in zip(uids, keep, strict=True) if k]))
    return path


def _settle(*folders: Path) -> None:
    """Remove ``folders`` and write back all dirty pages, so that a timed step does not pay
    for the writeback of the step before it (which made the first reshard after the copy
    look 30-40 % slower than the same reshard run later)."""
    for d in folders:
        shutil.rmtree(d, ignore_errors=True)
    os.sync()


def _durable_copy(tars: list[Path], dest: Path) -> float:
    """Seconds to copy ``tars`` into ``dest`` and fsync them."""
    _settle(dest)
    dest.mkdir()
    t0 = time.perf_counter()
    for t in tars:
        shutil.copyfile(t, dest / t.name)
        fd = os.open(dest / t.name, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return time.perf_counter() - t0


def bench_reshard(args: argparse.Namespace) -> list[str]:
    """reshard (80 % subsets) vs a durable copy of the same tars; target >= 70 % of copy MB/s.

    Four reshards of the same pool: the first with an empty header index cache (it lists
    every tar, with libarchive where installed, and saves the indexes), the second with
    another subset (warm cache: no tar is read), the third with the cache disabled (what
    the first run costs without saving), the fourth like the third with Python's tarfile
    listing the members (what a machine without libarchive gets). The copy is timed before
    and after them; the ratios use the faster copy.
    """
    from datacomp_sci.resharding.reshard import ReshardOptions, reshard

    cache = Path(args.cache)
    t0 = time.perf_counter()
    shards, uids = make_shards(args.reshard_shards, args.reshard_per_shard, cache)
    tars = sorted(shards.glob("*.tar"))
    size_mb = sum(t.stat().st_size for t in tars) / 1e6
    lines = [f"{'generate/cached shards':<38} {time.perf_counter() - t0:7.2f} s  "
             f"({len(tars)} x {args.reshard_per_shard} samples, {size_mb:,.0f} MB)"]
    first = _subset_file(uids, 1, cache / "reshard_subset.npy")
    other = _subset_file(uids, 2, cache / "reshard_subset_2.npy")
    copy_dir, out_dir, index_dir = cache / "copy_out", cache / "reshard_out", cache / "tar_index"
    _settle(index_dir)
    # Baseline: a durable copy of the same bytes (copy, then fsync, as reshard makes its
    # outputs durable). Without the fsync the "copy" only fills the page cache and its
    # speed swings between memory and disk bandwidth from one run to the next.
    copies = [_durable_copy(tars, copy_dir)]
    w = args.workers
    runs = [("first run, cold index", first, ReshardOptions(workers=w, index_cache=index_dir)),
            ("second run, other subset, warm", other, ReshardOptions(workers=w, index_cache=index_dir)),
            ("first run, --no-index-cache", first, ReshardOptions(workers=w, use_index_cache=False)),
            ("first run, no cache, tarfile", first,
             ReshardOptions(workers=w, use_index_cache=False, tar_reader="tarfile"))]
    timed = []
    for label, subset, opts in runs:
        _settle(copy_dir, out_dir)
        t0 = time.perf_counter()
        res = reshard([str(shards)], subset, out_dir, opts)
        timed.append((label, time.perf_counter() - t0, res))
    _settle(out_dir)
    copies.append(_durable_copy(tars, copy_dir))
    for when, c in zip(("before", "after"), copies, strict=True):
        lines.append(f"{'copy input tars (copy + fsync) ' + when:<38} {c:7.2f} s  "
                     f"{size_mb / c:8.1f} MB/s")
    best = size_mb / min(copies)
    for label, secs, res in timed:
        ic, tr = res.index_cache, res.tar_reader
        lines.append(
            f"{'reshard ' + label:<38} {secs:7.2f} s  {size_mb / secs:8.1f} MB/s  "
            f"{100 * size_mb / secs / best:5.1f} % of copy (target >= 70 %)  "
            f"({res.meta['output_count']:,} samples, {res.meta['output_shard_count']} shards, "
            f"workers {w}; index {ic['reused']} reused, {ic['built']} built; "
            f"listed by libarchive {tr['libarchive']}, tarfile {tr['tarfile']})")
    index_mb = sum(f.stat().st_size for f in index_dir.iterdir()) / 1e6
    lines.append(f"{'header index cache':<38} {index_mb:7.2f} MB for {len(tars)} input shards")
    _settle(copy_dir, out_dir, index_dir)
    return lines


BENCHES: list[Callable[[argparse.Namespace], list[str]]] = [bench_filter, bench_reshard]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=12_800_000, help="metadata rows to generate")
    ap.add_argument("--files", type=int, default=32, help="metadata parquet files")
    ap.add_argument("--only", choices=["filter", "reshard"], default=None,
                    help="run one benchmark only")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="processes for language id")
    ap.add_argument("--reshard-shards", type=int, default=50, help="input shards for reshard")
    ap.add_argument("--reshard-per-shard", type=int, default=1000,
                    help="samples per input shard for reshard")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "datacomp_sci_bench"),
                    help="folder caching the generated metadata")
    args = ap.parse_args(argv)
    for bench in BENCHES:
        if args.only and bench.__name__ != f"bench_{args.only}":
            continue
        for line in bench(args):
            print(line, flush=True)


if __name__ == "__main__":
    main()
