"""Concept-balanced curation over pools: match every pair's texts, count per concept over
all the pools together, balance at one or several thresholds, write subsets.

Shared by ``curate metaclip`` (concepts = MetaCLIP metadata entries) and
``curate entities`` (concepts = knowledge-graph entities; :mod:`.entities`).

Matching is done per metadata file (the unit of parallel work, one automaton per worker
process) and cached in a row-aligned sidecar ``DIR/sidecars/<stem>.match-<key>.npz``
(``<key>``: a hash of the concepts, the case folding and the text columns): uid halves,
CSR ``offsets`` (int64, rows + 1) and ``concepts`` (int32). A later run with another
``t``, seed or ``--counts`` reads the sidecars and matches nothing. A sidecar records the
size and mtime of its metadata file and is recomputed when they change. Pools whose
folder is read-only get their sidecars in the user cache folder instead.

Balancing streams the sidecars file by file: memory holds one file's matches and the
kept uids, never per-pair Python objects.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datacomp_sci.core.uids import SUBSET_DTYPE, uids_to_u8u8
from datacomp_sci.core.util import atomic_open, parallel_map, sha256_file, user_cache_dir
from datacomp_sci.curation.balance import (
    balance,
    entry_probabilities,
    plot_counts,
    read_counts,
    write_counts,
)
from datacomp_sci.curation.matching import Matcher, distinct_sorted
from datacomp_sci.pool.pools import Pool, discover_pools

MATCH_FORMAT = "datacomp-sci match v1"
DEFAULT_TEXT_COLUMNS = ("text",)
_BATCH_ROWS = 1 << 16


# --- concepts -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ConceptSource:
    """Where the concepts come from; small and picklable (workers rebuild the matcher)."""

    kind: str  # "metaclip" | "entities"
    path: str
    casefold: bool = False
    min_sitelinks: int | None = None  # entities
    types: tuple[str, ...] = ()  # entities


@dataclass
class Concepts:
    """Concepts (what is counted and balanced) and the keys that name them."""

    ids: list[str]  # one per concept: the entry itself (metaclip) or the entity id
    labels: list[str] | None  # entities: the label of each
    keys: list[str]  # strings matched as " key "
    key_concepts: list[list[int]] | None  # key -> concepts (None: key i is concept i)
    stats: dict[str, Any] = field(default_factory=dict)


def load_concepts(src: ConceptSource) -> Concepts:
    if src.kind == "metaclip":
        from datacomp_sci.curation.matching import load_entries

        entries = load_entries(src.path)
        return Concepts(ids=entries, labels=None, keys=entries, key_concepts=None,
                        stats={"entries": len(entries), "distinct_entries": len(set(entries))})
    if src.kind == "entities":
        from datacomp_sci.curation.entities import entity_concepts

        return entity_concepts(src)
    raise ValueError(f"unknown concept kind {src.kind!r}")


def concepts_key(concepts: Concepts, casefold: bool, text_columns: tuple[str, ...]) -> str:
    """Hash naming the match sidecars: same keys, mapping, folding and columns, same key."""
    h = hashlib.sha256()
    h.update(json.dumps([MATCH_FORMAT, casefold, list(text_columns)]).encode())
    for key in concepts.keys:
        h.update(key.encode("utf-8", "surrogatepass") + b"\x00")
    h.update(json.dumps(concepts.key_concepts).encode())
    return h.hexdigest()[:16]


_MATCHERS: dict[tuple, Matcher] = {}


def matcher_for(src: ConceptSource) -> Matcher:
    """The matcher of a concept source, built once per process."""
    key = (src, os.stat(src.path).st_mtime_ns)
    if key not in _MATCHERS:
        _MATCHERS.clear()
        c = load_concepts(src)
        _MATCHERS[key] = Matcher(c.keys, c.key_concepts, casefold=src.casefold)
    return _MATCHERS[key]


# --- matching one metadata file -----------------------------------------------------------
@dataclass(frozen=True)
class MatchUnit:
    metadata_file: Path
    sidecar: Path
    src: ConceptSource
    text_columns: tuple[str, ...]


@dataclass
class FileMatches:
    """Row-aligned matches of one metadata file (rows without a uid are left out)."""

    uid_hi: np.ndarray
    uid_lo: np.ndarray
    offsets: np.ndarray
    concepts: np.ndarray
    rows_without_uid: int = 0
    columns_missing: tuple[str, ...] = ()


def _texts_of(batch: pa.RecordBatch, columns: tuple[str, ...]) -> tuple[list, np.ndarray]:
    """All texts of a batch (string and list<string> columns) and the row of each."""
    texts: list = []
    rows: list[np.ndarray] = []
    for name in columns:
        i = batch.schema.get_field_index(name)
        if i < 0:
            continue
        col = batch.column(i)
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
            flat = pc.list_flatten(col)
            parents = np.asarray(pc.list_parent_indices(col).to_numpy(), dtype=np.int64)
            texts.extend(flat.to_pylist())
            rows.append(parents)
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            texts.extend(col.to_pylist())
            rows.append(np.arange(len(col), dtype=np.int64))
        else:
            raise ValueError(f"text column {name!r} is {col.type}: give string or list<string> "
                             "columns to --text-columns")
    return texts, (np.concatenate(rows) if rows else np.empty(0, np.int64))


def match_file(unit: MatchUnit) -> FileMatches:
    """Match every row of one metadata file (no caching)."""
    matcher = matcher_for(unit.src)
    pf = pq.ParquetFile(unit.metadata_file)
    names = pf.schema_arrow.names
    if "uid" not in names:
        raise ValueError(f"{unit.metadata_file}: no uid column")
    present = tuple(c for c in unit.text_columns if c in names)
    missing = tuple(c for c in unit.text_columns if c not in names)
    his, los, lens, concepts = [], [], [], []
    without_uid = 0
    for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=["uid", *present]):
        uid = batch.column(0)
        valid = np.asarray(uid.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        without_uid += int((~valid).sum())
        texts, rows = _texts_of(batch, present)
        m = matcher.match(texts)
        row = rows[m.text]
        pair = distinct_sorted(row << 32 | m.concept.astype(np.int64))
        row, concept = pair >> 32, (pair & 0xFFFFFFFF).astype(np.int32)
        keep_rows = np.flatnonzero(valid)
        counts = np.bincount(row, minlength=batch.num_rows)[keep_rows]
        if not valid.all():
            concept = concept[valid[row]]
        arr = uids_to_u8u8(uid.filter(pa.array(valid)))
        his.append(arr["f0"])
        los.append(arr["f1"])
        lens.append(counts)
        concepts.append(concept)
    lengths = np.concatenate(lens) if lens else np.empty(0, np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return FileMatches(
        uid_hi=np.concatenate(his) if his else np.empty(0, np.uint64),
        uid_lo=np.concatenate(los) if los else np.empty(0, np.uint64),
        offsets=offsets,
        concepts=np.concatenate(concepts) if concepts else np.empty(0, np.int32),
        rows_without_uid=without_uid, columns_missing=missing)


def _source_ident(path: Path) -> np.ndarray:
    st = path.stat()
    return np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)


def read_sidecar(unit: MatchUnit) -> FileMatches | None:
    """The cached matches of a unit, or None when absent or stale."""
    try:
        with np.load(unit.sidecar, allow_pickle=False) as z:
            if not np.array_equal(z["source"], _source_ident(unit.metadata_file)):
                return None
            return FileMatches(uid_hi=z["uid_hi"], uid_lo=z["uid_lo"], offsets=z["offsets"],
                               concepts=z["concepts"], rows_without_uid=int(z["rows_without_uid"]),
                               columns_missing=tuple(str(c) for c in z["columns_missing"]))
    except (OSError, KeyError, ValueError):
        return None


def _write_sidecar(unit: MatchUnit, m: FileMatches) -> None:
    with atomic_open(unit.sidecar, fsync=False) as f:
        np.savez(f, source=_source_ident(unit.metadata_file), uid_hi=m.uid_hi, uid_lo=m.uid_lo,
                 offsets=m.offsets, concepts=m.concepts,
                 rows_without_uid=np.int64(m.rows_without_uid),
                 columns_missing=np.array(m.columns_missing, dtype=str))


def ensure_matches(unit: MatchUnit) -> tuple[MatchUnit, int, bool]:
    """Worker: make the unit's sidecar unless a fresh one exists -> (unit, rows, cached)."""
    cached = read_sidecar(unit)
    if cached is not None:
        return unit, len(cached.offsets) - 1, True
    m = match_file(unit)
    _write_sidecar(unit, m)
    return unit, len(m.offsets) - 1, False


