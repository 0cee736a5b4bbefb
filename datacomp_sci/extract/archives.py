"""Reading paper packages safely: units of work and the papers inside them.

Inputs are treated as hostile. Nothing from an archive is ever written to disk: members
are read into memory, bounded in size (``ArchiveLimits``), with unsafe names (absolute,
``..``, NUL), links and devices refused and counted. gzip streams are inflated with a
hard output bound, so a gzip bomb costs at most ``max_paper_bytes`` of memory.

A *unit* is one input archive (an arXiv bulk tar, a per-paper ``.gz``/``.tar.gz``, a PMC
package) or one unpacked folder: the unit of parallel and distributed work. Units are
listed in a deterministic order: inputs in the order given, folders sorted.

arXiv formats (as the bulk-data bucket ships them): ``arXiv_src_YYMM_NNN.tar`` holds one
member per paper, ``YYMM/<id>.gz`` (gzipped tar of a LaTeX project, or a single gzipped
``.tex``) or ``YYMM/<id>.pdf`` (PDF only: skipped, counted). New-style ids ``2101.00001``,
old-style ``hep-th9901001`` (the ``/`` of ``hep-th/9901001`` dropped in file names).
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import fsspec

from datacomp_sci.extract.tarwalk import Damage, Member, Source, StreamError, walk

ARXIV_NEW_ID = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$")
ARXIV_OLD_ID = re.compile(r"^([a-z][a-z\-]*(?:\.[A-Za-z]{2})?)(\d{7})(v\d+)?$")
_PAPER_SUFFIXES = (".tar.gz", ".tgz", ".gz", ".tar", ".pdf")
_TEX_SUFFIXES = (".tex", ".ltx", ".latex")


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what one paper may cost, whatever the archive claims."""

    max_paper_bytes: int = 1 << 30  # decompressed size of one paper's package
    max_member_bytes: int = 256 << 20  # one file inside it
    max_members: int = 20_000  # files inside one package (the rest: too_many_members)
    max_archive_bytes: int = 16 << 30  # bytes read (inflated) from one bulk tar


@dataclass(frozen=True)
class Unit:
    """One input archive or folder: the unit of work."""

    index: int
    url: str  # local path or fsspec URL
    kind: str  # "bulk_tar" | "paper_file" | "project_dir" | "pmc_package" | "pmc_dir"
    size: int  # bytes (0 for folders)

    @property
    def name(self) -> str:
        return posixpath.basename(self.url.rstrip("/"))


@dataclass
class Paper:
    """One paper read from a unit: its files in memory, or why it could not be read."""

    paper_id: str
    files: dict[str, bytes] = field(default_factory=dict)
    kind: str = "latex_project"  # latex_project | single_tex | pdf | pmc | other
    skip_reason: str | None = None
    detail: str | None = None
    # member-level problems (unsafe path, link, oversize): reason -> count, plus items
    member_skips: dict[str, int] = field(default_factory=dict)
    member_skip_items: list[dict] = field(default_factory=list)

    def skip_member(self, reason: str, name: str, detail: str | None = None) -> None:
        self.member_skips[reason] = self.member_skips.get(reason, 0) + 1
        self.member_skip_items.append({"item": name, "reason": reason, "detail": detail})


