"""Fuzzing ``build-pool`` with mutated copies of the bundled sample packages.

Each case takes one sample package (an arXiv bulk tar, per-paper ``.tar.gz`` files, PMC
packages), applies one mutation family from a fixed seed, runs ``build-pool`` through its
command line in this process, and asserts:

* no traceback, and the exit status the command promises: 1 exactly when not one paper
  of the input could be read (``build_report.json`` says so), else 0;
* bounded time per case, and memory: no case raises the process's peak by 1 GiB or more;
* nothing written outside the output folder: the input folder is unchanged, no other file
  appears in the case folder, and the private temporary folder (where ghostscript's
  working files go) is empty afterwards;
* every pair of every paper the mutation did not touch is in the pool.

``pytest tests/test_fuzz.py`` runs ``--fuzz-cases`` cases (240 by default); a long campaign
is ``pytest tests/test_fuzz.py --fuzz-cases 5000 --fuzz-seed 7 -x`` (docs/guide/hostile-input.md).
"""

from __future__ import annotations

import gzip
import io
import json
import random
import resource
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from datacomp_sci.cli import main
from datacomp_sci.core.resources import resource_path

pytestmark = pytest.mark.slow  # 240 cases: about a minute on 2 idle cores

SAMPLES = resource_path("samples")
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())
CASE_SECONDS = 60  # the slowest case seen takes about 3 s on 2 busy cores
MAX_RSS_GROWTH = 1 << 30  # how far one case may raise the process's peak memory

# (source, sample path, layout): bases without EPS figures keep each case well under a second
BASES = [
    ("arxiv", "arxiv/arXiv_src_2101_001.tar", "bulk"),
    ("arxiv", "arxiv/papers/2101.00020.tar.gz", "paper"),
    ("arxiv", "arxiv/papers/2101.00008.tar.gz", "paper"),
    ("pmc", "pmc/PMC9000001.tar.gz", "paper"),
    ("pmc", "pmc/PMC9000003.tar.gz", "paper"),
    ("pmc", "pmc/PMC9000014.tar.gz", "paper"),
]
# smaller bounds than the defaults, so that bombs cross them in milliseconds
POOL_LIMITS = {"max_paper_bytes": 24 << 20, "max_member_bytes": 16 << 20,
               "max_archive_bytes": 256 << 20}


def pytest_generate_tests(metafunc):
    if "case_index" in metafunc.fixturenames:
        metafunc.parametrize("case_index", range(metafunc.config.getoption("fuzz_cases")))


# --- tar surgery ------------------------------------------------------------------------------

