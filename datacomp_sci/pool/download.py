"""Download a URL-based pool (CommonPool metadata, or any parquet with ``url`` and ``text``)
into webdataset shards with img2dataset, using DataComp's exact parameters (docs/formats.md, "CommonPool metadata", DataComp's ``download_upstream.py``), then report coverage.

Layout, as DataComp's: ``OUT/metadata/*.parquet`` (linked or copied from the input, with
sibling ``.npz``), ``OUT/shards/{N:08d}.tar|.parquet|_stats.json``, plus ours:
``OUT/coverage.json`` (rows, downloaded, failed by status and by error message) and
``OUT/failed_uids.npy`` (a subset file of every uid without a downloaded image, including
rows of shards not finished yet). Rerunning resumes: img2dataset's incremental mode skips
every shard that has its ``_stats.json``.

``OUT`` may be an object-storage URL (``s3://bucket/pool``): the metadata files are
uploaded to ``OUT/metadata/``, img2dataset reads them from there and writes its shards
through fsspec itself (its own writers; on ``--engine ray`` its workers read and write
object storage, never this machine's disk), and the coverage is measured from there.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datacomp_sci.core.storage import Location, location, output_location
from datacomp_sci.core.uids import SUBSET_DTYPE, sort_subset, uids_to_u8u8
from datacomp_sci.core.util import link_or_copy, user_cache_dir
from datacomp_sci.engines import EngineOptions, engine_session

# Where DataComp's metadata lives: CommonPool's scales in one dataset repository (as
# DataComp's download_upstream.py fetches them: pattern {scale}/*.parquet, xlarge one
# level deeper); DataComp-1B, the best filtered subset of xlarge, in its own repository
# with the parquets at its root.
POOLS_REPO = "mlfoundations/datacomp_pools"
SCALE_SOURCES = {
    "small": (POOLS_REPO, "small/*.parquet"),
    "medium": (POOLS_REPO, "medium/*.parquet"),
    "large": (POOLS_REPO, "large/*.parquet"),
    "xlarge": (POOLS_REPO, "xlarge/*/*.parquet"),
    "datacomp_1b": ("mlfoundations/datacomp_1b", "*.parquet"),
}
BBOX_COL = "face_bboxes"
TOP_ERRORS = 50


@dataclass(frozen=True)
class DownloadOptions:
    """img2dataset parameters; the defaults are DataComp's."""

    processes: int = 16
    threads: int = 128
    shard_size: int = 10000  # number_sample_per_shard
    image_size: int = 512
    resize_mode: str = "keep_ratio_largest"
    resize_only_if_bigger: bool = True
    encode_format: str = "jpg"
    retries: int = 2
    timeout: int = 10
    blur_faces: bool = True  # bbox_col="face_bboxes" when the metadata has it


@dataclass
class Coverage:
    rows: int = 0
    attempted: int = 0  # rows of finished shards
    downloaded: int = 0
    failed_to_download: int = 0
    failed_to_resize: int = 0
    not_attempted: int = 0  # rows of shards not finished (rerun to resume)
    finished_shards: int = 0
    failed_uids: int | None = None  # None: the metadata has no uid column
    errors: dict[str, int] = field(default_factory=dict)  # error message -> count (top 50)

    @property
    def fraction(self) -> float:
        return self.downloaded / self.rows if self.rows else 0.0


@dataclass
class DownloadResult:
    output: str
    coverage: Coverage
    img2dataset_kwargs: dict


# ------------------------------------------------------------------------ metadata
def fetch_scale_metadata(scale: str, metadata_dir: Path) -> Path:
    """DataComp's metadata for a scale from its public dataset repository (network; the
    Hub's cache under ``OUT/hf`` makes a rerun fetch only what is missing). Returns the
    folder holding the parquets."""
    if scale not in SCALE_SOURCES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALE_SOURCES)}")
    from huggingface_hub import snapshot_download

    repo, pattern = SCALE_SOURCES[scale]
    local = Path(snapshot_download(repo_id=repo, repo_type="dataset", allow_patterns=pattern,
                                   cache_dir=str(metadata_dir.parent / "hf")))
    return local / pattern.split("*", 1)[0]


