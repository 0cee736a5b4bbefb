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


# --- damaged tars: one bad header costs one member -------------------------------------

def _member_offsets(tar: bytes) -> dict[str, int]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        return {m.name: m.offset for m in tf.getmembers()}


def _patch(tar: bytes, name: str, at: int, value: bytes, checksum: bool = True) -> bytes:
    """Overwrite header bytes of member ``name``; recompute its checksum unless told not to."""
    out = bytearray(tar)
    off = _member_offsets(tar)[name]
    out[off + at:off + at + len(value)] = value
    if checksum:
        block = out[off:off + 512]
        block[148:156] = b" " * 8
        out[off + 148:off + 156] = b"%06o\0 " % sum(block)
    return bytes(out)


BULK3 = {f"2101/2101.0000{i}.gz": gz(TEX + b"%" + __import__("random").Random(i).randbytes(3000)
                                    .hex().encode()) for i in (1, 2, 3)}


def _bulk_papers(tmp_path, data: bytes, name: str = "arXiv_src_2101_001.tar",
                 limits: ArchiveLimits = ArchiveLimits()) -> list[tuple[str, str | None]]:
    (tmp_path / name).write_bytes(data)
    (unit,), _ = list_units([str(tmp_path / name)], "arxiv")
    return [(p.paper_id, p.skip_reason) for p in iter_unit_papers(unit, limits)]


HUGE_BASE256 = b"\x80\0\0\0\x7f" + b"\xff" * 7


@pytest.mark.parametrize("field_at, value, checksum", [
    (148, b"0000000\0", False),  # checksum field broken
    (0, b"2101/2101.0000X.gz", False),  # name changed, checksum no longer matches
    (124, HUGE_BASE256, True),  # a base-256 size no C integer holds (OverflowError before)
    (124, b"00000000001\0", True),  # size too small for its data
    (124, b"00000100000\0", True),  # size too large: lands inside a later member
    (156, b"6", True),  # re-typed as a FIFO, data still there
    (156, b"3", True),  # re-typed as a character device
    (156, b"5", True),  # re-typed as a directory
    (156, b"2", True),  # re-typed as a symbolic link
    (156, b"L", True),  # re-typed as a GNU long name: its data would rename the next member
    (156, b"x", True),  # re-typed as a pax header
    (156, b"S", True),  # re-typed as a GNU sparse file
])
def test_one_damaged_bulk_header_costs_only_that_paper(tmp_path, field_at, value, checksum):
    bulk = _patch(tar_bytes(BULK3), "2101/2101.00002.gz", field_at, value, checksum)
    got = _bulk_papers(tmp_path, bulk)
    assert got[0] == ("2101.00001", None) and got[-1] == ("2101.00003", None)
    assert len(got) == 3 and got[1][1] in ("archive_damage", "unsafe_member", "corrupt_gzip")


def test_size_field_landing_exactly_on_a_later_header_is_caught_by_the_member_pattern(tmp_path):
    files = {f"2101/2101.0000{i}.gz": gz(TEX) for i in range(1, 5)}
    tar = tar_bytes(files)
    offs = _member_offsets(tar)
    span = offs["2101/2101.00004.gz"] - offs["2101/2101.00002.gz"] - 512
    bulk = _patch(tar, "2101/2101.00002.gz", 124, b"%011o\0" % span)
    got = _bulk_papers(tmp_path, bulk)
    assert got == [("2101.00001", None), ("2101.00002", "archive_damage"),
                   ("2101.00003", None), ("2101.00004", None)]


def test_zeroed_header_inside_a_bulk_tar_is_damage_not_the_end(tmp_path):
    tar = bytearray(tar_bytes(BULK3))
    off = _member_offsets(bytes(tar))["2101/2101.00002.gz"]
    tar[off:off + 512] = bytes(512)
    got = _bulk_papers(tmp_path, bytes(tar))
    assert got == [("2101.00001", None), (f"<damaged header at byte {off}>", "archive_damage"),
                   ("2101.00003", None)]


def test_random_bytes_named_like_a_bulk_tar_are_one_damaged_region(tmp_path):
    import random

    data = random.Random(7).randbytes(20_000)
    got = _bulk_papers(tmp_path, data)
    assert got == [("<damaged header at byte 0>", "archive_damage")]


def test_gzip_compressed_bulk_tar_is_read_and_resynchronised(tmp_path):
    bulk = _patch(tar_bytes(BULK3), "2101/2101.00002.gz", 148, b"0000000\0", False)
    got = _bulk_papers(tmp_path, gz(bulk), name="arXiv_src_2101_001.tar.gz")
    assert got == [("2101.00001", None), ("2101.00002", "archive_damage"), ("2101.00003", None)]


