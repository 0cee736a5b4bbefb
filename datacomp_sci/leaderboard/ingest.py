"""From an uploaded archive (or a folder on disk) to a stored entry.

An archive is unpacked member by member, never with ``extractall``: only regular files
and folders, relative names without ``..``, no links, devices or FIFOs, at most
``Limits.max_files`` members and ``Limits.max_bytes`` in all; every problem is collected.
The folder is then checked with ``submit``'s own checks
(:func:`datacomp_sci.reporting.submission.validate_folder`) against the board's suite and
scales, its aggregates computed with :mod:`datacomp_sci.reporting.aggregate`, and the
entry stored (:meth:`.store.Store.add`).

Baseline rows can also come from a CSV (DataComp's published baselines, typed in by the
user): see :func:`read_baselines_csv`.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from datacomp_sci.core.util import dumps_stable
from datacomp_sci.leaderboard.store import Entry, Store, StoredFile, entry_id
from datacomp_sci.reporting.aggregate import (
    COLUMNS,
    RunResults,
    TaskResult,
    aggregate,
    load_results,
)
from datacomp_sci.reporting.submission import TRACKS, check_scale, validate_folder

MAX_PROBLEMS = 20


@dataclass(frozen=True)
class Limits:
    """Bounds on one upload: archive bytes, unpacked bytes and members."""

    max_bytes: int = 2 << 30
    max_files: int = 64
    max_name: int = 255


class Rejected(ValueError):
    """A submission that was not stored; ``problems`` lists every reason."""

    def __init__(self, problems: list[str], status: int = 422):
        super().__init__("; ".join(problems))
        self.problems = problems
        self.status = status


@dataclass(frozen=True)
class Accepted:
    entry: Entry
    created: bool      # False: the same submission was already on the board


# --- unpacking ---------------------------------------------------------------------------

def _member_name(name: str, limits: Limits) -> tuple[str, ...] | str:
    """The member's path parts, or why it is refused."""
    if len(name) > limits.max_name * 4 or "\\" in name or "\0" in name:
        return "not a plain relative name"
    if name.startswith("/"):
        return "absolute path"
    parts = tuple(p for p in PurePosixPath(name).parts if p != ".")
    if any(p == ".." for p in parts):
        return "path leaves the archive ('..')"
    if not parts or any(len(p) > limits.max_name for p in parts):
        return "empty or too long name"
    return parts