class ArchiveError(Exception):
    """A whole unit could not be read (missing, not an archive, truncated)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --- ids --------------------------------------------------------------------------------

def arxiv_id_from_name(name: str) -> str:
    """``2101.00001.gz`` -> ``2101.00001``; ``hep-th9901001.gz`` -> ``hep-th/9901001``."""
    base = posixpath.basename(name.rstrip("/"))
    for suf in _PAPER_SUFFIXES:
        if base.lower().endswith(suf):
            base = base[: -len(suf)]
            break
    m = ARXIV_OLD_ID.match(base)
    if m and not ARXIV_NEW_ID.match(base):
        return f"{m.group(1)}/{m.group(2)}{m.group(3) or ''}"
    return base


def pmc_name_from(name: str) -> str:
    base = posixpath.basename(name.rstrip("/"))
    for suf in (".tar.gz", ".tgz", ".tar"):
        if base.lower().endswith(suf):
            return base[: -len(suf)]
    return base


# --- safe member handling ---------------------------------------------------------------

def safe_member_name(name: str) -> str | None:
    """Normalised POSIX path of an archive member, or None when it must be refused."""
    if not name or "\x00" in name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return None
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Inflate a gzip (or zlib) stream, refusing to produce more than ``limit`` bytes.

    Handles concatenated gzip members. Raises ArchiveError("decompression_bomb") past the
    limit and ArchiveError("corrupt_gzip") on a broken or truncated stream.
    """
    out = bytearray()
    buf = data
    while buf:
        d = zlib.decompressobj(wbits=47)  # auto-detect gzip/zlib header
        try:
            while True:
                chunk = d.decompress(buf, limit + 1 - len(out))
                out += chunk
                if len(out) > limit:
                    raise ArchiveError("decompression_bomb", f"inflates past {limit} bytes")
                if d.eof:
                    break
                if not d.unconsumed_tail:
                    raise ArchiveError("corrupt_gzip", "truncated gzip stream")
                buf = d.unconsumed_tail
        except zlib.error as e:
            raise ArchiveError("corrupt_gzip", str(e)) from e
        buf = d.unused_data
        if buf and not buf.startswith(b"\x1f\x8b"):
            break  # trailing garbage after the last member: ignored, as gzip does
    return bytes(out)


def _is_tar(data: bytes) -> bool:
    return len(data) >= 512 and data[257:262] == b"ustar" or _legacy_tar(data)


def _legacy_tar(data: bytes) -> bool:
    if len(data) < 512:
        return False
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            return tf.next() is not None
    except Exception:  # hostile header fields make tarfile raise almost anything
        return False


def read_tar_bytes(data: bytes, paper: Paper, limits: ArchiveLimits, prefix_strip: bool = False) -> None:
    """Read every regular member of an in-memory tar into ``paper.files`` (bounded).

    Damaged headers are passed over (:mod:`~datacomp_sci.extract.tarwalk`): the members
    before and after them are read, and each damaged range is a counted member skip.
    Raises ArchiveError("corrupt_tar") when not one member header could be read.
    """
    total = 0
    seen = 0

    def want(m: Member) -> bool:
        return m.size <= limits.max_member_bytes and total + m.size <= limits.max_paper_bytes

    for ev in walk(Source(data=data), want, skip_budget=limits.max_paper_bytes):
        if isinstance(ev, Damage):
            if seen == 0 and ev.offset == 0 and ev.end is None:
                raise ArchiveError("corrupt_tar", f"no readable tar header ({ev.reason})")
            reason = "truncated_archive" if ev.reason in ("truncated", "unreadable_stream") \
                else "archive_damage"
            paper.skip_member(reason, ev.name or f"<bytes {ev.offset}-{_end(ev)}>",
                              f"{ev.reason}: {ev.detail}")
            continue
        seen += 1
        if ev.kind == "dir":
            continue
        if len(paper.files) >= limits.max_members:
            paper.skip_member("too_many_members", ev.name,
                              f"limit {limits.max_members}: this member and the rest not read")
            break
        name = safe_member_name(ev.name)
        if name is None:
            paper.skip_member("unsafe_path", ev.name)
            continue
        if ev.kind != "file":
            paper.skip_member("link_or_special_member", ev.name)
            continue
        if ev.data is None:
            paper.skip_member("member_too_large", name, f"{ev.size} bytes")
            continue
        total += len(ev.data)
        paper.files[name] = ev.data


def _end(d: Damage) -> str:
    return "end" if d.end is None else str(d.end)


# --- arXiv ----------------------------------------------------------------------------------

