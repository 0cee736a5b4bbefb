"""Reshard pools by a subset file, with DataComp's resharder semantics (docs/formats.md, "Resharding").

For every input sample, the uid in its ``.json`` is looked up in the sorted subset
(binary search over 16-byte big-endian keys); a uid listed k times is written k times
with keys ``{uid}-{j}``, j = 0..k-1. Members are copied byte for byte under the new key;
their order inside a sample, and the order of samples, is the input's. Outputs:
``{N:08d}.tar`` of at most ``shard_size`` samples, ``{N:08d}_stats.json``,
``sample_ids.npy`` (the subset), ``missing_uids.npy`` (subset uids not found in the
input), ``meta.json`` (what DataComp's and our ``train`` read) and ``reshard_report.json``.

Beyond upstream:

* Deterministic for any number of workers. Phase 1 indexes every input shard in
  parallel: its members are listed (by libarchive where :mod:`.tarscan` vouches that it
  reads the tar as tarfile does, else by tarfile's own reader; seeking over the data),
  grouped into samples by webdataset's own ``group_by_keys``, each sample's ``.json`` is
  read for its uid, and for the kept samples the new tar headers (``in_{i}.hdr``) and
  the byte ranges of their data in the input (``in_{i}.npz``) are written under
  ``OUTPUT/_work`` (remote inputs are streamed once and their kept data stored in
  ``in_{i}.data``). Phase 2 numbers output samples in (input shard order,
  member order), cuts shards by count, and writes each output shard (in parallel) from
  the headers and kernel-side copies (``copy_file_range``) of the input data. Tar headers
  carry fixed mtime/uid/gid/names/mode (as webdataset's ``TarWriter`` with ``mtime``
  set), so the same inputs give the same bytes.
* Header index cache (local inputs): what phase 1 learns from a tar that does not depend
  on the subset (per sample: uid or why it has none, member suffixes, data offsets and
  sizes) is saved once per input tar under ``--index-cache`` (default
  ``$XDG_CACHE_HOME/datacomp-sci/tar-index``), named by a hash of (absolute path, size,
  mtime_ns, index format); a later reshard of the same pool with any subset reads it
  instead of walking the tar. An index whose header, size, mtime or checksum does not
  match is ignored and rebuilt. Outputs are the same bytes with or without it.
* Resumable: each phase-1 result and each output shard is written atomically and skipped
  when present; ``meta.json`` is written last and ``_work`` removed after it. An input
  tar whose size or mtime changed since it was indexed is refused on resume.
* Inputs: pool folders, shard folders, reshard outputs, single tars, globs, brace
  patterns and fsspec URLs (read as streams), several at once.
* Outputs on object storage (``-o s3://bucket/subset``): the phase-1 files are written by
  the tasks to ``OUTPUT/_work/`` there (each whole, ``in_{i}.json`` last); a phase-2 task
  fetches the ones its output shard needs into its own temp folder, writes the shard
  there and uploads it whole (``_stats.json`` after it). Same bytes as a local output.
* ``--text-from kg_captions``: the ``.txt`` of a kept sample may be replaced by a
  KG-derived text (:mod:`.textmix`), deterministically per uid; the replaced texts are
  written to ``_work/in_{i}.alt`` and copied from there, everything else is copied
  unchanged. ``meta.json`` then records ``captions_changed`` (``submit --track
  filtering`` refuses such shards: rewriting captions is bring-your-own-data).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from datacomp_sci import __version__
from datacomp_sci.core import outdir, tarscan
from datacomp_sci.core.storage import Location, location, output_location
from datacomp_sci.core.tars import (
    BLOCK,
    UID_KEY,
    UID_OK,
    UID_STATUS_COUNTER,
    Member,
    iter_tar_samples,
    tar_end,
    tar_header,
    uid_status,
)
from datacomp_sci.core.uids import SUBSET_DTYPE, load_subset, u8u8_to_uids
from datacomp_sci.core.util import atomic_open, dumps_stable, sha256_file
from datacomp_sci.engines import Engine, EngineOptions, TaskFailed, engine_session
from datacomp_sci.resharding.index import default_index_cache, tar_index_cached
from datacomp_sci.resharding.inputs import (
    OUTPUT_SHARD_FORMAT,
    InputShard,
    is_local,
    resolve_inputs,
)

FORMAT = "datacomp-sci/reshard/1"


@dataclass(frozen=True)
class ReshardOptions:
    shard_size: int = 10000
    workers: int = 1
    overwrite: bool = False
    keep_work: bool = False
    index_cache: str | os.PathLike | None = None  # None: default_index_cache()
    use_index_cache: bool = True  # False: neither read nor write header indexes
    tar_reader: str | None = None  # auto|libarchive|tarfile; None: $DATACOMP_SCI_TAR_READER or auto
    text_from: str | None = None  # "kg_captions" (beside the subset) or a sidecar path
    text_mix: float = 0.5  # share of the uids with KG texts whose caption is replaced
    seed: int = 0  # seed of the per-uid text draws
    engine: EngineOptions | None = None  # None: this machine's processes, ``workers`` of them
    storage_options: dict | None = None  # an object-storage output's file-system options

    def engine_options(self) -> EngineOptions:
        return self.engine or EngineOptions(workers=self.workers)


@dataclass
class ShardResult:
    """Phase-1 result for one input shard (``_work/in_{i:08d}.json``)."""

    index: int
    url: str
    processed: int = 0  # samples read
    kept: int = 0  # input samples whose uid is in the subset
    written: int = 0  # output samples (kept samples times their multiplicity)
    no_uid: int = 0  # no .json, or a .json without a uid
    bad_json: int = 0  # .json that does not parse
    bad_uid: int = 0  # uid that is not 32 hex characters
    skipped_members: int = 0  # non-file members or names without an extension
    texts_replaced: int = 0  # output samples whose .txt is a KG text (--text-from)
    error: str | None = None  # the shard could not be read to the end (samples before kept)
    # header index: "reused", "built", "not saved", "off", None (remote); not in the report,
    # which must not depend on the cache
    index_cache: str | None = None
    # who listed the members of a local tar: "libarchive", "tarfile", None (index reused,
    # or remote: tarfile's stream reader); not in the report either
    tar_reader: str | None = None


@dataclass
class ReshardResult:
    output: str
    meta: dict
    report: dict
    already_complete: bool = False
    warnings: list[str] = field(default_factory=list)
    index_cache: dict = field(default_factory=dict)  # {"dir", "reused", "built", "not saved"}
    tar_reader: dict = field(default_factory=dict)  # {"reader": line, "libarchive": n, "tarfile": n}


def _work_file(path: str | os.PathLike):
    """Temp-then-rename without fsync: ``_work`` files only need to survive a killed
    process (the page cache keeps them), not a power cut; final outputs are fsynced."""
    return atomic_open(path, "wb", fsync=False, buffering=1 << 20)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A temp folder on the machine running the task (object-storage outputs)."""
    folder = tempfile.mkdtemp(prefix="datacomp-sci-reshard-")
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fetch(work: Location, name: str, dest: Path) -> Path:
    """``work/name`` as a file in ``dest`` (downloaded once per task)."""
    path = dest / name
    if not path.exists():
        with _work_file(path) as f:
            f.write(work.read_bytes(name))
    return path


