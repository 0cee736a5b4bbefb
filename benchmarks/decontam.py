"""Benchmark: the decontamination search (pool phashes vs evaluation phashes).

Random 64-bit hashes stand in for a pool (CommonPool small: 12.8M) and for DataComp's
evaluation images (about 0.5M); a share of the pool is planted as near copies (1-3 bits
flipped) of evaluation hashes. Prints the time, peak RSS and the copies found. Hashing
the images themselves is measured by the filter benchmark's phash step, not here.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", type=int, default=12_800_000, help="pool hashes")
    ap.add_argument("--evals", type=int, default=500_000, help="evaluation hashes")
    ap.add_argument("--planted", type=int, default=10_000, help="near copies planted in the pool")
    ap.add_argument("--radius", type=int, default=4)
    args = ap.parse_args(argv)

    from datacomp_sci.subsets.decontam import cross_pairs, nearest_matches

    rng = np.random.default_rng(0)
    ref = rng.integers(0, 2**64 - 1, args.evals, dtype=np.uint64, endpoint=True)
    pool = rng.integers(0, 2**64 - 1, args.pool, dtype=np.uint64, endpoint=True)
    at = rng.choice(args.pool, args.planted, replace=False)
    flips = np.zeros(args.planted, np.uint64)
    for _ in range(3):
        flips ^= np.uint64(1) << rng.integers(0, 64, args.planted).astype(np.uint64)
    pool[at] = ref[rng.integers(0, args.evals, args.planted)] ^ flips
    t0 = time.perf_counter()
    i, j, d = nearest_matches(*cross_pairs(pool, ref, args.radius))
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    found = np.isin(at, i).sum()
    print(f"pool {args.pool:,} x evaluation {args.evals:,} hashes, radius {args.radius}: "
          f"{secs:.2f} s, peak RSS {rss:.2f} GiB; matched rows {len(i):,}, planted copies "
          f"found {found:,}/{args.planted:,}")


if __name__ == "__main__":
    main()