def arxiv_paper_from_bytes(paper_id: str, raw: bytes, limits: ArchiveLimits) -> Paper:
    """A per-paper arXiv source file: gzipped tar, gzipped single .tex, PDF, or plain tar."""
    paper = Paper(paper_id)
    if raw.startswith(b"%PDF"):
        paper.kind, paper.skip_reason = "pdf", "pdf_only"
        return paper
    try:
        data = gunzip_bounded(raw, limits.max_paper_bytes) if raw[:2] == b"\x1f\x8b" else raw
    except ArchiveError as e:
        paper.kind, paper.skip_reason, paper.detail = "other", e.reason, e.detail
        return paper
    if data.startswith(b"%PDF"):
        paper.kind, paper.skip_reason = "pdf", "pdf_only"
    elif _is_tar(data):
        try:
            read_tar_bytes(data, paper, limits)
        except ArchiveError as e:
            paper.kind, paper.skip_reason, paper.detail = "other", e.reason, e.detail
    elif data.lstrip()[:4] in (b"%!PS",):
        paper.kind, paper.skip_reason = "other", "postscript_only"
    elif not data.strip():
        paper.kind, paper.skip_reason = "other", "empty_package"
    else:
        paper.kind = "single_tex"
        paper.files["main.tex"] = data
    return paper


def storage_options(url: str) -> dict:
    """fsspec options for a URL: arXiv's S3 bucket is requester-pays (you pay the transfer)."""
    return {"requester_pays": True} if url.startswith("s3://") else {}


def _open(url: str):
    return fsspec.open(url, "rb", **storage_options(url)).open()


def _read_all(url: str) -> bytes:
    with fsspec.open(url, "rb", **storage_options(url)) as f:
        return f.read()


def _project_dir_files(root: str, paper: Paper, limits: ArchiveLimits) -> None:
    fs, base = fsspec.core.url_to_fs(root, **storage_options(root))
    total = 0
    for path in sorted(fs.find(base)):
        rel = posixpath.relpath(path, base)
        name = safe_member_name(rel)
        if name is None:
            paper.skip_member("unsafe_path", rel)
            continue
        if not _is_regular(fs, path):
            paper.skip_member("link_or_special_member", rel)
            continue
        size = fs.size(path)
        if size > limits.max_member_bytes or total + size > limits.max_paper_bytes:
            paper.skip_member("member_too_large", name, f"{size} bytes")
            continue
        if len(paper.files) >= limits.max_members:
            paper.skip_member("too_many_members", name, f"limit {limits.max_members}")
            break
        with fs.open(path, "rb") as f:
            paper.files[name] = f.read()
        total += size


def _is_regular(fs, path: str) -> bool:
    if getattr(fs, "protocol", None) in ("file", ("file", "local")) or fs.__class__.__name__ == "LocalFileSystem":
        return os.path.isfile(path) and not os.path.islink(path)
    return True


# a member of an arXiv bulk tar: [YYMM/]<new- or old-style id>.gz|.pdf
BULK_MEMBER = re.compile(r"^(?:\./)?(?:\d{4}/)?(?:\d{4}\.\d{4,5}(?:v\d+)?|"
                         r"[a-z][a-z\-]*(?:\.[A-Za-z]{2})?\d{7}(?:v\d+)?)\.(?:gz|pdf)$")


def _bulk_header(ti: tarfile.TarInfo) -> bool:
    """A header the bulk-tar walk may resume at: a regular file named like a bulk member."""
    return ti.type in (tarfile.REGTYPE, tarfile.AREGTYPE) and BULK_MEMBER.match(ti.name) is not None


def _damaged_paper(d: Damage) -> Paper:
    where = f"bytes {d.offset}-{_end(d)}"
    paper_id = arxiv_id_from_name(d.name) if d.name else f"<damaged header at byte {d.offset}>"
    rest = "; reading resumed at the next valid member header" if d.end is not None \
        else "; the rest of the archive could not be read"
    return Paper(paper_id, kind="other", skip_reason="archive_damage",
                 detail=f"{d.reason} ({where}): {d.detail}{rest}")