def test_compressed_member_too_large_to_skip_is_not_inflated(tmp_path):
    from datacomp_sci.extract.tarwalk import Damage, Source, walk

    big = bytes(64 << 20)  # 64 MiB of zeros: 64 KiB compressed
    tar = tar_bytes({"2101/2101.00001.gz": gz(TEX), "2101/2101.00002.gz": big,
                     "2101/2101.00003.gz": gz(TEX)})
    src = Source(fobj=io.BytesIO(gz(tar)))
    events = list(walk(src, want=lambda m: m.size <= (1 << 20), skip_budget=1 << 20))
    assert [getattr(e, "name", None) for e in events] == ["2101/2101.00001.gz",
                                                          "2101/2101.00002.gz"]
    assert isinstance(events[1], Damage) and events[1].reason == "unskippable_member"
    assert src.delivered < 4 << 20  # not 64 MiB


def test_bulk_tar_inflation_is_bounded_per_archive(tmp_path):
    tar = tar_bytes({"2101/2101.00001.gz": gz(TEX), "2101/2101.00002.gz": bytes(8 << 20)})
    got = _bulk_papers(tmp_path, gz(tar), name="arXiv_src_2101_001.tar.gz",
                       limits=ArchiveLimits(max_archive_bytes=2 << 20))
    assert got == [("2101.00001", None), ("<damaged header at byte 1024>", "archive_damage")]


def test_uncompressed_member_claiming_10_gib_is_seeked_past(tmp_path):
    bulk = _patch(tar_bytes(BULK3), "2101/2101.00002.gz", 124, b"\x80" + b"\0" * 6 + b"\x02" +
                  b"\x80\0\0\0")  # 10 GiB, base-256
    got = _bulk_papers(tmp_path, bulk)
    assert got == [("2101.00001", None), ("2101.00002", "archive_damage"), ("2101.00003", None)]


def test_pmc_package_with_a_huge_size_field_keeps_its_other_members(tmp_path):
    tar = tar_bytes({"PMC1/PMC1.nxml": b"<article/>", "PMC1/f1.jpg": b"j" * 700,
                     "PMC1/f2.jpg": b"k"})
    (tmp_path / "PMC1.tar.gz").write_bytes(gz(_patch(tar, "PMC1/f1.jpg", 124, HUGE_BASE256)))
    (unit,), _ = list_units([str(tmp_path)], "pmc")
    (paper,) = iter_unit_papers(unit, ArchiveLimits())
    assert sorted(paper.files) == ["PMC1/PMC1.nxml", "PMC1/f2.jpg"]
    assert paper.member_skips == {"archive_damage": 1}


def test_fifo_member_in_a_paper_tar_skips_only_that_member():
    tar = _patch(tar_bytes({"a.tex": TEX, "b.png": b"p" * 2000, "c.tex": TEX}), "b.png", 156, b"6")
    paper = Paper("x")
    read_tar_bytes(tar, paper, ArchiveLimits())
    assert sorted(paper.files) == ["a.tex", "c.tex"]
    assert paper.member_skips == {"link_or_special_member": 1}


def test_members_past_the_per_paper_file_cap_are_one_counted_skip():
    tar = tar_bytes({f"s{i}.tex": b"x" for i in range(2_001)})
    paper = Paper("x")
    read_tar_bytes(tar, paper, ArchiveLimits(max_members=2_000))  # default 20,000
    assert len(paper.files) == 2_000
    assert paper.member_skips == {"too_many_members": 1}


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_walk_reads_exactly_what_tarfile_reads_on_wellformed_tars(fmt):
    from datacomp_sci.extract.tarwalk import Damage, Source, walk

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        names = ["a.tex", "x" * 90 + "/" + "y" * 90 + ".tex", "ü/é.tex", "empty.txt"]
        if fmt != tarfile.USTAR_FORMAT:
            names.append("d/" + "long" * 30 + ".png")
        for i, n in enumerate(names):
            ti = tarfile.TarInfo(n)
            data = (b"%d" % i) * (i * 300)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        d = tarfile.TarInfo("d")
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        s = tarfile.TarInfo("link")
        s.type, s.linkname = tarfile.SYMTYPE, "a.tex"
        tf.addfile(s)
    data = buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        want = [(m.name, tf.extractfile(m).read() if m.isfile() else None, m.isfile())
                for m in tf.getmembers()]
    events = list(walk(Source(data=data), want=lambda m: True))
    assert not any(isinstance(e, Damage) for e in events)
    assert [(e.name, e.data, e.kind == "file") for e in events] == want


def test_walk_agrees_with_tarfile_on_the_bundled_archives():
    from datacomp_sci.core.resources import resource_path
    from datacomp_sci.extract.tarwalk import Source, walk

    root = resource_path("samples")
    paths = [root / "arxiv" / "arXiv_src_2101_001.tar"] + sorted((root / "pmc").glob("*.tar.gz"))
    for path in paths:
        raw = path.read_bytes()
        data = gunzip_bounded(raw, 1 << 30) if raw[:2] == b"\x1f\x8b" else raw
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            want = [(m.name, tf.extractfile(m).read()) for m in tf.getmembers() if m.isfile()]
        got = [(e.name, e.data) for e in walk(Source(data=data), want=lambda m: True)
               if getattr(e, "kind", None) == "file"]
        assert got == want, path.name