def sidecar_for(pool: Pool, metadata_file: Path, key: str) -> Path:
    """``DIR/sidecars/<stem>.match-<key>.npz``; the user cache when the pool is read-only."""
    parent = metadata_file.parent
    base = parent.parent if parent.name == "metadata" else parent
    folder = base / "sidecars"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder / f"{metadata_file.stem}.match-{key}.npz"
    except OSError:
        pass
    ident = hashlib.sha256(str(metadata_file).encode()).hexdigest()[:16]
    return user_cache_dir() / "match" / f"{ident}-{metadata_file.stem}.match-{key}.npz"


# --- the whole run ------------------------------------------------------------------------
@dataclass
class CurateOptions:
    """How to run (not part of the result)."""

    workers: int = 1
    on_file: Callable[[int, bool], None] | None = None  # rows of a file matched, cached?
    plot: bool = True


@dataclass
class CurateSpec:
    """What to curate."""

    src: ConceptSource
    thresholds: tuple[float, ...]
    seed: int = 0
    text_columns: tuple[str, ...] = DEFAULT_TEXT_COLUMNS
    counts_file: str | None = None
    and_files: list[str] = field(default_factory=list)
    not_files: list[str] = field(default_factory=list)
    kg_captions: bool = False


@dataclass
class CurateOutput:
    """One written subset (one threshold)."""

    t: float
    result: Any  # filters.FilterResult
    counts_path: Path
    plot_path: Path | None
    kg_captions_path: Path | None = None