def _uid_key(raw: bytes | None, counts: ShardResult) -> bytes | None:
    """The uid in a sample's ``.json`` as 16 big-endian bytes, or None (counted)."""
    key, status = uid_status(raw)
    if status != UID_OK:
        setattr(counts, UID_STATUS_COUNTER[status], getattr(counts, UID_STATUS_COUNTER[status]) + 1)
    return key


def _multiplicity(keys: np.ndarray, key: bytes) -> int:
    k = np.frombuffer(key, dtype=UID_KEY)
    lo = np.searchsorted(keys, k, "left")[0]
    if lo == len(keys) or keys[lo] != k[0]:
        return 0
    return int(np.searchsorted(keys, k, "right")[0] - lo)


class _ShardIndex:
    """Phase-1 output for one input shard: the new headers of every output member, and
    where each member's data lies in the data source (the input tar itself, or for
    remote inputs ``in_{i}.data``, which holds the kept members' data)."""

    def __init__(self, headers, texts=None, alt=None) -> None:
        self.headers = headers  # file receiving the header bytes
        self.rows: list[tuple[int, int, int]] = []  # (data offset, size, header length)
        self.sample_members: list[int] = []  # members per output sample
        self.found: list[bytes] = []
        self.texts = texts  # textmix.TextChoices (--text-from), or None
        self.alt = alt  # file receiving replacement texts (_work/in_{i}.alt)
        self.alt_rows: list[bool] = []  # per row: data lies in the .alt file
        self.replaced = 0

    def add(self, key: bytes, multiplicity: int, members: list[Member]) -> None:
        uid = key.hex()
        self.found.append(key)
        alt_flags = [False] * len(members)
        if self.texts is not None:
            members, alt_flags = self._replace_text(key, members, alt_flags)
        for j in range(multiplicity):
            for (suffix, offset, size), flag in zip(members, alt_flags, strict=True):
                header = tar_header(f"{uid}-{j}{suffix}", size)
                self.headers.write(header)
                self.rows.append((offset, size, len(header)))
                self.alt_rows.append(flag)
            self.sample_members.append(len(members))
            self.replaced += any(alt_flags)

    def _replace_text(self, key: bytes, members: list[Member],
                      flags: list[bool]) -> tuple[list[Member], list[bool]]:
        text = self.texts.get(key)
        if text is None or not any(m[0] == ".txt" for m in members):
            return members, flags
        offset = self.alt.tell()
        self.alt.write(text)
        out = [(sfx, offset, len(text)) if sfx == ".txt" else (sfx, off, size)
               for sfx, off, size in members]
        return out, [sfx == ".txt" for sfx, _o, _s in members]

    def save(self, path: Path, source: str) -> None:
        st = os.stat(source)
        extra = {"alt": np.asarray(self.alt_rows, dtype=bool)} if self.texts is not None else {}
        with _work_file(path) as f:
            np.savez(f, members=np.asarray(self.rows, dtype=np.int64).reshape(-1, 3),
                     sample_members=np.asarray(self.sample_members, dtype=np.int64),
                     found=np.frombuffer(b"".join(self.found), dtype=UID_KEY),
                     source=np.asarray([st.st_size, st.st_mtime_ns], dtype=np.int64), **extra)