def upload_metadata(source: Path, metadata: Location) -> list[Path]:
    """Upload ``*.parquet`` and sibling ``*.npz`` to ``OUT/metadata`` on object storage
    (each whole; those already there are kept). Returns the local parquets."""
    files = sorted(source.rglob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{source}: no .parquet metadata files")
    present = set(metadata.listdir())
    for f in files:
        for src in (f, f.with_suffix(".npz")):
            if src.exists() and src.name not in present:
                metadata.put_file(src, src.name)
    return files


def link_metadata(source: Path, metadata_dir: Path) -> list[Path]:
    """Hard-link (or copy) ``*.parquet`` and sibling ``*.npz`` into ``OUT/metadata``."""
    files = sorted(source.rglob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{source}: no .parquet metadata files")
    if source.resolve() == metadata_dir.resolve():
        return files
    metadata_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        for src in (f, f.with_suffix(".npz")):
            dst = metadata_dir / src.name
            if src.exists() and not dst.exists():
                link_or_copy(src.resolve(), dst)
        out.append(metadata_dir / f.name)
    return out


def check_columns(files: list[Path]) -> set[str]:
    """Columns every metadata file has; ``url`` and ``text`` are required."""
    common: set[str] | None = None
    for f in files:
        try:
            names = set(pq.read_schema(f).names)
        except (OSError, pa.ArrowInvalid) as e:
            raise ValueError(f"{f}: not a readable parquet file ({e})") from e
        missing = {"url", "text"} - names
        if missing:
            raise ValueError(f"{f}: no column {', '.join(sorted(missing))}; the metadata needs "
                             "`url` and `text` (and `uid` to reshard later)")
        common = names if common is None else common & names
    return common or set()


# ------------------------------------------------------------------------ img2dataset
def img2dataset_kwargs(metadata_dir: Path | str, shard_dir: Path | str, columns: set[str],
                       opts: DownloadOptions) -> dict:
    """The exact ``img2dataset.download`` call DataComp makes (plus retries/incremental)."""
    return dict(
        url_list=str(metadata_dir), input_format="parquet", output_folder=str(shard_dir),
        output_format="webdataset", url_col="url", caption_col="text",
        save_additional_columns=["uid"] if "uid" in columns else None,
        bbox_col=BBOX_COL if opts.blur_faces and BBOX_COL in columns else None,
        number_sample_per_shard=opts.shard_size, oom_shard_count=8,
        image_size=opts.image_size, resize_mode=opts.resize_mode,
        resize_only_if_bigger=opts.resize_only_if_bigger, encode_format=opts.encode_format,
        processes_count=opts.processes, thread_count=opts.threads, retries=opts.retries,
        timeout=opts.timeout, incremental_mode="incremental",
    )


def _run_img2dataset(kwargs: dict, engine: EngineOptions | None = None) -> None:
    """img2dataset's own distributors: ``multiprocessing`` on this machine, ``ray`` (each
    img2dataset shard a Ray task) with ``--engine ray``. The distributor is not part of
    the recorded call: the shards do not depend on it."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no update check over the network
    import img2dataset

    engine = engine or EngineOptions()
    extra = kwargs["save_additional_columns"]  # img2dataset appends bbox_col to this list
    call = {**kwargs, "save_additional_columns": list(extra) if extra else None}
    if engine.name == "ray":
        call["distributor"] = "ray"
    with engine_session(engine):  # joins (or starts) the Ray cluster img2dataset's tasks use
        img2dataset.download(**call)
    location(kwargs["output_folder"]).rmtree("_tmp")


# ------------------------------------------------------------------------ coverage
def _parquet(folder: Location, name: str) -> pq.ParquetFile:
    """A parquet file of a local folder or of object storage (read by ranges)."""
    if folder.local:
        return pq.ParquetFile(folder.join(name))
    return pq.ParquetFile(folder.open(name))


def _finished_shard_tables(shard_dir: Location) -> list[pa.Table]:
    tables = []
    names = set(shard_dir.listdir())
    for stats in sorted(n for n in names if n.endswith("_stats.json")):
        pq_name = stats.replace("_stats.json", ".parquet")
        if pq_name in names:
            f = _parquet(shard_dir, pq_name)
            cols = [c for c in ("uid", "status", "error_message") if c in f.schema_arrow.names]
            tables.append(f.read(columns=cols))
    return tables


def measure_coverage(out: Path | Location) -> tuple[Coverage, np.ndarray | None]:
    """Coverage counts from the shards' parquet files, and the failed uids (u8,u8)."""
    out = location(out)
    metadata = out.child("metadata")
    meta_files = [_parquet(metadata, n) for n in metadata.listdir() if n.endswith(".parquet")]
    cov = Coverage(rows=sum(f.metadata.num_rows for f in meta_files))
    tables = _finished_shard_tables(out.child("shards"))
    cov.finished_shards = len(tables)
    status: Counter = Counter()
    errors: Counter = Counter()
    ok_uids = []
    for t in tables:
        status.update(t["status"].to_pylist())
        if "error_message" in t.column_names:
            errors.update(e for e in t["error_message"].to_pylist() if e)
        if "uid" in t.column_names:
            ok_uids.append(t.filter(pc.equal(t["status"], "success"))["uid"])
    cov.attempted = sum(status.values())
    cov.downloaded = status.get("success", 0)
    cov.failed_to_download = status.get("failed_to_download", 0)
    cov.failed_to_resize = status.get("failed_to_resize", 0)
    cov.not_attempted = cov.rows - cov.attempted
    cov.errors = dict(sorted(errors.most_common(TOP_ERRORS), key=lambda kv: (-kv[1], kv[0])))
    failed = _failed_uids(meta_files, ok_uids)
    cov.failed_uids = None if failed is None else len(failed)
    return cov, failed


def _failed_uids(meta_files: list[pq.ParquetFile],
                 ok_uids: list[pa.ChunkedArray]) -> np.ndarray | None:
    if not meta_files or any("uid" not in f.schema_arrow.names for f in meta_files):
        return None
    every = pa.chunked_array([f.read(columns=["uid"])["uid"] for f in meta_files])
    ok = pa.chunked_array(ok_uids, type=pa.string()) if ok_uids else pa.chunked_array([], pa.string())
    missing = every.filter(pc.invert(pc.is_in(every, value_set=ok.combine_chunks())))
    return uids_to_u8u8(missing)


# ------------------------------------------------------------------------ the command
def download_pool(output: str | os.PathLike, *, metadata_dir: str | os.PathLike | None = None,
                  scale: str | None = None, opts: DownloadOptions = DownloadOptions(),
                  skip_shards: bool = False, engine: EngineOptions | None = None,
                  storage_options: dict | None = None) -> DownloadResult:
    """Fetch/link metadata, run img2dataset (resumable), write coverage.json + failed_uids.npy.
    ``engine``: local (img2dataset's multiprocessing) or ray (its ray distributor).
    ``output``: a folder or an object-storage URL (``storage_options``: its file system's
    options; img2dataset's own reads and writes use fsspec's configuration)."""
    if (metadata_dir is None) == (scale is None):
        raise ValueError("give exactly one of --metadata-dir (local parquets) or --scale")
    out = output_location(output, storage_options, resolve=True)
    source = Path(metadata_dir).expanduser() if metadata_dir else None
    if source is not None and not source.is_dir():
        raise FileNotFoundError(f"{source}: no such metadata folder")
    if out.local:
        meta_out = out.path / "metadata"
        if source is None:
            source = meta_out if any(meta_out.glob("*.parquet")) else \
                fetch_scale_metadata(scale, meta_out)
        files = link_metadata(source, meta_out)
    else:
        if source is None:  # the Hub's cache on this machine
            source = fetch_scale_metadata(scale, user_cache_dir() / "commonpool" / "metadata")
        files = upload_metadata(source, out.child("metadata"))
    kwargs = img2dataset_kwargs(out.join("metadata"), out.join("shards"), check_columns(files),
                                opts)
    if not skip_shards:
        out.makedirs("shards")
        _run_img2dataset(kwargs, engine)
    cov, failed = measure_coverage(out)
    if failed is not None:
        with out.writer("failed_uids.npy") as f:  # a subset file, as save_subset writes it
            np.save(f, sort_subset(np.asarray(failed, dtype=SUBSET_DTYPE)))
    out.write_json("coverage.json", {**asdict(cov), "fraction": round(cov.fraction, 6),
                                     "img2dataset": kwargs})
    return DownloadResult(out.url, cov, kwargs)