@dataclass
class CurateResult:
    outputs: list[CurateOutput]
    stats: dict[str, Any]


def output_paths(output: Path, thresholds: tuple[float, ...]) -> list[Path]:
    """One subset per threshold: ``OUT.npy`` for one, ``OUT_t<T>.npy`` for a sweep."""
    if len(thresholds) == 1:
        return [output]
    return [output.with_name(f"{output.stem}_t{t:g}{output.suffix}") for t in thresholds]


def counts_path_for(output: Path) -> Path:
    return output.with_suffix(".entry_counts.parquet")


def plot_path_for(output: Path) -> Path:
    return output.with_suffix(".counts.png")


def kg_captions_path_for(output: Path) -> Path:
    return output.with_suffix(".kg_captions.parquet")


def parse_thresholds(value: str | float | list | tuple) -> tuple[float, ...]:
    """``"20000,50000"`` -> (20000.0, 50000.0); every t positive, no repeats."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    out: list[float] = []
    for item in items:
        try:
            t = float(str(item).strip())
        except ValueError:
            raise ValueError(f"--t takes numbers separated by commas (got {item!r})") from None
        if not t > 0 or t != t:
            raise ValueError(f"--t must be positive (got {item!r})")
        if t in out:
            raise ValueError(f"--t lists {item} twice")
        out.append(t)
    if not out:
        raise ValueError("--t needs at least one threshold")
    return tuple(out)


def _units(pools: list[Pool], spec: CurateSpec, key: str) -> list[MatchUnit]:
    return [MatchUnit(f, sidecar_for(p, f, key), spec.src, spec.text_columns)
            for p in pools for f in p.metadata_files]


def _check_text_columns(pools: list[Pool], columns: tuple[str, ...]) -> dict[str, int]:
    """How many metadata files hold each text column; one held by none is an error."""
    held = dict.fromkeys(columns, 0)
    for p in pools:
        for f in p.metadata_files:
            names = set(pq.read_schema(f).names)
            for c in columns:
                held[c] += c in names
    absent = [c for c, n in held.items() if n == 0]
    if absent:
        raise ValueError(f"no metadata file of the pools has the text column(s) "
                         f"{', '.join(absent)}: check --text-columns (e.g. text,mentions)")
    return held


def run_curation(pool_paths: list[str | Path], output: str | Path, spec: CurateSpec,
                 opts: CurateOptions | None = None) -> CurateResult:
    """Match, count, balance at each threshold and write one subset per threshold (with its
    sidecar ``.json``, ``.entry_counts.parquet`` and ``.counts.png``)."""
    from datacomp_sci.subsets.filters import (
        FilterSpec,
        Selection,
        check_subset_output,
        write_selection,
    )

    opts = opts or CurateOptions()
    fspec = FilterSpec(name=spec.src.kind, and_files=list(spec.and_files),
                       not_files=list(spec.not_files))
    output = check_subset_output(output, fspec)
    if not spec.text_columns:
        raise ValueError("--text-columns needs at least one column")
    pools = discover_pools(pool_paths)
    held = _check_text_columns(pools, spec.text_columns)
    concepts = load_concepts(spec.src)
    n = len(concepts.ids)
    given_counts = read_counts(spec.counts_file, concepts.ids) if spec.counts_file else None
    key = concepts_key(concepts, spec.src.casefold, spec.text_columns)
    units = _units(pools, spec, key)
    pool_of = [p.name for p in pools for _f in p.metadata_files]

    rows = cached = 0
    for _unit, n_rows, was_cached in parallel_map(ensure_matches, units, opts.workers):
        rows += n_rows
        cached += was_cached
        if opts.on_file:
            opts.on_file(n_rows, was_cached)

    # pass 1: counts over all pools together (unless given)
    matched_rows = 0
    counts = np.zeros(n, dtype=np.int64)
    without_uid = 0
    rows_by_pool = dict.fromkeys(pool_of, 0)
    for unit, pname in zip(units, pool_of, strict=True):
        m = _must_read(unit)
        rows_by_pool[pname] += len(m.offsets) - 1
        counts += np.bincount(m.concepts, minlength=n)
        matched_rows += int((np.diff(m.offsets) > 0).sum())
        without_uid += m.rows_without_uid
    use_counts = given_counts if given_counts is not None else counts

    # pass 2: balance every threshold, file by file
    kept_uids: list[list[np.ndarray]] = [[] for _ in spec.thresholds]
    kept_entry = [np.zeros(n, dtype=np.int64) for _ in spec.thresholds]
    expected = [0.0] * len(spec.thresholds)
    kept_by_pool = [dict.fromkeys(pool_of, 0) for _ in spec.thresholds]
    kg_rows: list[list[tuple[MatchUnit, np.ndarray]]] = [[] for _ in spec.thresholds]
    for unit, pname in zip(units, pool_of, strict=True):
        m = _must_read(unit)
        for k, t in enumerate(spec.thresholds):
            b = balance(m.offsets, m.concepts, m.uid_hi, m.uid_lo, use_counts, t, spec.seed)
            kept_entry[k] += b.kept_per_entry
            expected[k] += b.expected
            kept_by_pool[k][pname] += int(b.keep.sum())
            sel = np.empty(int(b.keep.sum()), dtype=SUBSET_DTYPE)
            sel["f0"], sel["f1"] = m.uid_hi[b.keep], m.uid_lo[b.keep]
            kept_uids[k].append(sel)
            if spec.kg_captions:
                kg_rows[k].append((unit, b.keep))

    base_stats = {
        "rows": rows, "rows_by_pool": rows_by_pool, "rows_without_uid": without_uid,
        "rows_matched": matched_rows,
        "concepts": n, "concepts_matched": int((counts > 0).sum()),
        "match_sidecars_reused": cached, "match_sidecars_computed": len(units) - cached,
        "text_columns_held_by_files": held, **concepts.stats,
    }
    params = _params(spec, concepts)
    outputs: list[CurateOutput] = []
    for k, (t, out) in enumerate(zip(spec.thresholds, output_paths(output, spec.thresholds),
                                     strict=True)):
        uids = np.concatenate(kept_uids[k]) if kept_uids[k] else np.empty(0, SUBSET_DTYPE)
        counts_out, plot_out = counts_path_for(out), plot_path_for(out)
        write_counts(counts_out, concepts.ids, use_counts, entry_probabilities(use_counts, t),
                     kept_entry[k], labels=concepts.labels)
        extra: dict[str, Any] = {"entry_counts": counts_out.name}
        if opts.plot:
            plot_counts(plot_out, use_counts, kept_entry[k], t,
                        f"{spec.src.kind}: {Path(spec.src.path).name}, t = {t:g}")
            extra["plot"] = plot_out.name
        kg_out = None
        if spec.kg_captions:
            from datacomp_sci.curation.kgtext import write_kg_captions

            kg_out = kg_captions_path_for(out)
            extra["kg_captions"] = kg_out.name
            extra["kg_captions_stats"] = write_kg_captions(kg_out, kg_rows[k], spec.src, concepts)
        stats = {**base_stats, "t": t, "kept": int(len(uids)), "kept_by_pool": kept_by_pool[k],
                 "head_concepts": int((use_counts > t).sum()),
                 "expected_kept": round(expected[k], 3)}
        sel = Selection(uids, spec.src.kind, None, {**params, "t": t}, stats)
        res = write_selection(out, pools, sel, fspec, extra=extra,
                              versions=("pyahocorasick", "numpy"))
        outputs.append(CurateOutput(t, res, counts_out, plot_out if opts.plot else None, kg_out))
    return CurateResult(outputs=outputs, stats=base_stats)


def _must_read(unit: MatchUnit) -> FileMatches:
    m = read_sidecar(unit)
    if m is None:
        raise FileNotFoundError(f"match sidecar {unit.sidecar} vanished or went stale during the "
                                "run: rerun the command")
    return m


def _params(spec: CurateSpec, concepts: Concepts) -> dict[str, Any]:
    src = spec.src
    params: dict[str, Any] = {
        "seed": spec.seed, "text_columns": list(spec.text_columns), "casefold": src.casefold,
        "source": str(Path(src.path).resolve()), "source_sha256": sha256_file(src.path),
        "matching": "MetaCLIP spacing, case-sensitive unless casefold, ' key ' substrings "
                    "(pyahocorasick)",
        "draw": "splitmix64(uid, seed) < 1 - prod(1 - t / max(count_e, t))",
    }
    if spec.counts_file:
        params["counts"] = {"path": str(Path(spec.counts_file).resolve()),
                            "sha256": sha256_file(spec.counts_file)}
    if src.kind == "entities":
        params.update(min_sitelinks=src.min_sitelinks, types=list(src.types))
    return params