def _index_local(url: str, keys: np.ndarray, index: _ShardIndex, res: ShardResult,
                 cache: Path | None, reader: str) -> None:
    """Apply the subset to the local tar's header index (cached, or built now)."""
    tar_index, res.index_cache = tar_index_cached(url, cache, reader)
    res.tar_reader = tar_index.reader
    tar_index.apply(keys, index, res)


def _index_remote(url: str, keys: np.ndarray, index: _ShardIndex, res: ShardResult,
                  data_path: Path) -> None:
    import fsspec

    # block_size is an argument of open, not of the file system (s3fs would pass it on to
    # its session and fail)
    fs, path = fsspec.core.url_to_fs(url)
    with _work_file(data_path) as data, fs.open(path, "rb", block_size=1 << 22) as f:
        try:
            for members in iter_tar_samples(f, res):
                res.processed += 1
                js = next((d for suffix, d in members if suffix == ".json"), None)
                key = _uid_key(js, res)
                mult = _multiplicity(keys, key) if key is not None else 0
                if mult:
                    res.kept += 1
                    placed = []
                    for suffix, d in members:
                        placed.append((suffix, data.tell(), len(d)))
                        data.write(d)
                    index.add(key, mult, placed)
        finally:
            data.flush()


def filter_shard(shard: InputShard, keys_path: str, work: str | Location,
                 index_cache: str | None = None, reader: str = "auto",
                 texts_path: str | None = None) -> ShardResult:
    """Phase 1 for one input shard: the kept samples' new headers (``in_{i}.hdr``) and
    data locations (``in_{i}.npz``); ``in_{i}.json`` (the counts) is written last.
    Local shards use (and fill) the header index cache ``index_cache`` unless it is None.

    ``work`` on object storage: ``keys_path`` and ``texts_path`` are names there; the
    files are made in a temp folder of this machine, then uploaded whole, json last."""
    if isinstance(work, Location) and not work.local:
        with _scratch() as tmp:
            keys_local = _fetch(work, keys_path, tmp)
            texts_local = _fetch(work, texts_path, tmp) if texts_path else None
            res = filter_shard(shard, str(keys_local), str(tmp), index_cache, reader,
                               str(texts_local) if texts_local else None)
            stem = f"in_{shard.index:08d}"
            for suffix in (".hdr", ".alt", ".data", ".npz", ".json"):  # .json last
                if (tmp / f"{stem}{suffix}").exists():
                    work.put_file(tmp / f"{stem}{suffix}", f"{stem}{suffix}")
            return res
    keys = np.load(keys_path, mmap_mode="r")
    res = ShardResult(shard.index, shard.url)
    stem = Path(work) / f"in_{shard.index:08d}"
    local = is_local(shard.url)
    source = shard.url if local else f"{stem}.data"
    with contextlib.ExitStack() as stack:
        headers = stack.enter_context(_work_file(f"{stem}.hdr"))
        texts = alt = None
        if texts_path is not None:
            from datacomp_sci.resharding.textmix import TextChoices

            texts, alt = TextChoices(texts_path), stack.enter_context(_work_file(f"{stem}.alt"))
        index = _ShardIndex(headers, texts, alt)
        try:
            if local:
                _index_local(shard.url, keys, index, res,
                             Path(index_cache) if index_cache is not None else None, reader)
            else:
                _index_remote(shard.url, keys, index, res, Path(source))
        except (tarfile.TarError, OSError, EOFError, ValueError) as e:
            res.error = f"{type(e).__name__}: {e}"
        res.written = len(index.sample_members)
        res.texts_replaced = index.replaced
    index.save(Path(f"{stem}.npz"), source)
    with _work_file(f"{stem}.json") as f:  # last: marks the shard as done
        f.write(dumps_stable(asdict(res)).encode())
    return res


