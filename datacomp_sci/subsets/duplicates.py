"""Deduplication over pools: the dedup columns of every row (uid, sha256, perceptual hash,
image area), duplicate groups, and the report of ``datacomp-sci dedup``. The ``dedup``
filter keeps one sample per group (:mod:`.filters`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datacomp_sci.core.uids import u8u8_to_uids, uids_to_u8u8
from datacomp_sci.core.util import atomic_open
from datacomp_sci.pool.pools import Pool, discover_pools
from datacomp_sci.pool.query import connect
from datacomp_sci.subsets.dedup import (
    DEFAULT_RADIUS,
    DedupInput,
    DedupResult,
    PhashStats,
    ensure_phash_sidecars,
    find_duplicates,
)
from datacomp_sci.subsets.options import RunOptions


def load_dedup_input(pools: list[Pool], opts: RunOptions) -> tuple[np.ndarray, DedupInput, str]:
    """uids and the dedup columns of every row of the pools (phash/sha256 NULL if absent)."""
    con = connect(pools, threads=opts.threads, memory_limit=opts.memory_limit)
    try:
        cols = {r[0] for r in con.execute("DESCRIBE pools").fetchall()}
        ph = "phash" if "phash" in cols else "NULL::UBIGINT"
        sha = "sha256" if "sha256" in cols else "NULL::VARCHAR"
        sql = f"""SELECT uid,
                  CASE WHEN {sha} IS NULL THEN NULL ELSE hash({sha}) END AS sha_key,
                  {ph} AS phash,
                  coalesce(original_width::BIGINT * original_height::BIGINT, -1) AS area
                  FROM pools WHERE uid IS NOT NULL"""
        table = con.sql(sql).to_arrow_table()
    except duckdb.Error as e:
        raise ValueError(f"cannot read the dedup columns: {e}") from e
    finally:
        con.close()
    uids = uids_to_u8u8(table.column("uid"))

    def u64(name: str) -> tuple[np.ndarray, np.ndarray]:
        col = table.column(name)
        valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        vals = np.asarray(col.fill_null(0).to_numpy(), dtype=np.uint64)
        return vals, valid

    sha_key, sha_valid = u64("sha_key")
    phash, ph_valid = u64("phash")
    data = DedupInput(
        uid_hi=np.ascontiguousarray(uids["f0"]),
        uid_lo=np.ascontiguousarray(uids["f1"]),
        area=np.asarray(table.column("area").to_numpy(), dtype=np.int64),
        sha_key=sha_key,
        sha_valid=sha_valid,
        phash=phash,
        phash_valid=ph_valid,
    )
    return uids, data, sql


@dataclass
class DedupReport:
    """What ``dedup_report`` found (``datacomp-sci dedup``)."""

    pools: list[Pool]
    phash: PhashStats
    stats: dict[str, Any]
    groups_output: Path | None = None


def _write_groups(path: Path, uids: np.ndarray, res: DedupResult) -> None:
    """Rows in duplicate groups: uid, group (the kept uid), kept; sorted by group, uid."""
    sizes = np.bincount(res.group)
    rows = np.flatnonzero(sizes[res.group] > 1)
    keeper = np.empty(len(sizes), dtype=np.int64)
    kept_rows = np.flatnonzero(res.keep)
    keeper[res.group[kept_rows]] = kept_rows
    uid_str = u8u8_to_uids(uids[rows])
    group_str = u8u8_to_uids(uids[keeper[res.group[rows]]])
    table = pa.table({"group": group_str, "uid": uid_str, "kept": res.keep[rows]})
    table = table.sort_by([("group", "ascending"), ("kept", "descending"), ("uid", "ascending")])
    with atomic_open(path) as f:
        pq.write_table(table, f, compression="zstd")


def dedup_report(
    pool_paths: list[str | Path],
    radius: int = DEFAULT_RADIUS,
    opts: RunOptions | None = None,
    groups_output: str | Path | None = None,
) -> DedupReport:
    """Compute phash sidecars, group duplicates, optionally write the groups as parquet."""
    opts = opts or RunOptions()
    pools = discover_pools(pool_paths)
    ph = ensure_phash_sidecars(pools, workers=opts.workers, on_shard=opts.on_shard)
    uids, data, _sql = load_dedup_input(pools, opts)
    res = find_duplicates(data, radius=radius)
    report = DedupReport(pools=pools, phash=ph, stats=res.stats)
    if groups_output is not None:
        report.groups_output = Path(groups_output)
        _write_groups(report.groups_output, uids, res)
    return report
