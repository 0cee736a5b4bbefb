"""Package the generated sample projects exactly as arXiv and PMC ship them.

``write_samples(root)`` writes::

    root/arxiv/arXiv_src_2101_001.tar      bulk tar: YYMM/<id>.gz members (+ a PDF-only paper)
    root/arxiv/papers/<id>.gz | .tar.gz    per-paper source files (gzipped tar or gzipped .tex)
    root/arxiv/unpacked/<id>/              unpacked LaTeX projects
    root/arxiv/hostile/...                 corrupt, truncated, unsafe and bomb archives
    root/pmc/PMC900000N.tar.gz             PMC OA packages (top folder PMC900000N/)
    root/pmc/hostile/...                   truncated and non-gzip packages
    root/expected.json                     the exact pairs a build must write, per source

Everything is deterministic: fixed tar metadata, gzip headers without name or time.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

from . import figures

_BROKEN = None


def _broken_images() -> set[bytes]:
    """Image bytes the image stage must skip (for computing the expected pool)."""
    global _BROKEN
    if _BROKEN is None:
        _BROKEN = {figures.png_bomb(), figures.not_an_image(), figures.hostile_eps(),
                   figures.looping_eps(), b""}
        _BROKEN |= {figures.truncated_jpeg(s) for s in range(100)}
    return _BROKEN


def _tar_bytes(files: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in sorted(files):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(files[name]), 0, 0o644
            ti.uname = ti.gname = "arxiv"
            tf.addfile(ti, io.BytesIO(files[name]))
        for ti in extra or []:
            tf.addfile(ti, io.BytesIO(b"x" * ti.size) if ti.isfile() else None)
    return buf.getvalue()


def _gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as f:
        f.write(data)
    return buf.getvalue()


def _file_name(paper_id: str) -> str:
    return paper_id.replace("/", "")


def _arxiv_package(p) -> bytes:
    if p.single_tex:
        (tex,) = p.files.values()
        return _gz(tex)
    return _gz(_tar_bytes(p.files))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _expected_pairs(files: dict[str, bytes], pairs: list[dict]) -> list[dict]:
    broken = _broken_images()
    return [dict(p) for p in pairs if files.get(p["figure_path"]) not in broken]


def write_arxiv(root: Path) -> dict:
    from .arxiv import arxiv_samples

    projects = arxiv_samples()
    expected: dict[str, dict] = {}
    bulk_members: dict[str, bytes] = {}
    for i, p in enumerate(projects):
        pkg = _arxiv_package(p)
        fname = _file_name(p.paper_id)
        placement = "papers" if p.single_tex else ("bulk", "papers", "unpacked")[i % 3]
        if placement == "bulk":
            yymm = fname.split(".")[0] if "." in fname else fname[-7:-3]
            bulk_members[f"{yymm}/{fname}.gz"] = pkg
        elif placement == "papers":
            ext = ".tar.gz" if (i % 2 and not p.single_tex) else ".gz"
            _write(root / "papers" / f"{fname}{ext}", pkg)
        else:
            for name, data in p.files.items():
                _write(root / "unpacked" / fname / name, data)
        expected[p.paper_id] = {
            "placement": placement,
            "pairs": _expected_pairs(p.files, p.expected),
            "extract_skips": dict(p.expected_skips),
            "description": p.description,
        }
    bulk_members["2101/2101.99999.pdf"] = b"%PDF-1.4\n% a PDF-only submission\n%%EOF\n"
    expected["2101.99999"] = {"placement": "bulk", "pairs": [], "paper_skip": "pdf_only",
                              "description": "PDF-only submission inside the bulk tar"}
    _write(root / "arXiv_src_2101_001.tar", _tar_bytes(bulk_members))
    _write_arxiv_hostile(root / "hostile", expected)
    return expected


def _write_arxiv_hostile(root: Path, expected: dict) -> None:
    ok_tex = (b"\\documentclass{article}\\begin{document}\n\\begin{figure}\\includegraphics{a.png}"
              b"\\caption{A safe figure beside unsafe members.}\\end{figure}\n\\end{document}\n")
    png = figures.plot_bytes(7, "png", size=(2.0, 1.5))
    # unsafe member names and links: the safe part is still read
    link = tarfile.TarInfo("evil_link.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    extra = [tarfile.TarInfo(n) for n in ("../escape.tex", "/abs/path.tex")]
    for ti in extra:
        ti.size = 1
    _write(root / "2102.00001.gz", _gz(_tar_bytes({"main.tex": ok_tex, "a.png": png}, extra + [link])))
    expected["2102.00001"] = {"placement": "hostile", "pairs": [{
        "figure_path": "a.png", "caption": "A safe figure beside unsafe members.", "label": None,
        "parent_caption": None, "mentions": []}],
        "member_skips": {"unsafe_path": 2, "link_or_special_member": 1},
        "description": "tar with ../ and absolute member paths and a symlink"}
    # a gzip that is not one
    _write(root / "2102.00002.gz", b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    expected["2102.00002"] = {"placement": "hostile", "pairs": [], "paper_skip": "corrupt_gzip",
                              "description": "corrupt gzip stream"}
    # a truncated bulk tar: the papers before the cut are kept, the unit reports the cut
    good = _gz(_tar_bytes({"main.tex": ok_tex.replace(b"unsafe members", b"a truncated bulk tar"),
                           "a.png": png}))
    bulk = _tar_bytes({"2103/2103.00001.gz": good, "2103/2103.00002.gz": good})
    with tarfile.open(fileobj=io.BytesIO(bulk)) as tf:
        second = tf.getmember("2103/2103.00002.gz")
    _write(root / "arXiv_src_2103_001.tar", bulk[: second.offset_data + second.size // 2])
    expected["2103.00001"] = {"placement": "hostile", "pairs": [{
        "figure_path": "a.png", "caption": "A safe figure beside a truncated bulk tar.",
        "label": None, "parent_caption": None, "mentions": []}],
        "description": "first paper of a truncated bulk tar"}
    # a gzip bomb: ~1 MB that inflates past the 1 GiB per-paper bound
    _write(root / "2102.00003.gz", _gz_zeros((1 << 30) + (1 << 20)))
    expected["2102.00003"] = {"placement": "hostile", "pairs": [],
                              "paper_skip": "decompression_bomb", "description": "gzip bomb"}


def _gz_zeros(n: int) -> bytes:
    buf = io.BytesIO()
    block = b"\0" * (1 << 20)
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        for _ in range(n // len(block)):
            f.write(block)
    return buf.getvalue()


def write_pmc(root: Path) -> dict:
    from .pmc import pmc_samples

    expected: dict[str, dict] = {}
    for a in pmc_samples():
        _write(root / f"{a.pmcid}.tar.gz", _gz(_tar_bytes(a.files)))
        expected[a.pmcid] = {
            "pairs": _expected_pairs(a.files, a.expected),
            "license": a.expected_license,
            "extract_skips": dict(a.expected_skips),
            "description": a.description,
        }
    ok = _gz(_tar_bytes({"PMC9099999/PMC9099999.nxml": b"<article/>"}))
    _write(root / "hostile" / "PMC9099998.tar.gz", ok[: len(ok) // 2])
    _write(root / "hostile" / "PMC9099997.tar.gz", b"not a gzip file at all\n" * 8)
    expected["PMC9099998"] = {"pairs": [], "paper_skip": "corrupt_gzip",
                              "description": "truncated package"}
    expected["PMC9099997"] = {"pairs": [], "paper_skip": "corrupt_tar",
                              "description": "not an archive"}
    return expected


def write_samples(root: str | Path) -> Path:
    """(Re)write the whole sample corpus under ``root``."""
    root = Path(root)
    for sub in ("arxiv", "pmc"):
        shutil.rmtree(root / sub, ignore_errors=True)
    expected = {"arxiv": write_arxiv(root / "arxiv"), "pmc": write_pmc(root / "pmc")}
    (root / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True,
                                                   ensure_ascii=False) + "\n")
    return root
