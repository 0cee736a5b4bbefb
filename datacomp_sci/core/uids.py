"""uids and DataComp subset files (docs/formats.md, "uids and subset files").

A uid is 128 bits written as 32 lowercase hex characters. A subset file is a NumPy
structured array of dtype ``u8,u8`` (high 64 bits, low 64 bits), sorted, saved with
``np.save``. Everything here is vectorised: converting 12.8M uids takes seconds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datacomp_sci.core.util import atomic_open, sha256_file

SUBSET_DTYPE = np.dtype("u8,u8")
_CHUNK = 1 << 20

# ASCII -> nibble value; 255 marks a character that is not lowercase/uppercase hex.
_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_SHIFTS = (np.arange(15, -1, -1, dtype=np.uint64) * np.uint64(4)).astype(np.uint64)


def pair_uid(source: str, paper_id: str, figure_path: str) -> str:
    """uid of a figure-caption pair: first 128 bits of sha256 of ``source:paper_id:path``.

    Stable across rebuilds and machines (the paper used random uuid4s).
    """
    digest = hashlib.sha256(f"{source}:{paper_id}:{figure_path}".encode()).hexdigest()
    return digest[:32]


def _hex_matrix_to_u8u8(mat: np.ndarray) -> np.ndarray:
    nib = _NIBBLE[mat]
    if (nib == 255).any():
        bad = int(np.argwhere((nib == 255).any(axis=1))[0, 0])
        raise ValueError(f"uid at row {bad} is not 32 hex characters: {mat[bad].tobytes()!r}")
    # two nibbles -> one byte, then each 8-byte half read as a big-endian uint64
    packed = np.ascontiguousarray((nib[:, 0::2] << 4) | nib[:, 1::2])
    halves = packed.view(">u8")
    out = np.empty(len(mat), dtype=SUBSET_DTYPE)
    out["f0"] = halves[:, 0]
    out["f1"] = halves[:, 1]
    return out


def uids_to_u8u8(uids: pa.Array | pa.ChunkedArray | Iterable[str]) -> np.ndarray:
    """Hex uid strings -> unsorted ``u8,u8`` array, in input order (vectorised)."""
    if not isinstance(uids, (pa.Array, pa.ChunkedArray)):
        uids = pa.array(list(uids), type=pa.string())
    if isinstance(uids, pa.ChunkedArray):
        parts = [uids_to_u8u8(c) for c in uids.chunks]
        return np.concatenate(parts) if parts else np.empty(0, dtype=SUBSET_DTYPE)
    if uids.null_count:
        raise ValueError(f"{uids.null_count} uids are null")
    n = len(uids)
    if n == 0:
        return np.empty(0, dtype=SUBSET_DTYPE)
    lengths = pc.binary_length(uids)
    if pc.min(lengths).as_py() != 32 or pc.max(lengths).as_py() != 32:
        raise ValueError("every uid must be exactly 32 hex characters")
    arr = uids.cast(pa.large_binary()) if uids.type == pa.large_string() else uids.cast(pa.binary())
    offsets_buf, data_buf = arr.buffers()[1], arr.buffers()[2]
    off_dtype = np.int64 if arr.type == pa.large_binary() else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=off_dtype)[arr.offset : arr.offset + n + 1]
    start = int(offsets[0])
    data = np.frombuffer(data_buf, dtype=np.uint8)[start : start + 32 * n].reshape(n, 32)
    out = np.empty(n, dtype=SUBSET_DTYPE)
    for i in range(0, n, _CHUNK):
        out[i : i + _CHUNK] = _hex_matrix_to_u8u8(data[i : i + _CHUNK])
    return out


def u8u8_to_uids(arr: np.ndarray) -> list[str]:
    """``u8,u8`` array -> list of 32-char lowercase hex uids (vectorised)."""
    n = len(arr)
    if n == 0:
        return []
    out = np.empty((n, 32), dtype=np.uint8)
    for col, field in enumerate(("f0", "f1")):
        v = np.ascontiguousarray(arr[field]).astype(np.uint64)
        nibs = (v[:, None] >> _SHIFTS[None, :]) & np.uint64(15)
        out[:, col * 16 : (col + 1) * 16] = _HEX[nibs.astype(np.intp)]
    flat = out.tobytes()
    return [flat[i * 32 : (i + 1) * 32].decode("ascii") for i in range(n)]


def sort_subset(arr: np.ndarray) -> np.ndarray:
    """Sort lexicographically by (high, low), as DataComp's resharder expects.

    uids are hashes, so the high halves are almost always distinct: one argsort on them
    suffices (several times faster than a two-key lexsort); equal high halves (repeated
    uids, or a collision) fall back to the full lexsort.
    """
    arr = np.asarray(arr)
    order = np.argsort(arr["f0"])
    hi = arr["f0"][order]
    if len(hi) > 1 and (hi[1:] == hi[:-1]).any():
        order = np.lexsort((arr["f1"], arr["f0"]))
    return arr[order]


def save_subset(path: str | os.PathLike, arr: np.ndarray) -> str:
    """Sort and save a subset with ``np.save``, atomically. Returns the file's sha256."""
    arr = sort_subset(np.asarray(arr, dtype=SUBSET_DTYPE))
    with atomic_open(path) as f:
        np.save(f, arr)
    return sha256_file(path)