def iter_bulk_tar(unit: Unit, limits: ArchiveLimits) -> Iterator[Paper]:
    """Stream an arXiv bulk tar (plain or gzip-compressed): one paper per member.

    Over HTTP/S3 it reads sequentially; a local or ranged file is seeked past members it
    skips. Each damaged region is one paper with skip reason ``archive_damage`` (its
    byte range in the detail), and reading resumes at the next valid member header.
    """
    try:
        fobj = _open(unit.url)
    except Exception as e:
        raise ArchiveError("unreadable_input", f"{type(e).__name__}: {e}") from e
    with fobj:
        try:
            src = Source(fobj=fobj, max_bytes=limits.max_archive_bytes)
        except StreamError as e:
            raise ArchiveError(e.reason, e.detail) from e
        events = walk(src, want=lambda m: m.size <= limits.max_paper_bytes, accept=_bulk_header,
                      scan_member_data=True, skip_budget=limits.max_paper_bytes)
        for ev in events:
            if isinstance(ev, Damage):
                yield _damaged_paper(ev)
                continue
            if ev.kind == "dir" and not BULK_MEMBER.match(ev.name):
                continue  # a YYMM/ folder entry; a "paper" typed as a folder is reported
            paper_id = arxiv_id_from_name(ev.name)
            if safe_member_name(ev.name) is None or ev.kind != "file":
                yield Paper(paper_id, kind="other", skip_reason="unsafe_member",
                            detail=f"{ev.name} ({ev.kind})")
                continue
            if ev.data is None:
                yield Paper(paper_id, kind="other", skip_reason="member_too_large",
                            detail=f"{ev.size} bytes")
                continue
            if ev.name.lower().endswith(".pdf"):
                yield Paper(paper_id, kind="pdf", skip_reason="pdf_only")
                continue
            yield arxiv_paper_from_bytes(paper_id, ev.data, limits)


def iter_unit_papers(unit: Unit, limits: ArchiveLimits) -> Iterator[Paper]:
    """Every paper of a unit, in archive order. Raises ArchiveError for an unreadable unit."""
    if unit.kind == "bulk_tar":
        yield from iter_bulk_tar(unit, limits)
    elif unit.kind == "paper_file":
        try:
            raw = _read_all(unit.url)
        except (OSError, ValueError) as e:
            raise ArchiveError("unreadable_input", str(e)) from e
        yield arxiv_paper_from_bytes(arxiv_id_from_name(unit.url), raw, limits)
    elif unit.kind == "project_dir":
        paper = Paper(arxiv_id_from_name(unit.url))
        _project_dir_files(unit.url, paper, limits)
        yield paper
    elif unit.kind == "pmc_package":
        paper = Paper(pmc_name_from(unit.url), kind="pmc")
        try:
            raw = _read_all(unit.url)
            data = gunzip_bounded(raw, limits.max_paper_bytes) if raw[:2] == b"\x1f\x8b" else raw
            read_tar_bytes(data, paper, limits)
        except ArchiveError as e:
            paper.skip_reason, paper.detail = e.reason, e.detail
        except (OSError, ValueError) as e:
            raise ArchiveError("unreadable_input", str(e)) from e
        yield paper
    elif unit.kind == "pmc_dir":
        paper = Paper(pmc_name_from(unit.url), kind="pmc")
        _project_dir_files(unit.url, paper, limits)
        # keep the package's top folder in member paths, as in a PMC .tar.gz
        paper.files = {f"{paper.paper_id}/{k}": v for k, v in paper.files.items()}
        yield paper
    else:  # pragma: no cover - kinds are produced by list_units only
        raise ValueError(f"unknown unit kind {unit.kind}")


# --- listing inputs into units --------------------------------------------------------------

def _is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def _with_proto(proto: str, path: str) -> str:
    """fsspec returns s3 paths without their protocol and http paths with it."""
    return path if not proto or "://" in path else proto + path


