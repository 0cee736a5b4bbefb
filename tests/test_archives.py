"""The archive layer: ids, safe member names, bounded gzip, bulk tars, unit listing."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
from loopback import http_server  # noqa: F401  (fixture)

from datacomp_sci.extract.archives import (
    ArchiveError,
    ArchiveLimits,
    Paper,
    arxiv_id_from_name,
    gunzip_bounded,
    iter_unit_papers,
    list_units,
    read_tar_bytes,
    safe_member_name,
)

TEX = b"\\documentclass{article}\\begin{document}hello\\end{document}\n"


def tar_bytes(files: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for ti in extra:
            tf.addfile(ti, io.BytesIO(b"x" * ti.size) if ti.isfile() else None)
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@pytest.mark.parametrize("name, expected", [
    ("2101.00001.gz", "2101.00001"),
    ("2101/2101.00001.gz", "2101.00001"),
    ("0704.0001.gz", "0704.0001"),
    ("hep-th9901001.gz", "hep-th/9901001"),
    ("9901/hep-th9901001.gz", "hep-th/9901001"),
    ("math.AG0101001.tar.gz", "math.AG/0101001"),
    ("cond-mat0001001.pdf", "cond-mat/0001001"),
    ("my-project", "my-project"),
])
def test_arxiv_ids_from_bulk_member_names(name, expected):
    assert arxiv_id_from_name(name) == expected


@pytest.mark.parametrize("name, expected", [
    ("a/b.tex", "a/b.tex"),
    ("./a//b.tex", "a/b.tex"),
    ("../x.tex", None),
    ("a/../../x", None),
    ("/etc/passwd", None),
    ("C:/x.tex", None),
    ("a\x00b", None),
    ("", None),
])
def test_unsafe_member_names_are_refused(name, expected):
    assert safe_member_name(name) == expected


def test_gunzip_bounded_stops_a_bomb_at_the_limit():
    bomb = gz(b"\0" * (8 << 20))
    assert len(bomb) < 20_000
    with pytest.raises(ArchiveError) as e:
        gunzip_bounded(bomb, 1 << 20)
    assert e.value.reason == "decompression_bomb"
    assert gunzip_bounded(bomb, 9 << 20) == b"\0" * (8 << 20)


def test_gunzip_bounded_reports_corrupt_and_truncated_streams():
    data = gz(b"abc" * 10_000)
    for broken in (data[: len(data) // 2], b"\x1f\x8b\x08\x00" + b"\xff" * 50):
        with pytest.raises(ArchiveError) as e:
            gunzip_bounded(broken, 1 << 20)
        assert e.value.reason == "corrupt_gzip"


def test_gunzip_bounded_reads_concatenated_members():
    assert gunzip_bounded(gz(b"ab") + gz(b"cd"), 100) == b"abcd"


def test_tar_members_with_unsafe_paths_links_and_oversize_are_counted_not_read():
    link = tarfile.TarInfo("l.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    bad = [tarfile.TarInfo(n) for n in ("../up.tex", "/abs.tex")]
    for ti in bad:
        ti.size = 3
    data = tar_bytes({"main.tex": TEX, "big.bin": b"y" * 5000}, bad + [link])
    paper = Paper("p")
    read_tar_bytes(data, paper, ArchiveLimits(max_member_bytes=4000))
    assert paper.files == {"main.tex": TEX}
    assert paper.member_skips == {"unsafe_path": 2, "link_or_special_member": 1,
                                  "member_too_large": 1}


def test_truncated_project_tar_keeps_the_members_read_before_the_cut():
    data = tar_bytes({"a.tex": TEX, "b.png": b"z" * 20_000})
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        cut = tf.getmember("b.png").offset_data + 100
    paper = Paper("p")
    read_tar_bytes(data[:cut], paper, ArchiveLimits())
    assert list(paper.files) == ["a.tex"]
    assert paper.member_skips == {"truncated_archive": 1}


@pytest.fixture
def arxiv_tree(tmp_path):
    """A bulk tar, per-paper files of each kind, and an unpacked project."""
    project = gz(tar_bytes({"main.tex": TEX, "fig.png": b"png"}))
    bulk = tar_bytes({
        "2101/2101.00001.gz": project,
        "2101/hep-th9901001.gz": gz(TEX),
        "2101/2101.00003.pdf": b"%PDF-1.4 x",
    })
    (tmp_path / "arXiv_src_2101_001.tar").write_bytes(bulk)
    papers = tmp_path / "papers"
    papers.mkdir()
    (papers / "2102.00001.tar.gz").write_bytes(project)
    (papers / "2102.00002.gz").write_bytes(gz(b"%PDF-1.5 y"))
    (papers / "2102.00003.gz").write_bytes(b"\x1f\x8b" + b"\0" * 30)
    (papers / "notes.txt").write_text("ignored")
    proj = tmp_path / "unpacked" / "2103.00001"
    (proj / "figs").mkdir(parents=True)
    (proj / "main.tex").write_bytes(TEX)
    (proj / "figs" / "a.png").write_bytes(b"png")
    return tmp_path


def test_list_units_walks_folders_in_sorted_order_and_classifies(arxiv_tree):
    units, problems = list_units([str(arxiv_tree), str(arxiv_tree / "missing.tar")], "arxiv")
    got = [(u.index, u.kind, u.name) for u in units]
    assert got == [
        (0, "bulk_tar", "arXiv_src_2101_001.tar"),
        (1, "paper_file", "2102.00001.tar.gz"),
        (2, "paper_file", "2102.00002.gz"),
        (3, "paper_file", "2102.00003.gz"),
        (4, "project_dir", "2103.00001"),
    ]
    assert problems == [{"input": str(arxiv_tree / "missing.tar"), "reason": "missing_input",
                         "detail": "no such file"}]


def test_papers_of_every_arxiv_format(arxiv_tree):
    units, _ = list_units([str(arxiv_tree)], "arxiv")
    papers = [p for u in units for p in iter_unit_papers(u, ArchiveLimits())]
    summary = [(p.paper_id, p.kind, p.skip_reason, sorted(p.files)) for p in papers]
    assert summary == [
        ("2101.00001", "latex_project", None, ["fig.png", "main.tex"]),
        ("hep-th/9901001", "single_tex", None, ["main.tex"]),
        ("2101.00003", "pdf", "pdf_only", []),
        ("2102.00001", "latex_project", None, ["fig.png", "main.tex"]),
        ("2102.00002", "pdf", "pdf_only", []),
        ("2102.00003", "other", "corrupt_gzip", []),
        ("2103.00001", "latex_project", None, ["figs/a.png", "main.tex"]),
    ]


def test_truncated_bulk_tar_yields_papers_before_the_cut_then_the_lost_one(tmp_path):
    bulk = tar_bytes({"2101/2101.00001.gz": gz(TEX), "2101/2101.00002.gz": gz(TEX * 500)})
    with tarfile.open(fileobj=io.BytesIO(bulk)) as tf:
        m = tf.getmember("2101/2101.00002.gz")
    (tmp_path / "arXiv_src_2101_001.tar").write_bytes(bulk[: m.offset_data + m.size // 2])
    (unit,), _ = list_units([str(tmp_path)], "arxiv")
    papers = list(iter_unit_papers(unit, ArchiveLimits()))
    assert [(p.paper_id, p.skip_reason) for p in papers] == [
        ("2101.00001", None), ("2101.00002", "archive_damage")]
    assert papers[1].detail.startswith("truncated (bytes 1024-end)")


def test_pmc_packages_and_unpacked_folders(tmp_path):
    pkg = gz(tar_bytes({"PMC1/PMC1.nxml": b"<article/>", "PMC1/f1.jpg": b"j"}))
    (tmp_path / "PMC1.tar.gz").write_bytes(pkg)
    (tmp_path / "PMC2").mkdir()
    (tmp_path / "PMC2" / "PMC2.nxml").write_bytes(b"<article/>")
    (tmp_path / "PMC3.tar.gz").write_bytes(b"not gzip")
    units, _ = list_units([str(tmp_path)], "pmc")
    assert [(u.kind, u.name) for u in units] == [
        ("pmc_package", "PMC1.tar.gz"), ("pmc_dir", "PMC2"), ("pmc_package", "PMC3.tar.gz")]
    papers = [p for u in units for p in iter_unit_papers(u, ArchiveLimits())]
    assert [(p.paper_id, sorted(p.files), p.skip_reason) for p in papers] == [
        ("PMC1", ["PMC1/PMC1.nxml", "PMC1/f1.jpg"], None),
        ("PMC2", ["PMC2/PMC2.nxml"], None),
        ("PMC3", [], "corrupt_tar"),
    ]


def test_remote_inputs_over_loopback_http(arxiv_tree, http_server):  # noqa: F811
    base = http_server(arxiv_tree)
    units, problems = list_units([f"{base}/arXiv_src_2101_001.tar",
                                  f"{base}/papers/2102.00001.tar.gz"], "arxiv")
    assert problems == []
    assert [(u.kind, u.url) for u in units] == [
        ("bulk_tar", f"{base}/arXiv_src_2101_001.tar"),
        ("paper_file", f"{base}/papers/2102.00001.tar.gz"),
    ]
    papers = [p for u in units for p in iter_unit_papers(u, ArchiveLimits())]
    assert [p.paper_id for p in papers] == ["2101.00001", "hep-th/9901001", "2101.00003",
                                           "2102.00001"]
    assert papers[0].files["main.tex"] == TEX


def test_s3_url_without_s3fs_says_what_to_install():
    import importlib.util

    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed: the URL would be opened for real")
    with pytest.raises(ValueError, match=r"pip install 'datacomp-sci\[s3\]'"):
        list_units(["s3://arxiv/src/arXiv_src_2012_001.tar"], "arxiv")
