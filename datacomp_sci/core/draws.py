"""Deterministic per-uid random numbers: a function of (uid, seed, stream) only.

Used wherever a step draws per sample (MetaCLIP balancing, KG caption mixing) so that
the result does not depend on row order, the split of rows into pools or files, or the
number of workers. SplitMix64's finaliser over the two uid halves and the seed.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (a bijection on uint64 with good avalanche)."""
    with np.errstate(over="ignore"):
        x = np.asarray(x, dtype=np.uint64).copy()
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def uniform_draws(uid_hi: np.ndarray, uid_lo: np.ndarray, seed: int, stream: int = 0) -> np.ndarray:
    """One uniform number in [0, 1) per uid, a function of (uid, seed, stream) only."""
    salt = mix64(np.array([(seed * 0x100000001 + stream) & 0xFFFFFFFFFFFFFFFF],
                          dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        h = mix64(np.asarray(uid_hi, dtype=np.uint64) ^ salt)
        h = mix64(h ^ (np.asarray(uid_lo, dtype=np.uint64) * _GOLDEN + salt))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
