"""``build-pool``: paper packages -> a DataComp-compatible pool.

Data flow (see docs/architecture.md)::

    inputs --list_units--> units --(workers) process_unit--> DIR/_work/units/NNNNNN.arrow
           --(main, in unit order) write_shards--> DIR/shards/{N:08d}.{tar,parquet,_stats.json}
                                                  DIR/metadata/{N:08d}.parquet
           --> DIR/pool.json, DIR/build_report.json, DIR/skipped.jsonl

Why two phases: a unit (one archive) is processed independently by any worker and its
result saved atomically; shards are then cut from the results in unit order by one
writer. So the output is byte-identical for any ``--workers``, and a killed run resumes:
finished units are not redone, finished shards (their ``_stats.json`` exists) are not
rewritten, and the result equals an uninterrupted run.

DIR may be a local (or shared) folder or an object-storage prefix (``s3://bucket/pool``,
:mod:`datacomp_sci.core.storage`): workers write their unit results there, whole, and
the driver reads them back from there; the bytes written are the same.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from datacomp_sci import __version__
from datacomp_sci.core import outdir
from datacomp_sci.core.resources import project_file
from datacomp_sci.core.schema import METADATA_SCHEMA, SOURCES, PaperPairs
from datacomp_sci.core.storage import Location, location, output_location
from datacomp_sci.core.uids import pair_uid
from datacomp_sci.core.util import dumps_stable, package_versions, sha256_bytes
from datacomp_sci.engines import Engine, EngineOptions, TaskFailed, engine_session
from datacomp_sci.extract.archives import (
    ArchiveError,
    ArchiveLimits,
    Paper,
    Unit,
    iter_unit_papers,
    list_units,
)
from datacomp_sci.extract.images import ImageLimits, ImageSkipped, prepare_image
from datacomp_sci.pool.shards import ShardSample, sample_key, shard_done, shard_name, write_shard

POOL_FORMAT = "datacomp-sci/pool/1"
UID_RULE = 'first 128 bits of sha256("{source}:{paper_id}:{figure_path}"), 32 hex chars'

# The per-unit result: metadata fields (without shard/key) plus the encoded image.
UNIT_SCHEMA = pa.schema(
    [f for f in METADATA_SCHEMA if f.name not in ("shard", "key")]
    + [pa.field("width", pa.int32()), pa.field("height", pa.int32()), pa.field("jpg", pa.binary())]
)


@dataclass(frozen=True)
class BuildOptions:
    """Everything that decides the bytes of a pool (recorded in pool.json)."""

    source: str
    name: str
    shard_size: int = 10_000
    image_size: int = 512
    keep_multi_panel: bool = False
    ref_token: str = "<ref>"
    cit_token: str = "<cit.>"
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    converter_timeout_s: float = 30.0
    description: str = ""

    def __post_init__(self) -> None:
        # one spelling per value: 3 and 3.0 (YAML, CLI, Python) must record the same pool
        for name, kind in (("shard_size", int), ("image_size", int),
                           ("converter_timeout_s", float), ("keep_multi_panel", bool)):
            object.__setattr__(self, name, kind(getattr(self, name)))

    def image_limits(self) -> ImageLimits:
        return ImageLimits(converter_timeout_s=self.converter_timeout_s)

    def fingerprint(self) -> dict:
        d = asdict(self)
        d.pop("description")
        return d


@dataclass
class BuildResult:
    output: Path | str  # a local folder, or the object-storage URL
    report: dict
    already_complete: bool = False
    elapsed_s: float = 0.0


# --- configuration ----------------------------------------------------------------------

def load_pool_config(name_or_path: str) -> dict:
    """Read ``pools/<name>.yaml`` (or a path): name, source, description, defaults."""
    path = project_file("pools", name_or_path, ".yaml")
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    if cfg.get("source") not in SOURCES:
        raise ValueError(f"{path}: 'source' must be one of {SOURCES}")
    return cfg


def options_from_config(source: str, config: str | None, **overrides) -> BuildOptions:
    """Pool options: the config file's defaults, then the non-None command-line values."""
    cfg = load_pool_config(config or source)
    if cfg["source"] != source:
        raise ValueError(f"config {config!r} is for source {cfg['source']!r}, not {source!r}")
    defaults = dict(cfg.get("defaults") or {})
    limits = ArchiveLimits(**(cfg.get("limits") or {}))
    values = {
        "source": source,
        "name": cfg.get("name", source),
        "description": (cfg.get("description") or "").strip(),
        "archive_limits": limits,
        **{k: v for k, v in defaults.items() if k in BuildOptions.__dataclass_fields__},
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    opts = BuildOptions(**values)
    if opts.shard_size < 1 or opts.image_size < 16:
        raise ValueError("--shard-size must be >= 1 and --image-size >= 16")
    return opts


# --- one unit -----------------------------------------------------------------------------

def _extract(paper: Paper, opts: BuildOptions) -> PaperPairs:
    if opts.source == "arxiv":
        from datacomp_sci.extract.latex import LatexOptions, extract_latex

        lopts = LatexOptions(keep_multi_panel=opts.keep_multi_panel, ref_token=opts.ref_token,
                             cit_token=opts.cit_token)
        return extract_latex(paper.files, paper.paper_id, lopts)
    from datacomp_sci.extract.jats import extract_jats

    return extract_jats(paper.files, paper.paper_id)


def _figure_url(opts: BuildOptions, paper_id: str, pair) -> str:
    if opts.source == "arxiv":  # one '#' only: a page suffix's own is escaped
        return f"https://arxiv.org/e-print/{paper_id}#{pair.figure_path.replace('#', '%23')}"
    from datacomp_sci.extract.jats import pmc_figure_url

    return pmc_figure_url(paper_id, pair.anchor)


class _UnitRun:
    """Counters and skipped items of one unit."""

    def __init__(self, unit: Unit):
        self.unit = unit
        self.counts: Counter = Counter()
        self.skips: Counter = Counter()
        self.items: list[dict] = []

    def skip(self, stage: str, reason: str, paper_id: str | None, item: str | None,
             detail: str | None, n: int = 1) -> None:
        self.skips[f"{stage}/{reason}"] += n
        self.items.append({"unit": self.unit.url, "paper_id": _clean(paper_id), "stage": stage,
                           "reason": reason, "item": _clean(item), "detail": _clean(detail)})


def _clean(text: str | None) -> str | None:
    """Text that any JSON/parquet writer accepts (hostile names may hold lone surrogates)."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# a paper skipped for one of these was damaged, not merely without pairs
DAMAGE_REASONS = frozenset({"archive_damage", "corrupt_gzip", "corrupt_tar",
                            "truncated_archive", "unreadable_input"})


def _paper_rows(paper: Paper, opts: BuildOptions, run: _UnitRun) -> list[dict]:
    run.counts["papers_seen"] += 1
    for item in paper.member_skip_items:
        run.skip("archive", item["reason"], paper.paper_id, item["item"], item["detail"])
    if paper.skip_reason in DAMAGE_REASONS:
        run.counts["papers_lost_to_damage"] += 1
    else:
        run.counts["papers_read"] += 1
    if paper.skip_reason:
        run.skip("paper", paper.skip_reason, paper.paper_id, None, paper.detail)
        return []
    try:
        found = _extract(paper, opts)
    except Exception as e:  # an extractor bug must not end the run: count it, keep going
        run.skip("paper", "extractor_error", paper.paper_id, None,
                 f"{type(e).__name__}: {e} | {traceback.format_exc(limit=-2)}")
        return []
    paper_id = found.paper_id or paper.paper_id
    if opts.source == "arxiv" and not found.skipped.get("no_main_tex"):
        run.counts["papers_with_latex"] += 1
    if opts.source == "pmc" and not (found.skipped.get("no_nxml") or found.skipped.get("xml_error")):
        run.counts["papers_with_nxml"] += 1
    run.counts["figures_found"] += found.figures_found
    run.counts["pairs_extracted"] += len(found.pairs)
    for item in found.skipped_items:
        run.skip("extract", item["reason"], paper_id, item.get("item"), item.get("detail"))
    limits = opts.image_limits()
    rows = []
    for pair in found.pairs:
        data = paper.files.get(pair.file_path)
        if data is None:
            run.skip("image", "graphic_not_in_package", paper_id, pair.figure_path, None)
            continue
        try:
            img = prepare_image(data, pair.file_path, opts.image_size, limits, page=pair.page,
                                clip=pair.clip)
        except ImageSkipped as e:
            run.skip("image", e.reason, paper_id, pair.figure_path, e.detail)
            continue
        except Exception as e:  # a codec bug must not end the run either
            run.skip("image", "image_error", paper_id, pair.figure_path, f"{type(e).__name__}: {e}")
            continue
        rows.append({
            "uid": pair_uid(opts.source, paper_id, pair.figure_path),
            "url": _figure_url(opts, paper_id, pair),
            "text": pair.caption,
            "original_width": img.original_width,
            "original_height": img.original_height,
            "clip_b32_similarity_score": None,
            "clip_l14_similarity_score": None,
            "face_bboxes": [],
            "sha256": sha256_bytes(data),
            "source": opts.source,
            "paper_id": paper_id,
            "figure_path": pair.figure_path,
            "label": pair.label,
            "parent_caption": pair.parent_caption,
            "mentions": list(pair.mentions),
            "license": found.license,
            "caption_length": len(pair.caption),
            "image_format": img.image_format,
            "width": img.width,
            "height": img.height,
            "jpg": img.jpeg,
        })
    return rows


def unit_result_names(index: int) -> tuple[str, str]:
    """The unit's table and its summary (written last: it marks the unit as done)."""
    return f"{index:06d}.arrow", f"{index:06d}.json"


def _write_unit_table(work: Location, name: str, table: pa.Table) -> None:
    """Unit results as uncompressed Arrow IPC: the JPEG bytes are copied, not re-encoded,
    and the writer memory-maps them back (parquet cost a third of the bookkeeping)."""
    with work.writer(name, fsync=False) as f, pa.ipc.new_file(f, UNIT_SCHEMA) as w:
        w.write_table(table)


def read_unit_table(work: Location, name: str) -> pa.Table:
    if work.local:
        with pa.memory_map(work.join(name)) as source:
            return pa.ipc.open_file(source).read_all()
    return pa.ipc.open_file(pa.py_buffer(work.read_bytes(name))).read_all()


def _read_summary(work: Location, name: str) -> dict | None:
    if work.local:
        path = Path(work.join(name))
        return json.loads(path.read_text()) if path.exists() else None
    try:
        return json.loads(work.read_bytes(name))
    except FileNotFoundError:
        return None


def process_unit(unit: Unit, opts: BuildOptions, work: Location | Path) -> dict:
    """Extract every pair of one unit into ``work/NNNNNN.arrow`` (+ ``.json`` summary),
    a local folder or an object-storage location, each file written whole.

    Idempotent: a unit whose summary exists is not redone.
    """
    work = location(work)
    data_name, summary_name = unit_result_names(unit.index)
    if (done := _read_summary(work, summary_name)) is not None:
        return done
    run = _UnitRun(unit)
    tables: list[pa.Table] = []
    try:
        for paper in iter_unit_papers(unit, opts.archive_limits):
            try:  # one paper's unexpected failure costs that paper, not the unit
                rows = _paper_rows(paper, opts, run)
                tables.append(pa.Table.from_pylist(rows, schema=UNIT_SCHEMA))
            except Exception as e:
                run.skip("paper", "paper_error", paper.paper_id, None,
                         f"{type(e).__name__}: {e}")
    except ArchiveError as e:
        run.skip("unit", e.reason, None, unit.url, e.detail)
    except Exception as e:  # hostile bytes can make any reader raise: count it, go on
        run.skip("unit", "corrupt_tar", None, unit.url, f"{type(e).__name__}: {e}")
    table = pa.concat_tables(tables) if tables else UNIT_SCHEMA.empty_table()
    _write_unit_table(work, data_name, table)
    summary = {"unit": unit.url, "index": unit.index, "rows": table.num_rows,
               "counts": dict(run.counts), "skips": dict(run.skips), "skipped_items": run.items}
    work.write_text(summary_name, dumps_stable(summary), fsync=False)
    return summary


# --- writing shards -----------------------------------------------------------------------

class ShardCutter:
    """Cuts unit results, in unit order, into shards of ``shard_size`` samples."""

    def __init__(self, out: Location, opts: BuildOptions):
        self.out, self.opts = out, opts
        self.shards_dir, self.meta_dir = out.child("shards"), out.child("metadata")
        self.shards_dir.makedirs()
        self.meta_dir.makedirs()
        self.pending: list[dict] = []
        self.seen_uids: set[str] = set()
        self.next_shard = 0
        self.written = 0
        self.resumed_shards = 0
        self.duplicates: list[dict] = []

    def add_unit(self, table: pa.Table) -> None:
        for row in table.to_pylist():
            if row["uid"] in self.seen_uids:
                self.duplicates.append({"paper_id": row["paper_id"], "item": row["figure_path"],
                                        "uid": row["uid"]})
                continue
            self.seen_uids.add(row["uid"])
            self.pending.append(row)
            if len(self.pending) >= self.opts.shard_size:
                self._flush(self.pending[: self.opts.shard_size])
                self.pending = self.pending[self.opts.shard_size :]

    def finish(self) -> None:
        if self.pending:
            self._flush(self.pending)
            self.pending = []

    def _flush(self, rows: list[dict]) -> None:
        sid = self.next_shard
        self.next_shard += 1
        self.written += len(rows)
        if shard_done(self.shards_dir, sid) and self.meta_dir.exists(f"{shard_name(sid)}.parquet"):
            self.resumed_shards += 1
            return
        samples, meta_rows = [], []
        for i, row in enumerate(rows):
            key = sample_key(sid, i, self.opts.shard_size)
            meta_rows.append({**{k: row[k] for k in METADATA_SCHEMA.names if k in row},
                              "shard": sid, "key": key})
            samples.append(ShardSample(row["jpg"], {
                "uid": row["uid"], "caption": row["text"], "url": row["url"], "key": key,
                "status": "success", "error_message": None, "width": row["width"],
                "height": row["height"], "original_width": row["original_width"],
                "original_height": row["original_height"], "exif": None, "sha256": row["sha256"],
                "source": row["source"], "paper_id": row["paper_id"],
                "figure_path": row["figure_path"], "label": row["label"],
                "parent_caption": row["parent_caption"], "mentions": row["mentions"],
                "license": row["license"], "image_format": row["image_format"],
            }))
        table = pa.Table.from_pylist(meta_rows, schema=METADATA_SCHEMA)
        with self.meta_dir.writer(f"{shard_name(sid)}.parquet") as f:
            pq.write_table(table, f)
        write_shard(self.shards_dir, sid, samples)  # its _stats.json is written last


# --- the whole build ----------------------------------------------------------------------

def _converter_versions() -> dict:
    out = {}
    try:
        r = subprocess.run(["gs", "--version"], capture_output=True, text=True, timeout=10)
        out["ghostscript"] = r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        out["ghostscript"] = None
    return out


def tool_versions() -> dict:
    v = {"datacomp-sci": __version__}
    v.update(package_versions(("pillow", "pypdfium2", "pylatexenc", "lxml", "webdataset",
                               "pyarrow", "numpy")))
    v.update(_converter_versions())
    return v


def _state(units: list[Unit], opts: BuildOptions) -> dict:
    return {"format": POOL_FORMAT, "options": opts.fingerprint(),
            "inputs": [{"url": u.url, "kind": u.kind, "size": u.size} for u in units]}


def _prepare_output(out: Location, state: dict, overwrite: bool) -> bool:
    """Check an existing output folder (:mod:`datacomp_sci.core.outdir`). Returns True
    when the same build is complete; else the folder is claimed for this build."""
    if overwrite:
        out.rmtree()
    if outdir.finished(out, "pool.json", "state", state, "a pool built",
                       state="_work/state.json") is not None:
        return True
    outdir.claim(out, state, "datacomp-sci build", state_file="_work/state.json")
    return False


def _failed_unit(unit: Unit, failed: TaskFailed) -> dict:
    """The summary of a unit whose task failed on every attempt: skipped and counted, like
    an unreadable archive; nothing is saved for it, so a resumed run tries it again."""
    item = {"unit": unit.url, "paper_id": None, "stage": "unit", "reason": "task_failed",
            "item": unit.url, "detail": f"{failed.error} (after {failed.attempts} attempts)"}
    return {"unit": unit.url, "index": unit.index, "rows": 0, "counts": {},
            "skips": {"unit/task_failed": 1}, "skipped_items": [item], "failed": True}


def _run_units(units: list[Unit], opts: BuildOptions, work: Location,
               engine: Engine) -> Iterator[dict]:
    """Process units on the engine (in parallel, retried), yielding summaries in unit order."""
    task = functools.partial(process_unit, opts=opts, work=work)
    for pos, outcome in engine.map(task, units, ordered=True, name="build-pool unit"):
        if isinstance(outcome, TaskFailed) and isinstance(outcome.exception, PermissionError):
            raise outcome.exception  # the output is not writable: no unit can succeed
        yield _failed_unit(units[pos], outcome) if isinstance(outcome, TaskFailed) else outcome


def build_pool(inputs: list[str], output: str | os.PathLike, opts: BuildOptions,
               workers: int | None = None, overwrite: bool = False, keep_work: bool = False,
               progress: Callable[[int, dict], None] | None = None,
               on_units: Callable[[list[Unit]], None] | None = None,
               engine: EngineOptions | None = None,
               on_resume: Callable[[int, int], None] | None = None,
               storage_options: dict | None = None) -> BuildResult:
    """Build a pool from paper packages. See the module docstring for the data flow.

    ``progress(n_units_done, totals)`` is called after each unit; ``on_units(units)`` once
    the inputs are listed (the CLI uses both for its progress bar); ``on_resume(done,
    total)`` when an interrupted build resumes with ``done`` of ``total`` units finished.
    ``engine`` says where units run (default: this machine's processes, ``workers`` of
    them); the pool is the same bytes on any engine. ``output`` is a folder or an
    object-storage URL (``storage_options``: its file system's options, over fsspec's
    configuration).
    """
    t0 = time.time()
    out = output_location(output, storage_options)
    units, problems = list_units(list(inputs), opts.source)
    if not units:
        why = "; ".join(f"{p['input']}: {p['detail']}" for p in problems)
        raise ValueError(f"no input packages found ({why or 'no archives or package folders'}): "
                         "give arXiv/PMC archives, folders of them, or URLs")
    state = _state(units, opts)
    shown = out.path if out.local else out.url
    if _prepare_output(out, state, overwrite):
        report = json.loads(out.read_bytes("build_report.json"))
        return BuildResult(shown, report, already_complete=True, elapsed_s=time.time() - t0)
    work = out.child("_work", "units")
    work.makedirs()
    if on_resume:
        present = set(work.listdir())
        if done := sum(unit_result_names(u.index)[1] in present for u in units):
            on_resume(done, len(units))
    if on_units:
        on_units(units)
    cutter = ShardCutter(out, opts)
    counts: Counter = Counter()
    skips: Counter = Counter()
    items: list[dict] = [{"unit": p["input"], "paper_id": None, "stage": "input",
                          "reason": p["reason"], "item": p["input"], "detail": p["detail"]}
                         for p in problems]
    for p in problems:
        skips[f"input/{p['reason']}"] += 1
    engine = engine or EngineOptions(workers=workers)
    with engine_session(engine) as running:
        for done, summary in enumerate(_run_units(units, opts, work, running), start=1):
            _add_summary(summary, work, cutter, counts, skips, items)
            if progress:
                progress(done, {"papers": counts["papers_seen"],
                                "pairs": cutter.written + len(cutter.pending)})
    cutter.finish()
    for d in cutter.duplicates:
        skips["write/duplicate_uid"] += 1
        items.append({"unit": None, "paper_id": d["paper_id"], "stage": "write",
                      "reason": "duplicate_uid", "item": d["item"], "detail": d["uid"]})
    report = _report(units, counts, skips, cutter)
    _write_skipped(out, items)
    out.write_json("build_report.json", report)
    pool = {
        "format": POOL_FORMAT, "name": opts.name, "source": opts.source,
        "description": opts.description, "uid_rule": UID_RULE,
        "counts": {"shards": cutter.next_shard, "samples": cutter.written,
                   "papers_seen": counts["papers_seen"]},
        "options": opts.fingerprint(), "versions": tool_versions(),
        "inputs": state["inputs"], "state": state,
    }
    out.write_json("pool.json", pool)
    if not keep_work:
        out.rmtree("_work")
    return BuildResult(shown, report, elapsed_s=time.time() - t0)


def build_outcome(report: dict) -> str:
    """``pairs`` (the pool holds samples), ``empty`` (papers were read, none gave a pair: a
    valid, empty pool, e.g. PDF-only papers) or ``unreadable`` (inputs were given but not
    one paper in them could be read: every archive damaged, truncated or not an archive).
    The command line exits 0, 0 with a note, and 1 respectively."""
    if report.get("pairs_written", 0) > 0:
        return "pairs"
    read = report.get("papers_read")
    if read is None:  # a report written before papers_read was counted
        read = report.get("papers_seen", 0) - report.get("papers_lost_to_damage", 0)
    return "empty" if read > 0 else "unreadable"


def _add_summary(summary: dict, work: Location, cutter: ShardCutter, counts: Counter,
                 skips: Counter, items: list[dict]) -> None:
    if not summary.get("failed"):
        cutter.add_unit(read_unit_table(work, unit_result_names(summary["index"])[0]))
    counts.update(summary["counts"])
    skips.update(summary["skips"])
    items.extend(summary["skipped_items"])


def _report(units: list[Unit], counts: Counter, skips: Counter, cutter: ShardCutter) -> dict:
    by_stage: dict[str, dict[str, int]] = {}
    for key, n in sorted(skips.items()):
        stage, reason = key.split("/", 1)
        by_stage.setdefault(stage, {})[reason] = n
    return {
        "units": len(units),
        "papers_seen": counts["papers_seen"],
        "papers_read": counts["papers_read"],
        "papers_lost_to_damage": counts["papers_lost_to_damage"],
        "papers_with_latex": counts["papers_with_latex"],
        "papers_with_nxml": counts["papers_with_nxml"],
        "figures_found": counts["figures_found"],
        "pairs_extracted": counts["pairs_extracted"],
        "pairs_written": cutter.written,
        "shards": cutter.next_shard,
        "skipped": by_stage,
        "skipped_total": sum(skips.values()),
    }


def _write_skipped(out: Location, items: list[dict]) -> None:
    with out.writer("skipped.jsonl", "w") as f:
        for it in items:
            f.write(json.dumps(it, sort_keys=True, ensure_ascii=False) + "\n")

