"""Prepare a DataComp leaderboard submission, validated before anything is written.

DataComp's ``evaluate.py --submit`` uploads the results, the sample files and optionally
the checkpoint to a model-hub repository (``<scale>_scale/results.jsonl``,
``<scale>_scale/samples/<file>``, ``<scale>_scale/checkpoint.pt``) and posts one JSON
record to the leaderboard database. It checks little first and silently defaults
``dataset_size`` to the scale's samples seen. Here everything is checked first, every
problem is reported at once, ``dataset_size`` is computed from the sample files, and the
result is a folder laid out like the hub repository plus ``submission.json`` (DataComp's
record) and ``manifest.json`` (sizes, sha256, provenance). Uploading to DataComp's hosted
board stays a manual step (see :data:`UPLOAD_STEPS`). A self-hosted board
(``datacomp-sci leaderboard serve``) receives the folder with :func:`upload_submission` and
checks it again with :func:`validate_folder`, the same checks.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from datacomp_sci.core.util import atomic_write_json, dumps_stable, link_or_copy, sha256_file
from datacomp_sci.reporting.aggregate import aggregate, load_results, load_suite, task_scores
from datacomp_sci.reporting.report import resolve_results

#: Suites by name, read once per process (validation looks a suite up several times).
_suite = functools.lru_cache(maxsize=8)(load_suite)

TRACKS = ("filtering", "byod")
LEADERBOARD_SCALES = ("small", "medium", "large", "xlarge")
SUITE = "datacomp38"
BYOD_COLUMNS = ("url", "text")
#: A scale name is a plain word (it names folders and web addresses).
SCALE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")

UPLOAD_STEPS = """\
Uploading is not automated (it needs network access and your credentials). To submit:
  1. Upload the model-hub part of the folder (results, samples, checkpoint):
       huggingface-cli upload USER/REPO {folder}/{prefix} {prefix} --repo-type model
  2. Send the leaderboard record {folder}/submission.json to DataComp as their
     evaluate.py --submit does (it PUTs that JSON to the leaderboard database), or follow
     the submission instructions of the DataComp website / README with that file.
