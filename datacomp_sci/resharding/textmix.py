"""``reshard --text-from kg_captions``: replace sample captions by KG-derived texts.

The texts come from the sidecar ``curate entities --kg-captions`` writes
(``SUBSET.kg_captions.parquet``: ``uid``, ``entity``, ``kind``, ``text``; docs/formats.md,
"KG captions"). For each uid with candidates, EntityNet's choice is made once,
deterministically from (uid, seed): with probability ``mix`` the caption is replaced, by
a candidate whose kind is drawn with EntityNet's weights (alias swap 0.6, type 0.2,
description 0.1, renormalised over the kinds the uid has), then uniformly within the
kind (candidates in sidecar order). Every copy of a uid gets the same text; other
members, and the caption inside the sample's ``.json``, are copied unchanged.

The choices are computed once per reshard and saved under ``_work`` as sorted 16-byte
uid keys, offsets and a UTF-8 blob, which the phase-1 workers search by binary search.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datacomp_sci.core.draws import uniform_draws
from datacomp_sci.core.tars import UID_KEY
from datacomp_sci.core.uids import uids_to_u8u8
from datacomp_sci.core.util import atomic_open, sha256_file

KIND_WEIGHTS = {"alias": 0.6, "type": 0.2, "description": 0.1}
NAMED_SOURCES = ("kg_captions",)
_STREAM_MIX, _STREAM_KIND, _STREAM_PICK = 1, 2, 3


@dataclass(frozen=True)
class TextSource:
    path: Path
    sha256: str
    mix: float
    seed: int


def resolve_text_source(text_from: str, subset_path: Path, mix: float, seed: int) -> TextSource:
    """``kg_captions`` -> ``SUBSET.kg_captions.parquet`` beside the subset; else a path."""
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"--text-mix must be in [0, 1] (got {mix})")
    if text_from in NAMED_SOURCES:
        path = subset_path.with_suffix(f".{text_from}.parquet")
        if not path.is_file():
            raise FileNotFoundError(
                f"--text-from {text_from}: {path} does not exist; write it with "
                f"`datacomp-sci curate entities ... --kg-captions -o {subset_path}`")
    else:
        path = Path(text_from)
        if not path.is_file():
            raise FileNotFoundError(f"--text-from {text_from}: no such file (give kg_captions "
                                    "or the path of a .kg_captions.parquet)")
    return TextSource(path.resolve(), sha256_file(path), float(mix), int(seed))


def choose_texts(src: TextSource) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Per uid: the text written instead of its caption (only uids whose draw says so).
    Returns sorted 16-byte keys, int64 offsets (n + 1), the UTF-8 blob, and counts."""
    try:
        table = pq.read_table(src.path, columns=["uid", "kind", "text"])
    except (OSError, KeyError, ValueError, pa.ArrowInvalid) as e:
        raise ValueError(f"{src.path}: not a kg_captions sidecar (uid, entity, kind, text): {e}") from e
    table = table.filter(pc.and_(table.column("uid").is_valid(),
                                         table.column("text").is_valid()))
    table = table.sort_by([("uid", "ascending")])  # stable: keeps the sidecar order per uid
    uid_col = table.column("uid").combine_chunks()
    kinds = table.column("kind").to_pylist()
    texts = table.column("text").to_pylist()
    arr = uids_to_u8u8(uid_col)
    n = len(arr)
    if n == 0:
        return np.empty(0, UID_KEY), np.zeros(1, np.int64), np.empty(0, np.uint8), {
            "uids_with_candidates": 0, "uids_replaced": 0}
    starts = np.flatnonzero(np.r_[True, (arr["f0"][1:] != arr["f0"][:-1])
                                  | (arr["f1"][1:] != arr["f1"][:-1])])
    ends = np.r_[starts[1:], n]
    hi, lo = arr["f0"][starts], arr["f1"][starts]
    use = uniform_draws(hi, lo, src.seed, _STREAM_MIX) < src.mix
    u_kind = uniform_draws(hi, lo, src.seed, _STREAM_KIND)
    u_pick = uniform_draws(hi, lo, src.seed, _STREAM_PICK)
    chosen_rows, by_kind = [], dict.fromkeys(KIND_WEIGHTS, 0)
    for g in np.flatnonzero(use).tolist():
        rows = range(int(starts[g]), int(ends[g]))
        groups: dict[str, list[int]] = {}
        for r in rows:
            if kinds[r] in KIND_WEIGHTS:
                groups.setdefault(kinds[r], []).append(r)
        if not groups:
            chosen_rows.append(-1)
            continue
        present = [k for k in KIND_WEIGHTS if k in groups]
        w = np.cumsum([KIND_WEIGHTS[k] for k in present])
        kind = present[min(int(np.searchsorted(w, u_kind[g] * w[-1], "right")), len(present) - 1)]
        pool = groups[kind]
        chosen_rows.append(pool[min(int(u_pick[g] * len(pool)), len(pool) - 1)])
        by_kind[kind] += 1
    groups_used = np.flatnonzero(use)
    valid = np.asarray(chosen_rows, dtype=np.int64) >= 0
    groups_used, rows = groups_used[valid], np.asarray(chosen_rows, dtype=np.int64)[valid]
    encoded = [texts[int(r)].encode("utf-8") for r in rows]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    be = np.empty((len(groups_used), 2), dtype=">u8")
    be[:, 0], be[:, 1] = hi[groups_used], lo[groups_used]
    keys = be.view(UID_KEY).ravel()  # sorted: the table was sorted by uid
    stats = {"uids_with_candidates": int(len(starts)), "uids_replaced": int(len(keys)),
             "replaced_by_kind": by_kind}
    return keys, offsets, blob, stats


def save_choices(path: Path, src: TextSource) -> dict:
    keys, offsets, blob, stats = choose_texts(src)
    with atomic_open(path, fsync=False) as f:
        np.savez(f, keys=keys, offsets=offsets, blob=blob)
    return stats


class TextChoices:
    """Phase-1 lookup: the replacement text of a uid key, or None."""

    def __init__(self, path: str | Path):
        z = np.load(path)
        self.keys, self.offsets, self.blob = z["keys"], z["offsets"], z["blob"]

    def get(self, key: bytes) -> bytes | None:
        k = np.frombuffer(key, dtype=UID_KEY)
        i = int(np.searchsorted(self.keys, k, "left")[0])
        if i == len(self.keys) or self.keys[i] != k[0]:
            return None
        return self.blob[self.offsets[i]:self.offsets[i + 1]].tobytes()
