"""Benchmark: build-pool and reshard on ``--engine ray`` against ``--engine local``.

Packs a generated arXiv corpus (the papers of ``benchmarks/build_pool.py``) into bulk
tars ``arXiv_src_2201_NNN.tar`` like arXiv's own, then times, on the same inputs:

* the bare cost of one task on each engine (a task that does nothing, many times);
* build-pool with 1 and 2 workers on each engine (bytes checked equal);
* reshard of the pool's shards by half of its uids, 1 and 2 workers on each engine.

Ray is started once before the clock, and its workers import the stages once (both
reported apart: a cluster starts once per job, not per unit); every setting runs
``--repeat`` times and the fastest run counts (the order of the settings must not
decide who pays for cold caches). Prints the overhead per unit (ray minus local, per
unit, against the time one unit takes: target < 5 %) and the scaling from 1 to 2 workers
(target >= 1.8x on an idle 2-core machine).

    python benchmarks/engines.py --tars 8 --papers-per-tar 30
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import tarfile
import tempfile
import time
from pathlib import Path


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and "_work" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def make_bulk_tars(root: Path, n_tars: int, per_tar: int) -> Path:
    """``n_tars`` bulk tars of ``per_tar`` per-paper ``.gz`` files each."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from build_pool import make_corpus

    papers, _ = make_corpus(root / "papers", n_tars * per_tar * 3 // 2 + 2)
    files = sorted(papers.iterdir())[: n_tars * per_tar]
    out = root / "bulk"
    out.mkdir()
    for t in range(n_tars):
        with tarfile.open(out / f"arXiv_src_2201_{t + 1:03d}.tar", "w") as tf:
            for f in files[t * per_tar:(t + 1) * per_tar]:
                tf.add(f, arcname=f"2201/{f.name}")
    return out


def _noop(item: int) -> int:
    return item


def _warm(item: int) -> int:
    """Import what the timed tasks import (paid once per worker process in a real job)."""
    import datacomp_sci.pool.build  # noqa: F401
    import datacomp_sci.resharding.reshard  # noqa: F401

    return item


def task_overhead(engine_opts, n: int) -> float:
    """Seconds per do-nothing task (after one warm-up round)."""
    from datacomp_sci.engines import engine_session

    with engine_session(engine_opts) as engine:
        list(engine.map(_noop, list(range(2 * engine.workers))))
        t = time.perf_counter()
        list(engine.map(_noop, list(range(n))))
        return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tars", type=int, default=8, help="bulk tars (units)")
    ap.add_argument("--papers-per-tar", type=int, default=30)
    ap.add_argument("--noop-tasks", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=2, help="runs per setting; the fastest counts")
    args = ap.parse_args()

    import ray

    from datacomp_sci.engines import EngineOptions
    from datacomp_sci.pool.build import build_pool, options_from_config
    from datacomp_sci.resharding.reshard import ReshardOptions, reshard

    t = time.perf_counter()
    import webdataset  # noqa: F401  (imports torch: start-up, not throughput)

    here = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])
    t = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    from datacomp_sci.engines import engine_session

    with engine_session(EngineOptions(name="ray")) as engine:
        list(engine.map(_warm, list(range(4 * engine.workers))))
    print(f"ray start-up: {time.perf_counter() - t:.1f} s, workers' imports included "
          "(once per job; not timed below)")
    engines = {(name, w): EngineOptions(name=name, workers=w)
               for name in ("local", "ray") for w in (1, 2)}
    for w in (1, 2):
        lo = task_overhead(engines["local", w], args.noop_tasks)
        ra = task_overhead(engines["ray", w], args.noop_tasks)
        print(f"bare task, {w} worker(s): local {1e3 * lo:.2f} ms, ray {1e3 * ra:.2f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bulk = make_bulk_tars(root, args.tars, args.papers_per_tar)
        size = sum(p.stat().st_size for p in bulk.iterdir())
        print(f"inputs: {args.tars} bulk tars, {args.tars * args.papers_per_tar} papers, "
              f"{size / 1e6:.1f} MB")
        opts = options_from_config("arxiv", None, shard_size=40)
        build_s: dict = {}
        digests = set()
        pairs = 0
        for r in range(args.repeat):
            for (name, w), eng in engines.items():
                out = root / f"pool_{name}_{w}_{r}"
                t = time.perf_counter()
                res = build_pool([str(bulk)], out, opts, engine=eng)
                dt = time.perf_counter() - t
                build_s[name, w] = min(dt, build_s.get((name, w), dt))
                pairs = res.report["pairs_written"]
                digests.add(_digest(out))
        for name, w in engines:
            print(f"build-pool {name:5s} -j {w}: {build_s[name, w]:6.2f} s, "
                  f"{pairs / build_s[name, w]:.1f} pairs/s")
        print(f"build-pool outputs identical on every engine and worker count: {len(digests) == 1}")
        pool = root / "pool_local_1_0"
        import pyarrow.parquet as pq

        from datacomp_sci.core.uids import save_subset, uids_to_u8u8

        uids = sorted(u for f in sorted((pool / "metadata").glob("*.parquet"))
                      for u in pq.read_table(f, columns=["uid"])["uid"].to_pylist())
        save_subset(root / "half.npy", uids_to_u8u8(uids[::2]))
        n_in = len(list((pool / "shards").glob("*.tar")))
        reshard_s: dict = {}
        digests = set()
        for r in range(args.repeat):
            for (name, w), eng in engines.items():
                out = root / f"reshard_{name}_{w}_{r}"
                t = time.perf_counter()
                reshard([str(pool)], root / "half.npy", out,
                        ReshardOptions(shard_size=20, use_index_cache=False, engine=eng))
                dt = time.perf_counter() - t
                reshard_s[name, w] = min(dt, reshard_s.get((name, w), dt))
                digests.add(_digest(out))
        for name, w in engines:
            print(f"reshard    {name:5s} -j {w}: {reshard_s[name, w]:6.2f} s "
                  f"({n_in} input shards)")
        print(f"reshard outputs identical on every engine and worker count: {len(digests) == 1}")
    for w in (1, 2):
        per_unit = build_s["local", w] / args.tars
        over = (build_s["ray", w] - build_s["local", w]) / args.tars
        print(f"build-pool, {w} worker(s): {per_unit:.2f} s per unit locally; ray adds "
              f"{over * 1e3:+.0f} ms per unit ({over / per_unit:+.1%})")
    for name in ("local", "ray"):
        print(f"scaling 1 -> 2 workers, {name}: build-pool "
              f"{build_s[name, 1] / build_s[name, 2]:.2f}x, reshard "
              f"{reshard_s[name, 1] / reshard_s[name, 2]:.2f}x")
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, ray {ray.__version__}")
    ray.shutdown()


if __name__ == "__main__":
    main()