def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _members(tar: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        return tf.getmembers()


def _span(m: tarfile.TarInfo) -> tuple[int, int]:
    """Bytes of a member: its header(s) to the end of its padded data."""
    return m.offset, m.offset_data + -(-m.size // 512) * 512


def _rechecksum(buf: bytearray, off: int) -> None:
    block = buf[off:off + 512]
    block[148:156] = b" " * 8
    buf[off + 148:off + 156] = b"%06o\0 " % sum(block)


def _tar(files: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for ti, data in files:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.linkname, ti.mtime = kind, size, link, 0
    return ti


def _read_tar(tar: bytes) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        return [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf.getmembers()]


# --- cases -----------------------------------------------------------------------------------

@dataclass
class Case:
    source: str
    name: str  # file name of the input
    data: bytes
    family: str
    note: str
    papers: list[str]  # paper ids the base holds
    damaged: set[str]  # papers whose pairs may be missing


def _paper_ids(source: str, path: str, layout: str) -> list[str]:
    if layout == "bulk":
        return [m.name.split("/")[-1].rsplit(".", 1)[0] for m in _members((SAMPLES / path).read_bytes())
                if m.name.endswith(".gz")]
    return [Path(path).name.split(".tar")[0]]


def _layer(raw: bytes) -> tuple[bytes, bool]:
    """The tar of a base and whether it was gzipped."""
    return (gzip.decompress(raw), True) if raw[:2] == b"\x1f\x8b" else (raw, False)


def _touched(tar: bytes, positions: list[int], cut: int | None = None) -> set[str]:
    """Bulk-tar papers whose bytes include a position (or lie past a cut)."""
    out = set()
    for m in _members(tar):
        a, b = _span(m)
        if any(a <= p < b for p in positions) or (cut is not None and b > cut):
            out.add(m.name.split("/")[-1].rsplit(".", 1)[0])
    return out


def fam_header(rng, tar, layout):
    ms = [m for m in _members(tar) if m.isfile()]
    m = rng.choice(ms)
    buf = bytearray(tar)
    field, value = rng.choice([
        ("size", b"\x80\0\0\0\x7f" + b"\xff" * 7),  # base-256, larger than any C integer
        ("size", b"\x80\0\0\0\0\0\0\x02\x80\0\0\0"),  # 10 GiB
        ("size", b"%011o\0" % rng.randrange(0, 1 << 20)),
        ("checksum", b"%07o\0" % rng.randrange(0, 1 << 16)),
        ("typeflag", rng.choice([b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"x", b"g", b"L",
                                 b"K", b"S", b"V", b"Z", b"\0"])),
        ("name", rng.choice([b"../../escape.tex\0", b"/etc/passwd\0", b"a/../../b.gz\0",
                             b"\0", bytes(rng.randrange(1, 256) for _ in range(100))])),
        ("magic", b"XXXXXX"),
    ])
    at = {"size": 124, "checksum": 148, "typeflag": 156, "name": 0, "magic": 257}[field]
    buf[m.offset + at:m.offset + at + len(value)] = value
    fixed = field != "checksum" and rng.random() < 0.7
    if fixed:
        _rechecksum(buf, m.offset)
    touched = _touched(tar, [m.offset]) if layout == "bulk" else {"*"}
    return bytes(buf), f"{field} of {m.name} ({'checksum fixed' if fixed else 'raw'})", touched


def fam_truncate(rng, tar, layout):
    cut = rng.randrange(0, len(tar))
    return tar[:cut], f"cut at {cut} of {len(tar)}", (_touched(tar, [], cut) if layout == "bulk"
                                                       else {"*"})


def fam_flip(rng, tar, layout):
    buf = bytearray(tar)
    positions = [rng.randrange(len(buf)) for _ in range(rng.randint(1, 8))]
    for p in positions:
        buf[p] ^= 1 << rng.randrange(8)
    return bytes(buf), f"flipped bytes {positions}", (_touched(tar, positions) if layout == "bulk"
                                                      else {"*"})


def fam_links(rng, tar, layout):
    """Hostile members beside the intact ones: nothing may be written, no pair lost."""
    hostile = rng.sample([
        (_info("evil.tex", tarfile.SYMTYPE, link="/etc/passwd"), None),
        (_info("hard.tex", tarfile.LNKTYPE, link="../../outside.tex"), None),
        (_info("../escape.tex", size=5), b"owned"),
        (_info("/tmp/abs-escape.tex", size=5), b"owned"),
        (_info("fifo.png", tarfile.FIFOTYPE), None),
        (_info("dev.png", tarfile.CHRTYPE), None),
        (_info("dir/", tarfile.DIRTYPE), None),
    ], k=rng.randint(1, 4))
    if layout == "bulk":  # bulk members must look like papers to be considered at all
        hostile = [(_info("2101/../../escape.gz", size=5), b"owned")] + hostile
    members = _read_tar(tar)
    at = rng.randrange(len(members) + 1)
    return _tar(members[:at] + hostile + members[at:]), \
        f"added {[ti.name for ti, _ in hostile]}", set()


def fam_nesting(rng, tar, layout):
    choice = rng.randrange(3)
    if choice == 0:  # a package inside a package, as one more member
        inner = _gz(tar)
        members = _read_tar(tar) + [(_info("nested.tar.gz", size=len(inner)), inner)]
        return _tar(members), "the package nested inside itself", set()
    if choice == 1:  # gzip twice
        return _gz(tar), "gzipped twice", {"*"}
    deep = tar
    for _ in range(rng.randint(2, 6)):
        deep = _tar([(_info("x.tar", size=len(deep)), deep)])
    return deep, "tar in tar in tar", {"*"}


def fam_recursion(rng, tar, layout, source):
    members = _read_tar(tar)
    if source == "pmc":  # deep nesting in the XML body
        out = []
        for ti, data in members:
            if data is not None and ti.name.endswith(".nxml"):
                depth = rng.choice([1000, 100_000])
                data = data.replace(b"</body>", b"<sec>" * depth + b"</sec>" * depth + b"</body>")
                ti.size = len(data)
            out.append((ti, data))
        return _tar(out), "deeply nested XML", {"*"}
    bomb = rng.choice([
        rb"\def\x#1{\x{#1#1}}\x{ab}",
        rb"\def\a{\a\a}\a",
        rb"\input{fan1}",
        rb"\input{self}",
    ])
    extra = [(_info(f"fan{i}.tex", size=len(b := rb"\input{fan%d}\input{fan%d}" % (i + 1, i + 1))), b)
             for i in range(1, 40)] + [(_info("self.tex", size=15), rb"\input{self}x  ")]
    out = []
    for ti, data in members:
        if data is not None and b"\\end{document}" in data:
            data = data.replace(b"\\end{document}", bomb + b"\n\\end{document}")
            ti.size = len(data)
        out.append((ti, data))
    return _tar(out + extra), f"LaTeX recursion {bomb!r} at the end", set()


def fam_bombs(rng, tar, layout, source):
    kind = rng.choice(["gzip", "image", "xml", "claim"] if source == "pmc" or layout != "bulk"
                      else ["gzip", "image", "claim"])
    if kind == "claim" and layout == "bulk":
        ms = [m for m in _members(tar) if m.isfile()]
        m = rng.choice(ms)
        buf = bytearray(tar)
        buf[m.offset + 124:m.offset + 136] = b"\x80\0\0\0\0\0\0\x02\x80\0\0\0"  # 10 GiB
        _rechecksum(buf, m.offset)
        return _gz(bytes(buf)), f"gzip bulk tar, {m.name} claims 10 GiB", _touched(tar, [m.offset])
    if kind == "claim":
        kind = "gzip"
    members = _read_tar(tar)
    if kind == "gzip":
        bomb = _gz(bytes(rng.choice([40, 300]) << 20))
        if layout == "bulk":
            name = "2101/2101.77777.gz"
            return _tar(members + [(_info(name, size=len(bomb)), bomb)]), "gzip bomb member", set()
        return _tar(members + [(_info("bomb.png.gz", size=len(bomb)), bomb)]), \
            "gzip bomb member", {"*"}
    if kind == "xml":
        lol = (b'<?xml version="1.0"?><!DOCTYPE article [<!ENTITY a "aaaaaaaaaa">'
               + b"".join(b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&%s;" % bytes([97 + i])) * 10)
                          for i in range(9)) + b"]><article><body><p>&j;</p></body></article>")
        out = [(ti, lol if ti.name.endswith(".nxml") else d) for ti, d in members]
        for ti, d in out:
            if d is not None:
                ti.size = len(d)
        return _tar(out), "billion laughs", {"*"}
    # an image whose header declares 100,000 x 100,000 pixels, in place of a figure
    import struct
    import zlib

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    out, hit = [], None
    for ti, d in members:
        if d is not None and ti.name.lower().endswith((".png", ".jpg")) and hit is None:
            hit, d = ti.name, png
            ti.size = len(d)
        out.append((ti, d))
    return _tar(out), f"decompression-bomb image in place of {hit}", {"*"}


FAMILIES = ["header", "truncate", "flip", "links", "nesting", "recursion", "bombs"]


def make_case(seed: int, index: int) -> Case:
    rng = random.Random(f"{seed}:{index}")
    family = FAMILIES[index % len(FAMILIES)]
    source, path, layout = rng.choice(BASES)
    raw = (SAMPLES / path).read_bytes()
    tar, was_gz = _layer(raw)
    if family == "bombs" and layout == "bulk":
        data, note, damaged = fam_bombs(rng, tar, layout, source)
        if data[:2] == b"\x1f\x8b":
            was_gz = False  # already compressed as a whole
    elif family in ("recursion", "bombs"):
        if layout == "bulk":
            layout = "paper"
        data, note, damaged = globals()[f"fam_{family}"](rng, tar, layout, source)
    else:
        data, note, damaged = globals()[f"fam_{family}"](rng, tar, layout)
    if was_gz and not (family == "truncate" and rng.random() < 0.5):
        data = _gz(data)
    elif was_gz:  # truncate the compressed file instead
        data = _gz(tar)[: rng.randrange(len(_gz(tar)))]
    name = Path(path).name
    if family == "bombs" and layout == "bulk" and data[:2] == b"\x1f\x8b":
        name += ".gz"
    papers = _paper_ids(source, path, "bulk" if path.endswith("_001.tar") else "paper")
    if "*" in damaged:
        damaged = set(papers)
    return Case(source, name, data, family, note, papers, damaged)


# --- running a case ---------------------------------------------------------------------------

def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))
            if not p.is_dir()}