def _load_result(work: Path | Location, index: int) -> ShardResult | None:
    name = f"in_{index:08d}.json"
    if isinstance(work, Location) and not work.local:
        try:
            return ShardResult(**json.loads(work.read_bytes(name)))
        except FileNotFoundError:
            return None
    path = (work.path if isinstance(work, Location) else Path(work)) / name
    if not path.exists():
        return None
    return ShardResult(**json.loads(path.read_text()))


@dataclass(frozen=True)
class _Run:
    """Output members [start, stop) of one input shard's index (a contiguous run)."""

    stem: str  # _work/in_{i}
    source: str  # where the data lies: the input tar, or _work/in_{i}.data
    start: int
    stop: int


def _output_plan(work: Path, results: list[ShardResult],
                 shard_size: int) -> Iterator[tuple[list[_Run], int]]:
    """Yield, per output shard, its runs of members and its sample count."""
    runs: list[_Run] = []
    count = 0
    for r in results:
        stem = work / f"in_{r.index:08d}"
        per_sample = np.load(f"{stem}.npz")["sample_members"]
        bounds = np.concatenate([[0], np.cumsum(per_sample)])
        source = r.url if is_local(r.url) else f"{stem}.data"
        pos = 0
        while pos < len(per_sample):
            take = min(shard_size - count, len(per_sample) - pos)
            runs.append(_Run(str(stem), source, int(bounds[pos]), int(bounds[pos + take])))
            pos += take
            count += take
            if count == shard_size:
                yield runs, count
                runs, count = [], 0
    if count:
        yield runs, count


class _TarSink:
    """Writes tar members to a raw fd: small pieces are gathered into one ``write``, member
    data is copied in the kernel (``copy_file_range``) where the platform allows."""

    SMALL = 1 << 14

    def __init__(self, fd: int) -> None:
        self.fd, self.pending, self.size = fd, bytearray(), 0
        self.kernel_copy = hasattr(os, "copy_file_range")

    def add(self, data: bytes) -> None:
        self.pending += data
        self.size += len(data)

    def flush(self) -> None:
        with memoryview(self.pending) as view:
            done = 0
            while done < len(view):
                done += os.write(self.fd, view[done:])
        self.pending.clear()

    def copy(self, src: int, offset: int, size: int) -> None:
        if size <= self.SMALL or not self.kernel_copy:
            self._read_copy(src, offset, size)
        else:
            self.flush()
            done = 0
            while done < size:
                try:
                    n = os.copy_file_range(src, self.fd, size - done, offset + done)
                except OSError:  # e.g. EXDEV on old kernels: copy through user space
                    self.kernel_copy = False
                    self._read_copy(src, offset + done, size - done)
                    break
                if n <= 0:
                    raise OSError("input shard shorter than indexed; rerun with --overwrite")
                done += n
            self.size += size
        self.add(b"\0" * ((-size) % BLOCK))

    def _read_copy(self, src: int, offset: int, size: int) -> None:
        while size:
            data = os.pread(src, min(size, 1 << 24), offset)
            if not data:
                raise OSError("input shard shorter than indexed; rerun with --overwrite")
            self.add(data)
            offset, size = offset + len(data), size - len(data)
            if len(self.pending) >= 1 << 20:
                self.flush()