def load_subset(path: str | os.PathLike) -> np.ndarray:
    """Read a subset file: ``np.save`` output, or a raw memmap of ``u8,u8`` (as upstream)."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        arr = np.load(path, mmap_mode="r")
        if arr.dtype != SUBSET_DTYPE:
            raise ValueError(
                f"{path}: dtype {arr.dtype} is not a DataComp subset (expected u8,u8 records)"
            )
        return arr
    size = path.stat().st_size
    if size % SUBSET_DTYPE.itemsize:
        raise ValueError(f"{path}: neither a .npy file nor a raw u8,u8 memmap ({size} bytes)")
    return np.memmap(path, dtype=SUBSET_DTYPE, mode="r")


def _as_void(arr: np.ndarray) -> np.ndarray:
    """View a u8,u8 array as big-endian 16-byte keys that sort like (high, low)."""
    be = np.empty((len(arr), 2), dtype=">u8")
    be[:, 0] = arr["f0"]
    be[:, 1] = arr["f1"]
    return be.view(np.dtype((np.void, 16))).ravel()


def _from_void(v: np.ndarray) -> np.ndarray:
    be = v.view(">u8").reshape(-1, 2)
    out = np.empty(len(be), dtype=SUBSET_DTYPE)
    out["f0"] = be[:, 0]
    out["f1"] = be[:, 1]
    return out


def subset_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Samples of ``a`` whose uid is in ``b``; multiplicities of ``a`` are kept."""
    va, vb = _as_void(np.asarray(a)), np.unique(_as_void(np.asarray(b)))
    return sort_subset(_from_void(va[np.isin(va, vb)]))


def subset_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Samples of ``a`` whose uid is not in ``b``; multiplicities of ``a`` are kept."""
    va, vb = _as_void(np.asarray(a)), np.unique(_as_void(np.asarray(b)))
    return sort_subset(_from_void(va[~np.isin(va, vb)]))


def subset_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """uids in either, each once."""
    v = np.unique(np.concatenate([_as_void(np.asarray(a)), _as_void(np.asarray(b))]))
    return _from_void(v)


def subset_contains(subset: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Boolean mask: which of ``query`` occur in the sorted ``subset`` (binary search)."""
    vs, vq = _as_void(np.asarray(subset)), _as_void(np.asarray(query))
    idx = np.searchsorted(vs, vq)
    idx[idx == len(vs)] = 0
    return (vs[idx] == vq) if len(vs) else np.zeros(len(vq), dtype=bool)
