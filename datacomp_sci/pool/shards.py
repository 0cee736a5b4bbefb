"""Writing shards in img2dataset's webdataset layout (docs/formats.md, "Shard layout").

Per shard N: ``{N:08d}.tar`` (``K.jpg``, ``K.json``, ``K.txt`` per sample, written by
webdataset's own ``TarWriter``, which orders members by extension as img2dataset's
writer does), ``{N:08d}.parquet`` (one row per sample, img2dataset's per-shard columns
then ours) and ``{N:08d}_stats.json``. Every file is written to a temp name and renamed;
the stats file is written last, so its presence marks the shard as complete (as
img2dataset and DataComp's resharder treat it).

Determinism: members carry a fixed mtime (``TAR_MTIME``) and img2dataset's fixed
user/group/mode, so the same samples give the same bytes. The stats file's timing fields
(``duration``, ``start_time``, ``end_time``) are 0: wall-clock times would make two
identical builds differ; the build's timings are in ``build_report.json`` instead.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datacomp_sci.core.schema import SHARD_JSON_FIELDS, SHARD_PARQUET_SCHEMA
from datacomp_sci.core.storage import Location, location

# An int: a float mtime makes tarfile add a PAX header before every member (webdataset's
# TarWriter does not pass its USTAR format through), doubling the headers readers parse.
TAR_MTIME = 0
OOM_SHARD_COUNT = 8  # DataComp's oom_shard_count: shard names have 8 digits


def key_digits(samples_per_shard: int) -> int:
    """img2dataset's ``oom_sample_per_shard``: digits of the row index inside a shard."""
    return math.ceil(math.log10(samples_per_shard)) if samples_per_shard > 1 else 0


def sample_key(shard_id: int, index: int, samples_per_shard: int,
               oom_shard_count: int = OOM_SHARD_COUNT) -> str:
    """img2dataset's key: ``f"{shard_id * 10**oom_s + idx:0{oom_s + oom_shards}d}"``."""
    oom_s = key_digits(samples_per_shard)
    return f"{shard_id * 10**oom_s + index:0{oom_s + oom_shard_count}d}"


def shard_name(shard_id: int, oom_shard_count: int = OOM_SHARD_COUNT) -> str:
    return f"{shard_id:0{oom_shard_count}d}"


@dataclass
class ShardSample:
    """One successful sample: the JPEG, the caption and its per-sample json fields."""

    jpg: bytes
    meta: dict  # keys of SHARD_JSON_FIELDS (key included)

    @property
    def caption(self) -> str:
        return self.meta["caption"]


def shard_done(folder: Path | Location, shard_id: int) -> bool:
    return location(folder).exists(f"{shard_name(shard_id)}_stats.json")


def write_shard(folder: Path | Location, shard_id: int, samples: list[ShardSample]) -> dict:
    """Write one complete shard (tar, parquet, stats), each file whole, into a local
    folder or an object-storage location; return the stats."""
    import webdataset as wds  # imports torch (~1 s): only the writer process pays it

    name = shard_name(shard_id)
    folder = location(folder)
    with folder.writer(f"{name}.tar") as f:
        writer = wds.TarWriter(f, mtime=TAR_MTIME)
        for s in samples:
            meta = {k: s.meta.get(k) for k in SHARD_JSON_FIELDS}
            writer.write({
                "__key__": meta["key"],
                "jpg": s.jpg,
                "txt": meta["caption"] if meta["caption"] is not None else "",
                "json": json.dumps(meta, indent=4),  # img2dataset's exact serialisation
            })
        writer.close()
    table = pa.Table.from_pylist(
        [{k: s.meta.get(k) for k in SHARD_JSON_FIELDS} for s in samples], schema=SHARD_PARQUET_SCHEMA
    )
    with folder.writer(f"{name}.parquet") as f:
        pq.write_table(table, f)
    status = Counter(s.meta["status"] for s in samples)
    stats = {
        "count": len(samples),
        "successes": status.get("success", 0),
        "failed_to_download": status.get("failed_to_download", 0),
        "failed_to_resize": status.get("failed_to_resize", 0),
        "duration": 0,
        "start_time": 0,
        "end_time": 0,
        "status_dict": dict(sorted(status.items())),
    }
    folder.write_text(f"{name}_stats.json", json.dumps(stats, indent=4))
    return stats