def _copy_run(run: _Run, sink: _TarSink) -> None:
    index = np.load(f"{run.stem}.npz")
    rows = index["members"]
    first = int(rows[:run.start, 2].sum())
    rows = rows[run.start:run.stop]
    with open(f"{run.stem}.hdr", "rb") as f:
        f.seek(first)
        headers = f.read(int(rows[:, 2].sum()))
    alt_flags = index["alt"][run.start:run.stop].tolist() if "alt" in index.files else None
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(open(run.source, "rb"))
        st = os.fstat(src.fileno())
        # the run's own .data (a remote input's kept bytes) may be a fresh download: only
        # its size must match; an input tar must not have changed at all
        check = [st.st_size] + ([] if run.source == f"{run.stem}.data" else [st.st_mtime_ns])
        if check != index["source"].tolist()[:len(check)]:
            raise FileExistsError(f"{run.source} changed after this run indexed it; "
                                  "rerun with --overwrite")
        alt = stack.enter_context(open(f"{run.stem}.alt", "rb")) if alt_flags else None
        pos = 0
        for i, (offset, size, header_len) in enumerate(rows.tolist()):
            sink.add(headers[pos:pos + header_len])
            pos += header_len
            fd = alt.fileno() if alt_flags and alt_flags[i] else src.fileno()
            sink.copy(fd, offset, size)


def _fetch_runs(runs: list[_Run], work: Location, tmp: Path) -> list[_Run]:
    """The runs with their phase-1 files fetched from ``work`` (object storage) into ``tmp``."""
    local = []
    for run in runs:
        stem = Path(run.stem).name
        own_data = run.source == f"{run.stem}.data"
        names = [f"{stem}.npz", f"{stem}.hdr"] + ([f"{stem}.data"] if own_data else [])
        if work.exists(f"{stem}.alt"):
            names.append(f"{stem}.alt")
        for name in names:
            _fetch(work, name, tmp)
        local.append(_Run(str(tmp / stem), str(tmp / f"{stem}.data") if own_data else run.source,
                          run.start, run.stop))
    return local


def _write_output_shard(out_dir: Path | Location, work: Location | None, n: int,
                        runs: list[_Run], count: int) -> None:
    """Write output shard ``n``; ``work``: where the phase-1 files are when they are on
    object storage (None: the local paths the runs name)."""
    out_dir = location(out_dir)
    if work is not None:
        with _scratch() as tmp:
            _write_output_shard(out_dir, None, n, _fetch_runs(runs, work, tmp), count)
        return
    name = OUTPUT_SHARD_FORMAT.format(n)
    with out_dir.writer(name) as out:
        out.flush()
        sink = _TarSink(out.fileno())
        for run in runs:
            _copy_run(run, sink)
        sink.add(tar_end(sink.size))
        sink.flush()
    out_dir.write_json(f"{Path(name).stem}_stats.json", {"count": count, "successes": count})


def _write_output_shard_task(args: tuple) -> None:
    _write_output_shard(*args)


def _run_phase2(out: Location, work: Path, results: list[ShardResult], engine: Engine,
                shard_size: int, remote_work: Location | None = None) -> int:
    """Write every output shard not written yet; returns the number of output shards.
    ``work``: a local folder holding the phase-1 ``.npz`` files (the plan is made from
    them); ``remote_work``: where the tasks find all phase-1 files, when on object storage."""
    todo = []
    n_out = 0
    done = set(out.listdir()) if not out.local else None
    for n, (runs, count) in enumerate(_output_plan(work, results, shard_size)):
        stats = f"{n:08d}_stats.json"
        if not (stats in done if done is not None else out.exists(stats)):
            todo.append((out, remote_work, n, runs, count))
        n_out = n + 1
    for pos, outcome in engine.map(_write_output_shard_task, todo, ordered=False,
                                   name="reshard write"):
        if isinstance(outcome, TaskFailed):
            outcome.raise_error(f"writing output shard {todo[pos][2]:08d}")
    return n_out


def _subset_keys(subset: np.ndarray) -> np.ndarray:
    be = np.empty((len(subset), 2), dtype=">u8")
    be[:, 0] = subset["f0"]
    be[:, 1] = subset["f1"]
    return np.sort(be.view(UID_KEY).ravel())


def _keys_to_subset(keys: np.ndarray) -> np.ndarray:
    be = np.ascontiguousarray(keys).view(">u8").reshape(-1, 2)
    out = np.empty(len(be), dtype=SUBSET_DTYPE)
    out["f0"], out["f1"] = be[:, 0], be[:, 1]
    return out


def _fingerprint(inputs: list[InputShard], subset_sha: str, opts: ReshardOptions) -> dict:
    urls = "\n".join(s.url for s in inputs).encode()
    return {"format": FORMAT, "inputs_sha256": hashlib.sha256(urls).hexdigest(),
            "n_inputs": len(inputs), "subset_sha256": subset_sha, "shard_size": opts.shard_size}