def _pool_pairs(out: Path) -> set[tuple[str, str]]:
    pairs = set()
    for f in sorted((out / "metadata").glob("*.parquet")):
        t = pq.read_table(f, columns=["paper_id", "figure_path"]).to_pylist()
        pairs.update((r["paper_id"], r["figure_path"]) for r in t)
    return pairs


@pytest.fixture(scope="module")
def pool_configs(tmp_path_factory) -> dict[str, Path]:
    import yaml

    root = tmp_path_factory.mktemp("fuzz_pools")
    out = {}
    for source in ("arxiv", "pmc"):
        cfg = {"name": f"fuzz-{source}", "source": source, "limits": POOL_LIMITS,
               "defaults": {"converter_timeout_s": 5}}
        out[source] = root / f"{source}.yaml"
        out[source].write_text(yaml.safe_dump(cfg))
    return out


def test_build_pool_survives_mutated_packages(case_index, request, tmp_path, pool_configs,
                                              monkeypatch):
    seed = request.config.getoption("fuzz_seed")
    case = make_case(seed, case_index)
    where = f"case {case_index} (seed {seed}, {case.family}: {case.note}, base {case.name})"
    inp, out, private_tmp = tmp_path / "in", tmp_path / "out", tmp_path / "tmp"
    inp.mkdir()
    private_tmp.mkdir()
    (inp / case.name).write_bytes(case.data)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    before = _tree(inp)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    res = CliRunner().invoke(main, ["build-pool", case.source, str(inp / case.name), "-o",
                                    str(out), "-j", "1", "--no-progress", "--config",
                                    str(pool_configs[case.source])])
    elapsed = time.perf_counter() - t0
    assert res.exception is None or isinstance(res.exception, SystemExit), \
        f"{where}: {res.exc_info and ''.join(__import__('traceback').format_exception(*res.exc_info))}"
    assert "Traceback" not in res.output, where
    assert elapsed < CASE_SECONDS, f"{where}: {elapsed:.1f} s"
    # the process's peak includes earlier tests: bound what this case added to it
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak_after - peak_before < MAX_RSS_GROWTH, f"{where}: peak +{peak_after - peak_before} B"
    # nothing outside the output folder
    assert _tree(inp) == before, where
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "tmp"], where
    assert not any(private_tmp.iterdir()), f"{where}: left {list(private_tmp.iterdir())}"
    assert not list(tmp_path.rglob("*escape*")) and not list(tmp_path.rglob("passwd")), where
    # the exit status says whether anything could be read
    report = json.loads((out / "build_report.json").read_text())
    expected_code = 1 if report["papers_read"] == 0 else 0
    assert res.exit_code == expected_code, f"{where}: exit {res.exit_code}\n{res.output}"
    # every paper the mutation did not touch keeps all of its pairs
    got = _pool_pairs(out)
    for pid in case.papers:
        if pid in case.damaged:
            continue
        want = {(pid, p["figure_path"]) for p in EXPECTED[case.source][pid]["pairs"]}
        assert want <= got, f"{where}: {pid} lost {sorted(want - got)}"
