"""Prepare a DataComp leaderboard submission, validated before anything is written.

DataComp's ``evaluate.py --submit`` uploads the results, the sample files and optionally
the checkpoint to a model-hub repository (``<scale>_scale/results.jsonl``,
``<scale>_scale/samples/<file>``, ``<scale>_scale/checkpoint.pt``) and posts one JSON
record to the leaderboard database. It checks little first and silently defaults
``dataset_size`` to the scale's samples seen. Here everything is checked first, every
problem is reported at once, ``dataset_size`` is computed from the sample files, and the
result is a folder laid out like the hub repository plus ``submission.json`` (DataComp's
record) and ``manifest.json`` (sizes, sha256, provenance). Uploading stays a manual step
(see :data:`UPLOAD_STEPS`): nothing here talks to the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from datacomp_sci.core.util import atomic_write_json, dumps_stable, link_or_copy, sha256_file
from datacomp_sci.reporting.aggregate import aggregate, load_results, load_suite, task_scores
from datacomp_sci.reporting.report import resolve_results

TRACKS = ("filtering", "byod")
LEADERBOARD_SCALES = ("small", "medium", "large", "xlarge")
SUITE = "datacomp38"
BYOD_COLUMNS = ("url", "text")

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


def _sample_paths(req: SubmissionRequest, info: dict,
                  info_path: Path) -> list[tuple[Path, str | None]]:
    """(path, source name or None) of the sample files: --samples, else info.json's."""
    if req.samples:
        return [(Path(p), None) for p in req.samples]
    return [(Path(f["path"]) if Path(f["path"]).is_absolute() else info_path.parent / f["path"],
             f.get("source"))
            for f in info.get("subset_files") or [] if isinstance(f, dict) and "path" in f]


def _dest_names(paths: list[tuple[Path, str | None]]) -> list[str]:
    """File names under samples/: the file's own name, or, where several share it (every
    reshard of a mix has a sample_ids.npy), SOURCE_NAME from info.json."""
    names = [p.name for p, _src in paths]
    return [f"{src}_{p.name}" if src and names.count(p.name) > 1 else p.name
            for p, src in paths]


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


def _check_request(req: SubmissionRequest, problems: list[str]) -> None:
    if req.track not in TRACKS:
        problems.append(f"track {req.track!r}: choose one of {', '.join(TRACKS)}")
    for name, value in (("method", req.method), ("authors", req.authors)):
        if not value or not value.strip():
            problems.append(f"--{name} is empty (it is shown on the leaderboard)")
    if "@" not in (req.contact or ""):
        problems.append(f"--contact {req.contact!r} is not an e-mail address")
    if req.writeup and not req.writeup.startswith(("http://", "https://")):
        problems.append(f"--writeup {req.writeup!r} is not an http(s) URL")
    if req.hf_repo and req.hf_repo.count("/") != 1:
        problems.append(f"--hf-repo {req.hf_repo!r} must be USER/NAME")


# --- validation --------------------------------------------------------------------------

def _results(req: SubmissionRequest, info_path: Path, problems: list[str]):
    try:
        path = resolve_results(req.results or info_path.parent)
        run = load_results(path)
    except (FileNotFoundError, ValueError) as e:
        problems.append(str(e))
        return None, None
    suite = load_suite(SUITE)
    scores, _ = task_scores(run, suite)
    missing = [t.name for t in suite.scored if t.key not in scores]
    if missing:
        problems.append(f"{path}: {len(missing)} of {len(suite.scored)} tasks of {SUITE} have no "
                        f"main metric ({', '.join(missing)}); run `datacomp-sci evaluate` to "
                        "finish them")
    if run.bad_lines:
        problems.append(f"{path}: {len(run.bad_lines)} unusable lines (first: {run.bad_lines[0]})")
    return path, run


def _record(req: SubmissionRequest, info: dict, dataset_size: int, run, timestamp: str) -> dict:
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
    suite = load_suite(SUITE)
    scores, _ = task_scores(run, suite)
    for t in suite.scored:
        if t.key in scores:
            record[t.name] = scores[t.key]
    return record


def validate_submission(req: SubmissionRequest) -> Submission:
    """Check everything and return the submission; raise one ValueError listing every problem."""
    problems = _Problems()
    _check_request(req, problems)
    info_path = find_train_info(Path(req.train_output))
    info = _load_info(info_path)
    scale = info.get("scale")
    if scale not in LEADERBOARD_SCALES:
        problems.append(f"{info_path}: scale {scale!r} is not a DataComp leaderboard scale "
                        f"({', '.join(LEADERBOARD_SCALES)})")
    results_path, run = _results(req, info_path, problems)
    paths = _sample_paths(req, info, info_path)
    if not paths:
        problems.append("no sample files: give --samples (uid .npy and/or byod .parquet); "
                        "info.json records none")
    checked = [(s, dest) for (p, _src), dest in zip(paths, _dest_names(paths), strict=True)
               if (s := check_sample_file(p, req.track, problems)) is not None]
    samples = [s for s, _dest in checked]
    names = [dest for _s, dest in checked]
    if len(set(names)) != len(names):
        problems.append(f"sample files share a file name ({', '.join(names)}): they would "
                        "overwrite each other under samples/; rename them")
    ckpt, ckpt_sha = _checkpoint(info, info_path, problems)
    problems.check()
    prefix = f"{scale}_scale"
    files = [UploadFile(results_path, f"{prefix}/results.jsonl", results_path.stat().st_size,
                        sha256_file(results_path))]
    files += [UploadFile(s.path, f"{prefix}/samples/{dest}", s.path.stat().st_size, s.sha256)
              for s, dest in checked]
    if req.include_checkpoint and ckpt is not None:
        files.append(UploadFile(ckpt, f"{prefix}/checkpoint.pt", ckpt.stat().st_size, ckpt_sha))
    dataset_size = sum(s.rows for s in samples)
    timestamp = req.timestamp or datetime.now(timezone.utc).strftime("%Y-%m-%d_%H:%M:%S")
    record = _record(req, info, dataset_size, run, timestamp)
    agg = aggregate(run, load_suite(SUITE))
    manifest = {
        "train_info": str(info_path), "checkpoint_sha256": ckpt_sha,
        "samples": [{"path": str(s.path), "kind": s.kind, "rows": s.rows, "sha256": s.sha256}
                    for s in samples],
        "dataset_size": dataset_size,
        "files": [{"dest": f.dest, "bytes": f.bytes, "sha256": f.sha256} for f in files],
        "aggregates": {g: s.value for g, s in agg.groups.items()},
        "versions": info.get("versions"), "git_revision": info.get("git_revision"),
    }
    return Submission(record, manifest, files, Path(req.output), prefix)


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


def prepare_submission(req: SubmissionRequest, dry_run: bool = True) -> Submission:
    """Validate, write the submission folder, and (``dry_run=False``) explain the upload."""
    sub = validate_submission(req)
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