def _empty_reshard(out: Location, results: list[ShardResult], n_uids: int) -> None:
    """Nothing selected: remove what this run made (so it blocks no corrected rerun) and
    say so, with the missing-uid count."""
    processed = sum(r.processed for r in results)
    out.rmtree("_work")
    if out.local:
        with contextlib.suppress(OSError):
            out.path.rmdir()  # only if empty: never another run's files
    raise ValueError(
        f"empty reshard: none of the subset's {n_uids:,} uids is among the {processed:,} "
        f"samples of the {len(results)} input shards ({n_uids:,} missing); nothing was "
        "written. Is the subset made from these pools?")


def _started(work: Location) -> bool:
    """Whether an earlier run did any work worth resuming (an input shard finished)."""
    return any(n.startswith("in_") and n.endswith(".json") for n in work.listdir())


def _run_record(work: Location) -> dict | None:
    if work.local:
        return outdir.read_record(work.path / "run.json")
    return json.loads(work.read_bytes("run.json")) if work.is_file("run.json") else None


def _prepare_output(out: Location, fingerprint: dict, opts: ReshardOptions) -> Location:
    work = out.child("_work")
    if not opts.overwrite and work.exists("run.json") and not _started(work) and \
            _run_record(work) != json.loads(dumps_stable(fingerprint)):
        work.rmtree()  # a start that stopped before any work: nothing to keep
        if out.local:
            with contextlib.suppress(OSError):
                out.path.rmdir()
    outdir.claim(out, fingerprint, "reshard", state_file="_work/run.json",
                 overwrite=opts.overwrite, foreign_ok=("_work",))
    return work


def _completed(out: Location, fingerprint: dict) -> dict | None:
    return outdir.finished(out, "meta.json", "fingerprint", fingerprint, "a reshard")


def _filter_shard_task(args: tuple) -> ShardResult:
    return filter_shard(*args)


def _run_phase1(inputs: list[InputShard], keys_path: Path | str, work: Path | Location,
                engine: Engine, progress: Callable[[ShardResult], None],
                index_cache: Path | None = None, reader: str = "auto",
                texts_path: str | None = None) -> list[ShardResult]:
    """Index the input shards not done yet. ``work`` on object storage: ``keys_path`` and
    ``texts_path`` are names there."""
    results: dict[int, ShardResult] = {}
    todo = []
    for s in inputs:
        done = _load_result(work, s.index)
        if done is None:
            todo.append(s)
        else:
            results[s.index] = done
            progress(done)
    cache = str(index_cache) if index_cache is not None else None
    task_work = work if isinstance(work, Location) else str(work)
    tasks = [(s, str(keys_path), task_work, cache, reader, texts_path) for s in todo]
    for pos, outcome in engine.map(_filter_shard_task, tasks, ordered=False,
                                   name="reshard index"):
        if isinstance(outcome, TaskFailed):
            outcome.raise_error(f"indexing input shard {todo[pos].url}")
        results[outcome.index] = outcome
        progress(outcome)
    return [results[s.index] for s in inputs]


def _totals(results: list[ShardResult]) -> dict:
    total: Counter = Counter()
    for r in results:
        for k in ("processed", "kept", "written", "no_uid", "bad_json", "bad_uid", "skipped_members",
                  "texts_replaced"):
            total[k] += getattr(r, k)
    if not total["texts_replaced"]:
        del total["texts_replaced"]  # only --text-from runs report it
    return dict(total)


def _missing_and_duplicates(work: Path, results: list[ShardResult], keys: np.ndarray):
    parts = [np.load(work / f"in_{r.index:08d}.npz")["found"] for r in results]
    found = np.concatenate(parts) if parts else np.empty(0, dtype=UID_KEY)
    uniq_found = np.unique(found)
    uniq_subset = np.unique(keys)
    missing = uniq_subset[~np.isin(uniq_subset, uniq_found)]
    return _keys_to_subset(missing), int(len(found) - len(uniq_found))