def unpack(archive: Path, dest: Path, limits: Limits) -> Path:
    """Unpack a .tar / .tar.gz safely into ``dest``; returns the submission folder (``dest``,
    or its one top-level folder when the archive wraps everything in one)."""
    problems: list[str] = []
    try:
        tar = tarfile.open(archive, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise Rejected([f"the upload is not a tar archive (.tar or .tar.gz): {e}"]) from None
    dest.mkdir(parents=True, exist_ok=True)
    count = total = 0
    try:
        with tar:
            while True:
                try:
                    m = tar.next()
                except (tarfile.TarError, OSError, EOFError) as e:
                    problems.append(f"the archive is damaged after {count} members: {e}")
                    break
                if m is None:
                    break
                count += 1
                if count > limits.max_files:
                    problems.append(f"more than {limits.max_files} members (the limit)")
                    break
                shown = m.name[:200]
                parts = _member_name(m.name, limits)
                if isinstance(parts, str):
                    problems.append(f"{shown!r}: {parts}")
                    continue
                if m.issym() or m.islnk():
                    problems.append(f"{shown!r}: links are not accepted")
                    continue
                if m.isdir():
                    continue
                if not m.isfile():
                    problems.append(f"{shown!r}: special files are not accepted")
                    continue
                total += m.size
                if total > limits.max_bytes:
                    problems.append(f"more than {limits.max_bytes:,} bytes unpacked (the limit)")
                    break
                if problems:
                    continue  # keep listing problems, write nothing more
                target = dest.joinpath(*parts)
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(m) as src, open(target, "xb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                except FileExistsError:
                    problems.append(f"{shown!r}: appears twice")
                except (NotADirectoryError, IsADirectoryError):
                    problems.append(f"{shown!r}: a file and a folder share this name")
                except (tarfile.TarError, OSError, EOFError) as e:
                    problems.append(f"{shown!r}: could not be read ({e})")
                if len(problems) >= MAX_PROBLEMS:
                    break
    except (tarfile.TarError, EOFError) as e:
        problems.append(f"the archive is damaged: {e}")
    if problems:
        raise Rejected(problems[:MAX_PROBLEMS])
    if count == 0:
        raise Rejected(["the archive is empty"])
    top = [p for p in dest.iterdir()]
    if not (dest / "submission.json").exists() and len(top) == 1 and top[0].is_dir():
        return top[0]
    return dest


# --- entries -----------------------------------------------------------------------------

def _date(timestamp: object) -> str | None:
    return str(timestamp)[:10] if timestamp else None


def _text(x: object, limit: int = 200) -> str | None:
    return None if x is None else str(x)[:limit]


def public_manifest(manifest: dict) -> dict:
    """What the pages show of a submitter's manifest.json: the server's own sample and
    file checks, and the provenance fields with their expected types (strings cut to a
    sane length); nothing else, and no path from the submitter's machine."""
    versions = manifest.get("versions")
    return {
        "suite": manifest.get("suite"), "dataset_size": manifest.get("dataset_size"),
        "aggregates": manifest.get("aggregates"),
        "samples": [{**s, "path": Path(str(s.get("path", ""))).name}
                    for s in manifest.get("samples") or [] if isinstance(s, dict)],
        "checkpoint_sha256": _text(manifest.get("checkpoint_sha256"), 64),
        "git_revision": _text(manifest.get("git_revision"), 64),
        "versions": {_text(k, 80): _text(v, 80) for k, v in list(versions.items())[:50]}
        if isinstance(versions, dict) else None,
    }


def check_folder(store: Store, folder: Path, source: str, submitter: str | None = None,
                 kind: str = "submission") -> tuple[Entry, list[tuple[Path, StoredFile]]]:
    """Validate a submission folder against the board; the entry and files to store."""
    settings = store.settings
    try:
        sub = validate_folder(folder, suite=settings.suite, scales=settings.scales)
    except ValueError as e:
        lines = str(e).splitlines()
        raise Rejected([ln.strip()[2:] if ln.strip().startswith("- ") else ln.strip()
                        for ln in lines[1:]] or lines) from None
    suite = store.suite
    run = load_results(folder / sub.prefix / "results.jsonl", name=sub.record["method_name"])
    agg = aggregate(run, suite)
    files = [(f.source, StoredFile(f.dest, f.bytes, f.sha256)) for f in sub.files]
    rec = sub.record
    manifest = public_manifest(sub.manifest)
    entry = Entry(
        id=entry_id(rec, [(f.dest, f.sha256) for _, f in files]), kind=kind, source=source,
        scale=str(rec["scale"]), track=str(rec["track"]), method=str(rec["method_name"]).strip(),
        authors=str(rec["author"]).strip(), groups={g: s.value for g, s in agg.groups.items()},
        tasks=dict(agg.scores), writeup=rec.get("writeup"), date=_date(rec.get("timestamp")),
        dataset_size=int(sub.manifest["dataset_size"]), model=rec.get("model"),
        record=rec, manifest=manifest, submitter=submitter, files=[f for _, f in files])
    return entry, files


def add_folder(store: Store, folder: str | Path, source: str = "import",
               submitter: str | None = None, kind: str = "submission") -> Accepted:
    """``leaderboard import FOLDER``: validate a submission folder on disk and store it
    (files copied, so later edits of the folder cannot change the board)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such submission folder")
    entry, files = check_folder(store, folder, source, submitter, kind)
    created = store.add(entry, files, link=False)
    return Accepted(store.get(entry.id, include_hidden=True), created)


def receive_archive(store: Store, archive: Path, submitter: str, limits: Limits) -> Accepted:
    """An uploaded archive: unpack within ``limits``, validate, store; the scratch folder
    is removed whatever happens."""
    work = store.incoming / uuid.uuid4().hex
    try:
        folder = unpack(archive, work, limits)
        entry, files = check_folder(store, folder, "upload", submitter)
        created = store.add(entry, files, link=True)
        return Accepted(store.get(entry.id, include_hidden=True), created)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- baselines from a CSV ------------------------------------------------------------------

_ALIASES = {"method": ("method", "name", "method_name", "training data"),
            "authors": ("authors", "author"), "dataset_size": ("dataset_size", "dataset size"),
            "writeup": ("writeup", "write-up", "link", "paper"), "date": ("date",),
            "scale": ("scale",), "track": ("track",), "model": ("model",)}


def read_baselines_csv(path: str | Path, store: Store) -> list[Entry]:
    """Baseline rows from a CSV the user supplies (e.g. DataComp's published baselines).

    Columns (case-insensitive): ``scale``, ``method`` (or ``name``), optional ``track``
    (default filtering), ``authors``, ``dataset_size``, ``date``, ``writeup``, ``model``;
    then either every scored task of the board's suite by display name (``ImageNet 1k``,
    ...; the aggregates are then computed here) or the aggregate columns ``ImageNet``,
    ``ImageNet dist. shifts``, ``VTAB``, ``Retrieval``, ``Average`` as published.
    """
    path = Path(path)
    suite = store.suite
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: not a readable CSV ({e})") from None
    problems: list[str] = []
    entries = []
    for i, raw in enumerate(rows, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()
               if isinstance(v, str)}

        def field(name: str, row=row) -> str:
            return next((row[a] for a in _ALIASES[name] if row.get(a)), "")

        def number(text: str, what: str, line=i) -> float | None:
            if not text:
                return None
            try:
                value = float(text.replace(",", ""))
            except ValueError:
                value = float("nan")
            if value != value or value in (float("inf"), float("-inf")):
                problems.append(f"{path}:{line}: {what} {text!r} is not a number")
                return None
            return value

        method, scale, track = field("method"), field("scale"), field("track") or "filtering"
        if not method or not scale:
            problems.append(f"{path}:{i}: needs 'scale' and 'method'")
            continue
        check_scale(scale, store.settings.scales, f"{path}:{i}", problems)
        if track not in TRACKS:
            problems.append(f"{path}:{i}: track {track!r}: choose one of {', '.join(TRACKS)}")
        tasks = {t.key: v for t in suite.scored
                 if (v := number(row.get(t.name.lower(), ""), t.name)) is not None}
        if len(tasks) == len(suite.scored):
            run = RunResults(method, path, [TaskResult(k, k, v, {"main_metric": v})
                                            for k, v in tasks.items()])
            groups = {g: s.value for g, s in aggregate(run, suite).groups.items()}
        else:
            groups = {g: number(row.get(g.lower(), ""), g) for g in COLUMNS}
            tasks = {}
        if all(v is None for v in groups.values()):
            problems.append(f"{path}:{i}: no scores (give the aggregate columns "
                            f"{', '.join(COLUMNS)} or every task of {suite.name})")
            continue
        size = number(field("dataset_size"), "dataset_size")
        writeup = field("writeup")
        if writeup and not writeup.startswith(("http://", "https://")):
            problems.append(f"{path}:{i}: writeup {writeup!r} is not an http(s) URL")
        record = {"method": method, "scale": scale, "row": raw}
        eid = "csv-" + hashlib.sha256(dumps_stable(record, indent=None).encode()).hexdigest()[:12]
        entries.append(Entry(
            id=eid, kind="baseline", source="csv", scale=scale,
            track=track, method=method, authors=field("authors"),
            groups=groups, tasks=tasks, writeup=writeup or None,
            date=field("date") or None, dataset_size=None if size is None else int(size),
            model=field("model") or None, record={"csv": path.name, "line": i},
            manifest={"note": f"baseline imported from {path.name}, line {i}"
                              + ("" if tasks else "; aggregates as published")}))
    if problems:
        raise ValueError(f"{path}: {len(problems)} problem(s):\n"
                         + "\n".join(f"  - {p}" for p in problems[:MAX_PROBLEMS]))
    if not entries:
        raise ValueError(f"{path}: no rows")
    return entries


def import_paths(store: Store, paths: list[str | Path], baseline: bool = False) -> list[Accepted]:
    """``leaderboard import``: submission folders (``baseline``: shown as baseline rows) and
    baseline CSVs. Everything is checked before anything is stored."""
    plans: list[tuple[Entry, list[tuple[Path, StoredFile]]]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            try:
                plans.append(check_folder(store, path, "import",
                                          kind="baseline" if baseline else "submission"))
            except Rejected as e:
                raise ValueError(f"{path}: not accepted ({len(e.problems)} problem(s)):\n"
                                 + "\n".join(f"  - {p}" for p in e.problems)) from None
        elif path.suffix.lower() == ".csv" and path.is_file():
            plans += [(e, []) for e in read_baselines_csv(path, store)]
        else:
            raise FileNotFoundError(f"{path}: not a submission folder or a baselines .csv")
    out = []
    for entry, files in plans:
        created = store.add(entry, files, link=False)
        out.append(Accepted(store.get(entry.id, include_hidden=True), created))
    return out