def _classify_file(path: str, source: str) -> str | None:
    low = path.lower()
    if source == "pmc":
        return "pmc_package" if low.endswith((".tar.gz", ".tgz", ".tar")) else None
    if low.endswith(".tar") or re.match(r"arxiv_src_\d{4}_\d+\.tar\.gz$", posixpath.basename(low)):
        return "bulk_tar" if _looks_bulk(path) else "paper_file"
    if low.endswith(_PAPER_SUFFIXES):
        return "paper_file"
    return None


def _looks_bulk(path: str) -> bool:
    """A plain .tar is an arXiv bulk tar when its first file member is a .gz or .pdf."""
    if re.match(r"arXiv_src_\d{4}_\d+\.tar(\.gz)?$", posixpath.basename(path)):
        return True
    try:
        with fsspec.open(path, "rb", **storage_options(path)) as f, \
                tarfile.open(fileobj=f, mode="r|") as tf:
            for member in tf:
                if member.isfile():
                    return member.name.lower().endswith((".gz", ".pdf"))
    except Exception:  # any damage (e.g. OverflowError from a huge size field)
        return True  # let the unit report the corrupt archive
    return False


def _dir_is_package(fs, path: str, source: str) -> bool:
    names = [posixpath.basename(p) for p in fs.ls(path, detail=False)]
    if source == "pmc":
        return any(n.lower().endswith(".nxml") for n in names)
    return any(n.lower().endswith(_TEX_SUFFIXES) for n in names)


def _walk(fs, path: str, source: str, out: list[tuple[str, str, int]], proto: str) -> None:
    if _dir_is_package(fs, path, source):
        out.append((_with_proto(proto, path), "pmc_dir" if source == "pmc" else "project_dir", 0))
        return
    entries = sorted(fs.ls(path, detail=True), key=lambda e: e["name"])
    for e in entries:
        name = e["name"]
        if posixpath.basename(name).startswith("."):
            continue
        if e["type"] == "directory":
            _walk(fs, name, source, out, proto)
        else:
            kind = _classify_file(name, source)
            if kind:
                out.append((_with_proto(proto, name), kind, int(e.get("size") or 0)))


def list_units(inputs: list[str], source: str) -> tuple[list[Unit], list[dict]]:
    """Expand INPUT arguments into units. Returns (units, problems with the inputs).

    A folder is walked in sorted order: a folder holding ``.tex`` files (arXiv) or an
    ``.nxml`` (PMC) is one unpacked package; archives inside it are units. Remote
    inputs may be fsspec URLs with globs (``s3://arxiv/src/arXiv_src_2101_*.tar``).
    """
    if source not in ("arxiv", "pmc"):
        raise ValueError(f"source must be 'arxiv' or 'pmc', not {source!r}")
    found: list[tuple[str, str, int]] = []
    problems: list[dict] = []
    for raw in inputs:
        try:
            fs, path = fsspec.core.url_to_fs(raw, **storage_options(raw))
        except ImportError as e:  # e.g. s3:// without s3fs
            extra = " (pip install 'datacomp-sci[s3]')" if raw.startswith("s3://") else ""
            raise ValueError(f"{raw}: no filesystem for this URL{extra}: {e}") from e
        proto = raw.split("://", 1)[0] + "://" if _is_remote(raw) else ""
        paths = sorted(fs.glob(path)) if any(c in path for c in "*?[") else [path]
        if not paths:
            problems.append({"input": raw, "reason": "no_match", "detail": "glob matched nothing"})
        for p in paths:
            try:
                is_dir = fs.isdir(p)
            except OSError as e:
                problems.append({"input": raw, "reason": "unreadable_input", "detail": str(e)})
                continue
            if is_dir:
                _walk(fs, p, source, found, proto)
                continue
            if not fs.exists(p):
                problems.append({"input": raw, "reason": "missing_input", "detail": "no such file"})
                continue
            kind = _classify_file(p, source) or ("paper_file" if source == "arxiv" else "pmc_package")
            try:
                size = int(fs.size(p) or 0)
            except (OSError, TypeError):
                size = 0
            found.append((_with_proto(proto, p), kind, size))
    units = [Unit(i, url, kind, size) for i, (url, kind, size) in enumerate(found)]
    return units, problems