def reshard(inputs: list[str], subset_path: str | os.PathLike, output: str | os.PathLike,
            opts: ReshardOptions = ReshardOptions(),
            progress: Callable[[int, int, dict], None] | None = None,
            on_resume: Callable[[int, int], None] | None = None) -> ReshardResult:
    """Write the samples of ``inputs`` whose uid is in the subset to ``output`` (see module
    doc). ``on_resume(done, total)``: an interrupted run resumes with ``done`` of ``total``
    input shards finished."""
    if opts.shard_size < 1:
        raise ValueError("--shard-size must be at least 1")
    out = _output(output, opts)
    if opts.index_cache is not None and not opts.use_index_cache:
        raise ValueError("give --index-cache DIR or --no-index-cache, not both")
    subset_path = Path(subset_path)
    if not subset_path.exists():
        raise FileNotFoundError(f"{subset_path}: no such subset file")
    reader, reader_line = tarscan.resolve_reader(opts.tar_reader)
    resolved = resolve_inputs(inputs)
    fingerprint = _fingerprint(resolved.shards, sha256_file(subset_path), opts)
    text_src = None
    if opts.text_from is not None:
        from datacomp_sci.resharding.textmix import resolve_text_source

        text_src = resolve_text_source(opts.text_from, subset_path, opts.text_mix, opts.seed)
        fingerprint["text_from"] = {"sha256": text_src.sha256, "mix": text_src.mix,
                                    "seed": text_src.seed}
    if not opts.overwrite and (meta := _completed(out, fingerprint)) is not None:
        report = json.loads(out.read_bytes("reshard_report.json"))
        return ReshardResult(out.url, meta, report, already_complete=True)
    subset = load_subset(subset_path)  # checked before anything is created
    work = _prepare_output(out, fingerprint, opts)
    if out.local:
        return _reshard(out, work, work.path, subset, subset_path, resolved, fingerprint,
                        text_src, reader, reader_line, opts, progress, on_resume)
    with _scratch() as local_work:  # the driver's copies of small phase-1 files
        return _reshard(out, work, local_work, subset, subset_path, resolved, fingerprint,
                        text_src, reader, reader_line, opts, progress, on_resume)


def _output(output: str | os.PathLike, opts: ReshardOptions) -> Location:
    return output_location(output, opts.storage_options, resolve=True)


def _reshard(out: Location, work: Location, local_work: Path, subset: np.ndarray,
             subset_path: Path, resolved, fingerprint: dict, text_src, reader: str,
             reader_line: str, opts: ReshardOptions,
             progress: Callable[[int, int, dict], None] | None,
             on_resume: Callable[[int, int], None] | None) -> ReshardResult:
    """The two phases. ``work`` is where the phase-1 files live (OUTPUT/_work, local or on
    object storage); ``local_work`` a local folder for the driver's own files (the same
    folder for a local output)."""
    remote = None if work.local else work
    if on_resume and (done := sum(_load_result(work, s.index) is not None
                                  for s in resolved.shards)):
        on_resume(done, len(resolved.shards))
    keys = _subset_keys(subset)
    keys_path = local_work / "subset_keys.npy"
    if not keys_path.exists():
        with atomic_open(keys_path) as f:
            np.save(f, keys)
    if remote is not None and not remote.exists("subset_keys.npy"):
        remote.put_file(keys_path, "subset_keys.npy")

    totals: Counter = Counter()

    def step(r: ShardResult) -> None:
        totals["shards"] += 1
        totals["processed"] += r.processed
        totals["written"] += r.written
        if progress:
            progress(totals["shards"], len(resolved.shards), dict(totals))

    texts_path = text_stats = None
    if text_src is not None:
        from datacomp_sci.resharding.textmix import save_choices

        texts_path = local_work / "text_choices.npz"
        text_stats = save_choices(texts_path, text_src)  # cheap: recomputed on resume
        if remote is not None:
            remote.put_file(texts_path, "text_choices.npz")
    cache = _index_cache_dir(opts)
    # fork, as before engines: the parent holds no threads, and children need not
    # re-import webdataset (and torch); fsspec resets its event loop in a forked child
    with engine_session(opts.engine_options(), start_method="fork") as engine:
        if remote is None:
            results = _run_phase1(resolved.shards, keys_path, work.path, engine, step, cache,
                                  reader, str(texts_path) if texts_path else None)
        else:
            results = _run_phase1(resolved.shards, "subset_keys.npy", remote, engine, step,
                                  cache, reader, "text_choices.npz" if texts_path else None)
            for r in results:  # the plan and the missing uids are made from these
                _fetch(remote, f"in_{r.index:08d}.npz", local_work)
        if not any(r.kept for r in results):
            _empty_reshard(out, results, len(np.unique(keys)))
        n_out = _run_phase2(out, local_work, results, engine, opts.shard_size, remote)
    missing, dup_in_input = _missing_and_duplicates(local_work, results, keys)
    captions = None
    if text_src is not None:
        captions = {"text_from": str(text_src.path), "sha256": text_src.sha256,
                    "mix": text_src.mix, "seed": text_src.seed,
                    "samples_replaced": sum(r.texts_replaced for r in results), **text_stats,
                    "note": "captions rewritten: a bring-your-own-data method, not a subset of "
                            "the pool (DataComp's filtering track does not allow it)"}
    res = _finish(out, work, subset, missing, dup_in_input, results, resolved, fingerprint, n_out,
                  opts, captions)
    res.index_cache = _cache_summary(cache, results)
    used = Counter(r.tar_reader for r in results if r.tar_reader is not None)
    res.tar_reader = {"reader": reader_line, "libarchive": used["libarchive"],
                      "tarfile": used["tarfile"]}
    if res.index_cache["not saved"]:
        res.warnings.append(f"{res.index_cache['not saved']} input shard header indexes could not "
                            f"be saved to {cache} (not writable?); the output is unaffected")
    return res


