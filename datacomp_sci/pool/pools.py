"""Pool discovery: which folder is a pool, what it is called, which parquet it holds.

A pool is any of:

* a datacomp-sci pool written by ``build-pool``: ``DIR/pool.json``,
  ``DIR/metadata/*.parquet``, ``DIR/shards/{N:08d}.tar|.parquet|_stats.json``;
* a CommonPool download: ``DIR/metadata/*.parquet`` (+ ``*.npz``) and ``DIR/shards/``;
* a bare folder of metadata parquet files (``DIR/*.parquet``).

Derived per-file columns live in sidecars, row-aligned with each metadata file, in a
``sidecars/`` folder beside ``metadata/`` (``DIR/sidecars/<stem>.lang.parquet``: language
id, see :mod:`datacomp_sci.subsets.langid`; ``DIR/sidecars/<stem>.phash.parquet``: perceptual
hash, see :mod:`datacomp_sci.subsets.dedup`). They are kept out of ``metadata/`` so that every
reader globbing ``metadata/*.parquet`` (DataComp's tools, DuckDB, pandas) still sees
only metadata. The user's metadata files are never rewritten. A sidecar records the size and row count of the
file it was computed from, so a changed metadata file makes its sidecars stale.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

SIDECAR_KINDS = ("lang", "phash")
RESERVED_NAMES = frozenset({"pools"})
_SOURCE_SIZE_KEY = b"datacomp_sci.source_size"
_SOURCE_ROWS_KEY = b"datacomp_sci.source_rows"


@dataclass(frozen=True)
class Pool:
    """One pool as the query and filter stages see it."""

    name: str  # SQL identifier: the DuckDB view name
    root: Path  # absolute pool folder
    metadata_files: tuple[Path, ...]  # absolute, sorted
    manifest_sha256: str
    has_pool_json: bool
    info: dict = field(default_factory=dict, compare=False)

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"


def sql_identifier(name: str) -> str:
    """Sanitise a pool name to a lowercase SQL identifier (``[a-z_][a-z0-9_]*``)."""
    ident = re.sub(r"[^0-9a-zA-Z_]+", "_", name.strip()).strip("_").lower()
    if not ident:
        raise ValueError(f"pool name {name!r} has no letters or digits: set a name in pool.json")
    if ident[0].isdigit():
        ident = f"p_{ident}"
    return ident


def is_sidecar(path: Path) -> bool:
    return any(path.name.endswith(f".{kind}.parquet") for kind in SIDECAR_KINDS)


def sidecar_path(metadata_file: Path, kind: str) -> Path:
    """``DIR/metadata/<stem>.parquet`` (or a bare ``DIR/<stem>.parquet``) ->
    ``DIR/sidecars/<stem>.<kind>.parquet``."""
    if kind not in SIDECAR_KINDS:
        raise ValueError(f"unknown sidecar kind {kind!r}")
    parent = metadata_file.parent
    base = parent.parent if parent.name == "metadata" else parent
    return base / "sidecars" / f"{metadata_file.stem}.{kind}.parquet"


def sidecar_metadata(metadata_file: Path) -> dict[bytes, bytes]:
    """Schema metadata a sidecar stores to detect a changed source file."""
    rows = pq.ParquetFile(metadata_file).metadata.num_rows
    return {
        _SOURCE_SIZE_KEY: str(metadata_file.stat().st_size).encode(),
        _SOURCE_ROWS_KEY: str(rows).encode(),
    }


def sidecar_fresh(metadata_file: Path, kind: str) -> bool:
    """True when the sidecar exists and was computed from this exact metadata file."""
    side = sidecar_path(metadata_file, kind)
    if not side.exists():
        return False
    try:
        meta = pq.read_schema(side).metadata or {}
    except (OSError, ValueError):
        return False
    return meta == {**meta, **sidecar_metadata(metadata_file)}


def _metadata_files(root: Path) -> tuple[Path, ...]:
    base = root / "metadata" if (root / "metadata").is_dir() else root
    files = sorted(p for p in base.glob("*.parquet") if p.is_file() and not is_sidecar(p))
    return tuple(p.resolve() for p in files)


def manifest_sha256(root: Path, metadata_files: tuple[Path, ...]) -> str:
    """sha256 of ``pool.json``; without one, of the sorted ``name<TAB>size`` lines."""
    pool_json = root / "pool.json"
    if pool_json.is_file():
        return hashlib.sha256(pool_json.read_bytes()).hexdigest()
    lines = sorted(f"{p.name}\t{p.stat().st_size}\n" for p in metadata_files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def discover_pool(path: str | Path) -> Pool:
    """Describe the pool in folder ``path`` (see the module docstring for the layouts)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"pool folder {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder: give a pool folder (with metadata/*.parquet)")
    root = root.resolve()
    files = _metadata_files(root)
    if not files:
        raise FileNotFoundError(
            f"{root} holds no metadata parquet: expected {root}/metadata/*.parquet "
            f"or {root}/*.parquet (run `datacomp-sci build-pool` or `download-pool` first)"
        )
    info: dict = {}
    pool_json = root / "pool.json"
    if pool_json.is_file():
        try:
            info = json.loads(pool_json.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{pool_json} is not valid JSON ({e}): fix or remove it") from e
        if not isinstance(info, dict):
            raise ValueError(f"{pool_json} must hold a JSON object")
    name = sql_identifier(str(info.get("name") or root.name))
    return Pool(
        name=name,
        root=root,
        metadata_files=files,
        manifest_sha256=manifest_sha256(root, files),
        has_pool_json=pool_json.is_file(),
        info=info,
    )


def discover_pools(paths: list[str | Path] | tuple[str | Path, ...]) -> list[Pool]:
    """Describe several pools; their (sanitised) names must be distinct."""
    if not paths:
        raise ValueError("give at least one pool folder")
    pools = [discover_pool(p) for p in paths]
    seen: dict[str, Path] = {}
    for pool in pools:
        if pool.name in RESERVED_NAMES:
            raise ValueError(
                f"pool {pool.root} is named {pool.name!r}, which is reserved for the union "
                "view: rename the folder or set another name in its pool.json"
            )
        if pool.name in seen:
            raise ValueError(
                f"pools {seen[pool.name]} and {pool.root} are both named {pool.name!r}: "
                "rename one folder or set a distinct name in its pool.json"
            )
        seen[pool.name] = pool.root
    return pools
