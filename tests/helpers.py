"""Helpers shared by the test modules (imported as ``from helpers import ...``; pytest puts
``tests/`` on the path): tiny shards in img2dataset's webdataset layout, tiny pools of
metadata parquet, subset readers and DataComp results files.

``make_shards(folder, n_shards, per_shard, uid_fn)`` writes, per shard N, ``{N:08d}.tar``
(``K.jpg``, ``K.json``, ``K.txt``, members in sorted-extension order, written by
webdataset's ``TarWriter``), ``{N:08d}.parquet`` and ``{N:08d}_stats.json``, exactly the
files img2dataset writes for DataComp (docs/formats.md, "Shard layout"), and returns what
it wrote so tests can assert on it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image

from datacomp_sci.core.schema import METADATA_SCHEMA
from datacomp_sci.core.uids import pair_uid, u8u8_to_uids
from datacomp_sci.core.util import sha256_bytes

UidFn = Callable[[int, int], "str | None"]


_IMG2DATASET_SCHEMA = pa.schema([
    ("uid", pa.string()), ("caption", pa.string()), ("url", pa.string()), ("key", pa.string()),
    ("status", pa.string()), ("error_message", pa.string()), ("width", pa.int32()),
    ("height", pa.int32()), ("original_width", pa.int32()), ("original_height", pa.int32()),
    ("exif", pa.string()), ("sha256", pa.string()),
])


@dataclass(frozen=True)
class FakeSample:
    """One sample written by :func:`make_shards`."""

    shard: int
    index: int
    key: str  # img2dataset key, e.g. "000000010023"
    uid: str | None  # None: the sample's json has no uid
    caption: str
    members: dict[str, bytes]  # extension -> exact member bytes ("jpg", "json", "txt")


def default_uid(shard: int, index: int) -> str:
    return pair_uid("test", str(shard), str(index))


def tiny_jpeg(shard: int, index: int, size: int = 8) -> bytes:
    """A small, valid RGB JPEG whose colour depends on (shard, index)."""
    colour = ((shard * 37 + index * 11) % 256, (index * 53) % 256, (shard * 91 + 7) % 256)
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _sample(shard: int, index: int, key_digits: int, uid_fn: UidFn,
            caption_fn: Callable[[int, int], str], image_fn: Callable[[int, int], bytes]) -> FakeSample:
    key = f"{shard * 10**key_digits + index:0{key_digits + 8}d}"
    uid = uid_fn(shard, index)
    caption = caption_fn(shard, index)
    jpg = image_fn(shard, index)
    meta = {"uid": uid} if uid is not None else {}
    meta.update({
        "caption": caption, "url": f"http://example.invalid/{key}.jpg", "key": key,
        "status": "success", "error_message": None, "width": 8, "height": 8,
        "original_width": 8, "original_height": 8, "exif": "{}", "sha256": None,
    })
    members = {"jpg": jpg, "json": json.dumps(meta, indent=4).encode(), "txt": caption.encode()}
    return FakeSample(shard, index, key, uid, caption, members)


def write_shard_files(folder: Path, shard: int, samples: Sequence[FakeSample],
                      *, stats: bool = True, parquet: bool = True) -> None:
    """Write one shard's tar (+ parquet, + stats) for already built samples."""
    name = f"{shard:08d}"
    with open(folder / f"{name}.tar", "wb") as f:
        writer = wds.TarWriter(f, mtime=0.0)
        for s in samples:
            writer.write({"__key__": s.key, **s.members})
        writer.close()
    if parquet:
        rows = []
        for s in samples:
            meta = json.loads(s.members["json"])
            rows.append({k: meta.get(k) for k in _IMG2DATASET_SCHEMA.names})
        pq.write_table(pa.Table.from_pylist(rows, schema=_IMG2DATASET_SCHEMA), folder / f"{name}.parquet")
    if stats:
        n = len(samples)
        (folder / f"{name}_stats.json").write_text(json.dumps({
            "count": n, "successes": n, "failed_to_download": 0, "failed_to_resize": 0,
            "duration": 0, "start_time": 0, "end_time": 0, "status_dict": {"success": n},
        }, indent=4))


def make_shards(folder: str | Path, n_shards: int, per_shard: int | Sequence[int],
                uid_fn: UidFn = default_uid, *,
                caption_fn: Callable[[int, int], str] | None = None,
                image_fn: Callable[[int, int], bytes] = tiny_jpeg,
                samples_per_shard: int = 10000, first_shard: int = 0,
                stats: bool = True, parquet: bool = True) -> list[list[FakeSample]]:
    """Write ``n_shards`` img2dataset-layout shards into ``folder``; return their samples.

    ``per_shard`` is a count for every shard or one count per shard (unequal sizes).
    ``uid_fn(shard, index)`` gives each sample's uid (None: no uid in its json).
    ``samples_per_shard`` sets the key digits as img2dataset does (10000 -> 12 digits).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [per_shard] * n_shards if isinstance(per_shard, int) else list(per_shard)
    if len(sizes) != n_shards:
        raise ValueError("per_shard must be an int or one count per shard")
    key_digits = len(str(samples_per_shard - 1)) if samples_per_shard > 1 else 0
    caption_fn = caption_fn or (lambda s, i: f"caption of sample {i} in shard {s}")
    out = []
    for offset, size in enumerate(sizes):
        shard = first_shard + offset
        samples = [_sample(shard, i, key_digits, uid_fn, caption_fn, image_fn) for i in range(size)]
        write_shard_files(folder, shard, samples, stats=stats, parquet=parquet)
        out.append(samples)
    return out


def uid_of(i: int, prefix: str = "") -> str:
    return sha256_bytes(f"{prefix}{i}".encode())[:32]


def make_rows(schema: pa.Schema, rows: list[dict]) -> pa.Table:
    return pa.table({n: [r.get(n) for r in rows] for n in schema.names}, schema=schema)


def write_pool(root: Path, rows: list[dict], name: str | None = None, files: int = 1,
               schema: pa.Schema = METADATA_SCHEMA) -> Path:
    """A pool folder: metadata/{N:08d}.parquet (rows split over files) [+ pool.json]."""
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    per = -(-len(rows) // files)
    for n in range(files):
        pq.write_table(make_rows(schema, rows[n * per:(n + 1) * per]),
                       root / "metadata" / f"{n:08d}.parquet")
    if name is not None:
        (root / "pool.json").write_text(json.dumps({"name": name, "source": "arxiv"}))
    return root


def loaded(path: Path) -> list[str]:
    return u8u8_to_uids(np.load(path))


def write_eval_results(path: Path, values: dict[str, float] | None = None,
                       drop: tuple[str, ...] = (), extra_lines: tuple[str, ...] = ()) -> Path:
    """DataComp's eval_results.jsonl for the 40 tasks of ``datacomp38``: task i (suite
    order) scores (i+1)/100 unless ``values`` (display name -> score) says otherwise;
    tasks named in ``drop`` are left out; ``extra_lines`` are appended verbatim."""
    from datacomp_sci.core.suites import load_suite

    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, t in enumerate(load_suite("datacomp38").tasks):
        if t.name in drop:
            continue
        v = (values or {}).get(t.name, (i + 1) / 100)
        metrics = {"acc1": v, "main_metric": v if t.main_metric else None}
        lines.append(json.dumps({"key": t.key, "dataset": t.name, "metrics": metrics}))
    path.write_text("\n".join([*lines, *extra_lines]) + "\n")
    return path