def _index_cache_dir(opts: ReshardOptions) -> Path | None:
    if not opts.use_index_cache:
        return None
    if opts.index_cache is None:
        return default_index_cache()
    return Path(opts.index_cache).expanduser().resolve()


def _cache_summary(cache: Path | None, results: list[ShardResult]) -> dict:
    """How the local input shards got their header index in this run (resumed shards
    keep what their first run recorded)."""
    seen = Counter(r.index_cache for r in results if r.index_cache is not None)
    return {"dir": str(cache) if cache is not None else None, "reused": seen["reused"],
            "built": seen["built"], "not saved": seen["not saved"]}


def _report_row(r: ShardResult) -> dict:
    row = asdict(r)
    del row["index_cache"], row["tar_reader"]  # the report is the same with or without them
    if not row["texts_replaced"]:
        del row["texts_replaced"]  # as before --text-from existed
    return row


def _finish(out: Location, work: Location, subset: np.ndarray, missing: np.ndarray,
            dup_in_input: int, results: list[ShardResult], resolved, fingerprint: dict,
            n_out: int, opts: ReshardOptions, captions: dict | None = None) -> ReshardResult:
    with out.writer("sample_ids.npy") as f:
        np.save(f, np.asarray(subset, dtype=SUBSET_DTYPE))
    with out.writer("missing_uids.npy") as f:
        np.save(f, missing)
    totals = _totals(results)
    errors = {r.url: r.error for r in results if r.error}
    report = {
        "inputs": resolved.specs, "input_shards": len(results),
        "skipped_input_shards": resolved.skipped, "unreadable_input_shards": errors,
        "subset_size": int(len(subset)), "missing_uids": int(len(missing)),
        "duplicate_uids_in_input": dup_in_input, **totals,
        "per_input_shard": [_report_row(r) for r in results],
    }
    out.write_json("reshard_report.json", report)
    meta = {
        "output_shard_count": n_out, "output_shard_format": OUTPUT_SHARD_FORMAT,
        "processed_count": totals.get("processed", 0), "output_count": totals.get("written", 0),
        "input_shard_count": len(results), "shard_size": opts.shard_size,
        "missing_count": int(len(missing)), "no_uid_count": totals.get("no_uid", 0),
        "fingerprint": fingerprint, "datacomp_sci_version": __version__,
        **({"captions_changed": captions} if captions is not None else {}),
    }
    out.write_json("meta.json", meta)
    if not opts.keep_work:
        work.rmtree()
    return ReshardResult(out.url, meta, report, warnings=_warnings(report))


def _warnings(report: dict) -> list[str]:
    w = []
    if report["missing_uids"]:
        w.append(f"{report['missing_uids']} uids of the subset were not found in the input "
                 "(listed in missing_uids.npy)")
    for k in ("no_uid", "bad_json", "bad_uid"):
        if report.get(k):
            w.append(f"{report[k]} input samples skipped: {k}")
    if report["skipped_input_shards"]:
        w.append(f"{len(report['skipped_input_shards'])} input shards without _stats.json skipped "
                 "(unfinished download?)")
    if report["unreadable_input_shards"]:
        w.append(f"{len(report['unreadable_input_shards'])} input shards could not be read to the "
                 "end (see reshard_report.json)")
    if report["duplicate_uids_in_input"]:
        w.append(f"{report['duplicate_uids_in_input']} subset uids occur in more than one input "
                 "sample; each occurrence was written")
    return w


def missing_uids(output: str | os.PathLike) -> list[str]:
    """The subset uids a finished reshard did not find, as hex strings."""
    path = Path(output) / "missing_uids.npy"
    if not path.exists():
        raise FileNotFoundError(f"{output}: no missing_uids.npy (not a finished reshard output)")
    return u8u8_to_uids(np.load(path))