The folder is already complete and validated; nothing else needs to be recomputed."""


@dataclass(frozen=True)
class SubmissionRequest:
    """What ``datacomp-sci submit`` is asked to prepare."""

    train_output: Path
    track: str
    method: str
    authors: str
    contact: str
    output: Path
    writeup: str | None = None
    samples: tuple[Path, ...] = ()          # empty: the subset files recorded in info.json
    results: Path | None = None             # default: eval_results.jsonl of train_output
    include_checkpoint: bool = False
    hf_repo: str | None = None              # USER/NAME of the model-hub repository
    timestamp: str | None = None            # default: now (UTC), DataComp's format


@dataclass(frozen=True)
class SampleFile:
    path: Path
    kind: str          # "uids" (DataComp subset .npy) or "byod" (parquet with url, text)
    rows: int
    sha256: str


@dataclass(frozen=True)
class UploadFile:
    source: Path
    dest: str          # path inside the submission folder / hub repository
    bytes: int
    sha256: str


@dataclass
class Submission:
    """A validated submission: the leaderboard record and the files to upload."""

    record: dict[str, Any]
    manifest: dict[str, Any]
    files: list[UploadFile]
    output: Path
    prefix: str
    problems: list[str] = field(default_factory=list)


class _Problems(list):
    def check(self) -> None:
        if self:
            lines = "\n".join(f"  - {p}" for p in self)
            raise ValueError(f"the submission is not valid ({len(self)} problem"
                             f"{'s' if len(self) > 1 else ''}):\n{lines}")


# --- inputs -----------------------------------------------------------------------------

def find_train_info(train_output: Path) -> Path:
    """``info.json`` of a training run: in the folder or in its one run subfolder."""
    if (train_output / "info.json").is_file():
        return train_output / "info.json"
    found = sorted(train_output.glob("*/info.json"))
    if len(found) == 1:
        return found[0]
    if not train_output.is_dir():
        raise FileNotFoundError(f"{train_output}: no such training output folder")
    if not found:
        raise FileNotFoundError(f"{train_output}: no info.json (is training finished? "
                                "`datacomp-sci train` writes it at the end)")
    raise ValueError(f"{train_output}: several runs ({', '.join(str(f.parent) for f in found)}); "
                     "give one of them")


def _load_info(path: Path) -> dict[str, Any]:
    import json

    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not readable JSON ({e})") from e
    if not isinstance(info, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return info


def _uid_rows(path: Path, problems: list[str]) -> int | None:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        problems.append(f"{path}: not a .npy file ({e})")
        return None
    names = arr.dtype.names or ()
    if arr.ndim != 1 or len(names) != 2 or any(arr.dtype[n] != np.uint64 for n in names):
        problems.append(f"{path}: dtype {arr.dtype} shape {arr.shape} is not a DataComp subset "
                        "(1-d array of u8,u8 records; write it with `datacomp-sci filter`)")
        return None
    hi, lo = arr[names[0]], arr[names[1]]
    unsorted = (hi[1:] < hi[:-1]) | ((hi[1:] == hi[:-1]) & (lo[1:] < lo[:-1]))
    if unsorted.any():
        problems.append(f"{path}: uids are not sorted ({int(unsorted.sum())} descents); "
                        "DataComp's resharder binary-searches them: sort by (high, low)")
    return int(arr.shape[0])


def _byod_rows(path: Path, problems: list[str]) -> int | None:
    try:
        meta = pq.ParquetFile(path)
    except (OSError, ValueError) as e:
        problems.append(f"{path}: not a parquet file ({e})")
        return None
    missing = [c for c in BYOD_COLUMNS if c not in meta.schema_arrow.names]
    if missing:
        problems.append(f"{path}: bring-your-own-data parquet needs columns {list(BYOD_COLUMNS)}; "
                        f"missing {missing}")
        return None
    return int(meta.metadata.num_rows)


def check_sample_file(path: Path, track: str, problems: list[str]) -> SampleFile | None:
    """Validate one sample file; its row count is its share of ``dataset_size``."""
    if not path.is_file():
        problems.append(f"{path}: sample file not found")
        return None
    suffix = path.suffix.lower()
    if suffix == ".npy":
        kind, rows = "uids", _uid_rows(path, problems)
    elif suffix == ".parquet":
        if track != "byod":
            problems.append(f"{path}: parquet sample files (url, text) belong to the byod track; "
                            "the filtering track submits uid .npy files only")
            return None
        kind, rows = "byod", _byod_rows(path, problems)
    else:
        problems.append(f"{path}: sample files are .npy (uids) or .parquet (url, text)")
        return None
    return None if rows is None else SampleFile(path, kind, rows, sha256_file(path))


def _sample_paths(req: SubmissionRequest, info: dict, info_path: Path) -> list[Path]:
    if req.samples:
        return [Path(p) for p in req.samples]
    return [Path(f["path"]) if Path(f["path"]).is_absolute() else info_path.parent / f["path"]
            for f in info.get("subset_files") or [] if isinstance(f, dict) and "path" in f]


def _checkpoint(info: dict, info_path: Path, problems: list[str]) -> tuple[Path | None, str | None]:
    ckpt = info.get("checkpoint")
    if not isinstance(ckpt, str) or not ckpt:
        problems.append(f"{info_path}: no 'checkpoint' recorded")
        return None, None
    path = Path(ckpt) if Path(ckpt).is_absolute() else info_path.parent / ckpt
    if not path.is_file():
        problems.append(f"checkpoint {path} not found")
        return None, None
    digest = sha256_file(path)
    recorded = info.get("checkpoint_sha256")
    if recorded and recorded != digest:
        problems.append(f"checkpoint {path}: sha256 {digest} differs from info.json's {recorded} "
                        "(the file changed after training)")
    return path, digest


def check_fields(track: str | None, method: str | None, authors: str | None,
                 contact: str | None, writeup: str | None, problems: list[str],
                 names: dict[str, str] | None = None) -> None:
    """The leaderboard fields a person fills in; ``names`` says how each is called where
    it came from (``--method`` on the command line, ``method_name`` in submission.json)."""
    n = {"track": "track", "method": "--method", "authors": "--authors", "contact": "--contact",
         "writeup": "--writeup", **(names or {})}
    if track not in TRACKS:
        problems.append(f"{n['track']} {track!r}: choose one of {', '.join(TRACKS)}")
    for key, value in (("method", method), ("authors", authors)):
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{n[key]} is empty (it is shown on the leaderboard)")
    if not isinstance(contact, str) or "@" not in contact:
        problems.append(f"{n['contact']} {contact!r} is not an e-mail address")
    if writeup and not (isinstance(writeup, str) and writeup.startswith(("http://", "https://"))):
        problems.append(f"{n['writeup']} {writeup!r} is not an http(s) URL")


def _check_captions(info: dict, info_path: Path, track: str, problems: list[str]) -> None:
    """The filtering track selects CommonPool samples as they are: training shards whose
    captions ``reshard --text-from`` rewrote (``captions_changed`` in their meta.json)
    make the run bring-your-own-data."""
    if track != "filtering":
        return
    import json

    for src in (info.get("data") or {}).get("sources") or []:
        path = src.get("path") if isinstance(src, dict) else None
        if not path:
            continue
        folder = Path(path) if Path(path).is_absolute() else info_path.parent / path
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        changed = meta.get("captions_changed") if isinstance(meta, dict) else None
        if changed:
            problems.append(
                f"training shards {folder} have rewritten captions ({changed.get('samples_replaced', '?')} "
                f"samples got KG texts via reshard --text-from): the filtering track only selects "
                "pool samples unchanged; submit with --track byod, or train on shards resharded "
                "without --text-from")


def _check_request(req: SubmissionRequest, problems: list[str]) -> None:
    check_fields(req.track, req.method, req.authors, req.contact, req.writeup, problems)
    if req.hf_repo and req.hf_repo.count("/") != 1:
        problems.append(f"--hf-repo {req.hf_repo!r} must be USER/NAME")


def check_scale(scale: Any, scales: tuple[str, ...] | None, where: str,
                problems: list[str]) -> None:
    """``scales`` None accepts any scale name (a custom board, e.g. the demo's ``tiny``)."""
    if (not isinstance(scale, str) or not SCALE_NAME.fullmatch(scale)
            or (scales is not None and scale not in scales)):
        allowed = ", ".join(scales) if scales else "a scale name"
        problems.append(f"{where}: scale {scale!r} is not a DataComp leaderboard scale "
                        f"({allowed})")


# --- validation --------------------------------------------------------------------------

def check_results(path: Path, problems: list[str], suite: str = SUITE):
    """Read a results file and check that every scored task of ``suite`` has its main
    metric; returns the run (None when unreadable)."""
    try:
        run = load_results(path)
    except (FileNotFoundError, ValueError) as e:
        problems.append(str(e))
        return None
    spec = _suite(suite)
    scores, _ = task_scores(run, spec)
    missing = [t.name for t in spec.scored if t.key not in scores]
    if missing:
        problems.append(f"{path}: {len(missing)} of {len(spec.scored)} tasks of {spec.name} have "
                        f"no main metric ({', '.join(missing)}); run `datacomp-sci evaluate` to "
                        "finish them")
    if run.bad_lines:
        problems.append(f"{path}: {len(run.bad_lines)} unusable lines (first: {run.bad_lines[0]})")
    return run


def _results(req: SubmissionRequest, info_path: Path, problems: list[str], suite: str):
    try:
        path = resolve_results(req.results or info_path.parent)
    except (FileNotFoundError, ValueError) as e:
        problems.append(str(e))
        return None, None
    return path, check_results(path, problems, suite)


def _record(req: SubmissionRequest, info: dict, dataset_size: int, run, timestamp: str,
            suite: str = SUITE) -> dict:
    cfg = info.get("scale_config") or {}
    user, _, repo = (req.hf_repo or "").partition("/")
    record: dict[str, Any] = {
        "scale": info.get("scale"),
        "model": info.get("model") or cfg.get("model"),
        "dataset_size": dataset_size,
        "checkpoint": str(info.get("checkpoint")),
        "batch_size": cfg.get("batch_size"),
        "learning_rate": cfg.get("learning_rate"),
        "method_name": req.method.strip(),
        "author": req.authors.strip(),
        "email": req.contact.strip(),
        "hf_username": user or None,
        "hf_repo_name": repo or None,
        "timestamp": timestamp,
        "track": req.track,
        "writeup": req.writeup,
    }
    spec = _suite(suite)
    scores, _ = task_scores(run, spec)
    for t in spec.scored:
        if t.key in scores:
            record[t.name] = scores[t.key]
    return record


def validate_submission(req: SubmissionRequest, suite: str = SUITE,
                        scales: tuple[str, ...] | None = LEADERBOARD_SCALES) -> Submission:
    """Check everything and return the submission; raise one ValueError listing every problem.

    ``suite`` and ``scales`` are DataComp's (38 tasks; small to xlarge) unless a custom
    board asks for others (``scales=None``: any scale)."""
    problems = _Problems()
    _check_request(req, problems)
    info_path = find_train_info(Path(req.train_output))
    info = _load_info(info_path)
    scale = info.get("scale")
    check_scale(scale, scales, str(info_path), problems)
    results_path, run = _results(req, info_path, problems, suite)
    _check_captions(info, info_path, req.track, problems)
    paths = _sample_paths(req, info, info_path)
    if not paths:
        problems.append("no sample files: give --samples (uid .npy and/or byod .parquet); "
                        "info.json records none")
    samples = [s for p in paths if (s := check_sample_file(p, req.track, problems)) is not None]
    names = [s.path.name for s in samples]
    if len(set(names)) != len(names):
        problems.append(f"sample files share a file name ({', '.join(names)}): they would "
                        "overwrite each other under samples/")
    ckpt, ckpt_sha = _checkpoint(info, info_path, problems)
    problems.check()
    prefix = f"{scale}_scale"
    files = [UploadFile(results_path, f"{prefix}/results.jsonl", results_path.stat().st_size,
                        sha256_file(results_path))]
    files += [UploadFile(s.path, f"{prefix}/samples/{s.path.name}", s.path.stat().st_size, s.sha256)
              for s in samples]
    if req.include_checkpoint and ckpt is not None:
        files.append(UploadFile(ckpt, f"{prefix}/checkpoint.pt", ckpt.stat().st_size, ckpt_sha))
    dataset_size = sum(s.rows for s in samples)
    timestamp = req.timestamp or datetime.now(timezone.utc).strftime("%Y-%m-%d_%H:%M:%S")
    record = _record(req, info, dataset_size, run, timestamp, suite)
    agg = aggregate(run, _suite(suite))
    manifest = {
        "suite": suite,
        "train_info": str(info_path), "checkpoint_sha256": ckpt_sha,
        "samples": [{"path": str(s.path), "kind": s.kind, "rows": s.rows, "sha256": s.sha256}
                    for s in samples],
        "dataset_size": dataset_size,
        "files": [{"dest": f.dest, "bytes": f.bytes, "sha256": f.sha256} for f in files],
        "aggregates": {g: s.value for g, s in agg.groups.items()},
        "versions": info.get("versions"), "git_revision": info.get("git_revision"),
    }
    return Submission(record, manifest, files, Path(req.output), prefix)


# --- a submission folder, as a leaderboard server receives it ------------------------------

RECORD_FIELDS = {"track": "submission.json 'track'", "method": "submission.json 'method_name'",
                 "authors": "submission.json 'author'", "contact": "submission.json 'email'",
                 "writeup": "submission.json 'writeup'"}


def _json_object(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        return _load_info(path)
    except ValueError as e:
        problems.append(str(e) if path.exists() else f"{path.name}: missing (write the folder "
                                                     "with `datacomp-sci submit`)")
        return None


def _folder_files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _check_manifest(manifest: dict, files: dict[str, Path], hashes: dict[str, str],
                    problems: list[str]) -> None:
    listed = manifest.get("files")
    if not isinstance(listed, list):
        problems.append("manifest.json: no 'files' list")
        return
    seen = set()
    for entry in listed:
        dest = entry.get("dest") if isinstance(entry, dict) else None
        if not isinstance(dest, str):
            problems.append(f"manifest.json: file entry {entry!r} has no 'dest'")
            continue
        seen.add(dest)
        if dest not in files:
            problems.append(f"{dest}: listed in manifest.json but not in the folder")
        elif entry.get("sha256") != hashes[dest]:
            problems.append(f"{dest}: sha256 {hashes[dest]} differs from manifest.json's "
                            f"{entry.get('sha256')} (the file changed or was damaged in transit)")
        elif entry.get("bytes") != files[dest].stat().st_size:
            problems.append(f"{dest}: {files[dest].stat().st_size} bytes, manifest.json says "
                            f"{entry.get('bytes')}")
    for dest in files:
        if dest not in seen and dest not in ("submission.json", "manifest.json"):
            problems.append(f"{dest}: not listed in manifest.json")


def validate_folder(folder: str | Path, suite: str = SUITE,
                    scales: tuple[str, ...] | None = LEADERBOARD_SCALES) -> Submission:
    """Check a submission folder written by :func:`write_submission` (what a leaderboard
    receives) with the same checks as ``submit``: the record's fields and scale, every task
    of ``suite`` in ``<scale>_scale/results.jsonl`` and the same scores in the record, each
    sample file's format, ``dataset_size`` recomputed, the sha256 and size of every file
    against ``manifest.json``, and no file the layout does not name. Raises one ValueError
    listing every problem."""
    folder = Path(folder)
    problems = _Problems()
    record = _json_object(folder / "submission.json", problems)
    manifest = _json_object(folder / "manifest.json", problems)
    if record is None or manifest is None:
        problems.check()
    check_fields(record.get("track"), record.get("method_name"), record.get("author"),
                 record.get("email"), record.get("writeup"), problems, RECORD_FIELDS)
    scale = record.get("scale")
    check_scale(scale, scales, "submission.json", problems)
    prefix = f"{scale}_scale"
    files = _folder_files(folder)
    allowed = {"submission.json", "manifest.json", f"{prefix}/results.jsonl",
               f"{prefix}/checkpoint.pt"}
    for dest in files:
        if dest not in allowed and not (dest.startswith(f"{prefix}/samples/")
                                        and dest.count("/") == 2):
            problems.append(f"{dest}: not part of a submission folder ({prefix}/results.jsonl, "
                            f"{prefix}/samples/FILE, {prefix}/checkpoint.pt)")
    run = None
    if f"{prefix}/results.jsonl" in files:
        run = check_results(files[f"{prefix}/results.jsonl"], problems, suite)
    else:
        problems.append(f"{prefix}/results.jsonl: missing")
    if run is not None:
        spec = _suite(suite)
        scores, _ = task_scores(run, spec)
        differ = [t.name for t in spec.scored if t.key in scores
                  and record.get(t.name) != scores[t.key]]
        if differ:
            problems.append(f"submission.json: scores of {', '.join(differ)} differ from "
                            "results.jsonl's main metrics")
    track = record.get("track") if record.get("track") in TRACKS else "byod"
    sample_paths = [p for d, p in files.items() if d.startswith(f"{prefix}/samples/")]
    if not sample_paths:
        problems.append(f"{prefix}/samples/: no sample files (uid .npy and/or byod .parquet)")
    samples = [s for p in sample_paths if (s := check_sample_file(p, track, problems)) is not None]
    dataset_size = sum(s.rows for s in samples)
    if len(samples) == len(sample_paths) and record.get("dataset_size") != dataset_size:
        problems.append(f"submission.json: dataset_size {record.get('dataset_size')!r} but the "
                        f"sample files hold {dataset_size} rows")
    hashes = {d: sha256_file(p) for d, p in files.items()}
    _check_manifest(manifest, files, hashes, problems)
    problems.check()
    uploads = [UploadFile(p, d, p.stat().st_size, hashes[d]) for d, p in files.items()
               if d not in ("submission.json", "manifest.json")]
    manifest = {**manifest, "dataset_size": dataset_size, "suite": suite,
                "samples": [{"path": s.path.name, "kind": s.kind, "rows": s.rows,
                             "sha256": s.sha256} for s in samples],
                "aggregates": {g: s.value for g, s in aggregate(run, _suite(suite)).groups.items()}}
    return Submission(record, manifest, uploads, folder, prefix)


# --- uploading to a leaderboard (`datacomp-sci leaderboard serve`) ---------------------------

ARCHIVE_TYPE = "application/x-tar"


def pack_folder(folder: str | Path, dest: str | Path) -> str:
    """Write ``folder`` as one tar with sorted names, no owners and zero times (the same
    folder gives the same bytes); returns its sha256."""
    import tarfile

    from datacomp_sci.core.util import atomic_open

    folder = Path(folder)
    with atomic_open(dest, "wb", fsync=False) as f, tarfile.open(fileobj=f, mode="w",
                                                                 format=tarfile.PAX_FORMAT) as tar:
        for name, path in _folder_files(folder).items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
            with open(path, "rb") as src:
                tar.addfile(info, src)
    return sha256_file(dest)


@dataclass(frozen=True)
class UploadResult:
    id: str
    url: str
    created: bool          # False: the board already held this exact submission
    attempts: int


def upload_submission(folder: str | Path, url: str, token: str, retries: int = 3,
                      timeout: float = 300.0, backoff: float = 1.0,
                      log=lambda msg: None) -> UploadResult:
    """Send a submission folder to a leaderboard as one streamed tar (``POST
    URL/api/submissions``, bearer token). A dropped connection or a 5xx answer is retried
    (the server stores a submission under the hash of its content, so a retry after a lost
    answer finds it instead of adding it twice). A rejected submission raises ValueError
    with every problem the server found."""
    import tempfile
    import time

    from datacomp_sci.core.deps import require

    httpx = require("httpx")
    folder = Path(folder)
    if not (folder / "submission.json").is_file():
        raise FileNotFoundError(f"{folder}: no submission.json (write the folder with "
                                "`datacomp-sci submit` first)")
    endpoint = url.rstrip("/") + "/api/submissions"
    with tempfile.TemporaryDirectory(prefix="datacomp-sci-upload-") as tmp:
        archive = Path(tmp) / "submission.tar"
        digest = pack_folder(folder, archive)
        size = archive.stat().st_size
        headers = {"Authorization": f"Bearer {token}", "Content-Type": ARCHIVE_TYPE,
                   "Content-Length": str(size), "X-Archive-Sha256": digest}
        last = ""
        for attempt in range(1, retries + 2):
            try:
                with open(archive, "rb") as body:
                    def chunks(f=body):
                        yield from iter(lambda: f.read(1 << 20), b"")
                    resp = httpx.post(endpoint, content=chunks(), headers=headers,
                                      timeout=timeout)
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                try:
                    doc = resp.json()
                except ValueError:
                    doc = {}
                if resp.status_code in (200, 201):
                    return UploadResult(doc["id"], doc["url"], resp.status_code == 201, attempt)
                problems = doc.get("problems") or [doc.get("error") or resp.reason_phrase]
                if resp.status_code < 500 and resp.status_code != 429:
                    lines = "\n".join(f"  - {p}" for p in problems)
                    raise ValueError(f"{endpoint} refused the submission (HTTP "
                                     f"{resp.status_code}):\n{lines}")
                last = f"HTTP {resp.status_code}: {'; '.join(map(str, problems))}"
            if attempt <= retries:
                log(f"upload attempt {attempt} failed ({last}); retrying")
                time.sleep(backoff * 2 ** (attempt - 1))
        raise ValueError(f"could not upload to {endpoint} after {retries + 1} attempts "
                         f"(last: {last})")


# --- writing ------------------------------------------------------------------------------

def write_submission(sub: Submission) -> list[Path]:
    """Write the folder: the hub layout, ``submission.json`` and ``manifest.json``."""
    out = sub.output
    if out.exists() and any(out.iterdir()) and not (out / "submission.json").exists():
        raise FileExistsError(f"{out} exists and is not a submission folder: choose an empty "
                              "or new --output")
    stale = out / sub.prefix
    keep = {f.dest for f in sub.files}
    if stale.is_dir():
        for p in sorted(stale.rglob("*")):
            if p.is_file() and p.relative_to(out).as_posix() not in keep:
                p.unlink()
    written = []
    for f in sub.files:
        link_or_copy(f.source, out / f.dest)
        written.append(out / f.dest)
    atomic_write_json(out / "submission.json", sub.record)
    atomic_write_json(out / "manifest.json", sub.manifest)
    return [*written, out / "submission.json", out / "manifest.json"]


def prepare_submission(req: SubmissionRequest, dry_run: bool = True, suite: str = SUITE,
                       scales: tuple[str, ...] | None = LEADERBOARD_SCALES) -> Submission:
    """Validate, write the submission folder, and (``dry_run=False``) explain the upload."""
    sub = validate_submission(req, suite=suite, scales=scales)
    write_submission(sub)
    if not dry_run:
        raise ValueError("uploading from datacomp-sci is not supported.\n"
                         + UPLOAD_STEPS.format(folder=sub.output, prefix=sub.prefix))
    return sub


def describe_submission(sub: Submission) -> str:
    """A one-screen summary of what would be uploaded."""
    r = sub.record
    lines = [f"submission  {sub.output}",
             f"method      {r['method_name']} ({r['track']} track, {r['scale']} scale, {r['model']})",
             f"authors     {r['author']} <{r['email']}> (the e-mail is not shown publicly)",
             f"dataset     {r['dataset_size']:,} samples (computed from "
             f"{len(sub.manifest['samples'])} sample file(s))"]
    aggs = sub.manifest["aggregates"]
    lines.append("scores      " + ", ".join(f"{k} {v:.3f}" for k, v in aggs.items() if v is not None))
    lines.append("model hub   (would upload)")
    for f in sub.files:
        lines.append(f"  {f.dest:<40} {f.bytes:>14,} B  sha256 {f.sha256[:16]}")
    lines.append("database    submission.json (would be posted): "
                 f"{len(dumps_stable(r, indent=None))} bytes, {len(r)} fields")
    return "\n".join(lines)
