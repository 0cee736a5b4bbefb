"""Benchmark: what hostile packages cost build-pool's readers, and the reader's plain speed.

Each case is a package shaped like one from the fuzz campaign behind the hostile-input
work (docs/guide/hostile-input.md). The figures are the time (and, where it matters, the
bytes inflated) until the bound stops the work:

* a per-paper tar with 20,001 ``.tex`` members (half of them main files): read + LaTeX;
* LaTeX argument-doubling recursion ``\\def\\x#1{\\x{#1#1}}`` at the default bounds;
* ``\\input`` fan-out: ``s_i`` inputs ``s_{i+1}`` twice, 40 levels;
* a gzip-compressed bulk tar whose member header claims 10 GiB (data: 1 MiB);
* a gzip-compressed bulk tar with a genuine multi-GiB member of zeros (a bomb);
* a well-formed 100 MB bulk tar read by the damage-tolerant reader and by ``tarfile``.

(Typical and other hostile extraction inputs are timed by ``benchmarks/extract.py``.)

    python benchmarks/hostile_input.py [--bomb-gib 2]
"""

from __future__ import annotations

import argparse
import gzip
import io
import platform
import tarfile
import time
import zlib

from datacomp_sci.extract.archives import ArchiveLimits
from datacomp_sci.extract.latex import extract_latex
from datacomp_sci.extract.tarwalk import Damage, Source, walk


def _tar(files: list[tuple[str, bytes]], size_override: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    raw = bytearray(buf.getvalue())
    for name, field in (size_override or {}).items():
        with tarfile.open(fileobj=io.BytesIO(bytes(raw))) as tf:
            off = tf.getmember(name).offset
        raw[off + 124:off + 136] = field
        block = raw[off:off + 512]
        block[148:156] = b" " * 8
        raw[off + 148:off + 156] = b"%06o\0 " % sum(block)
    return bytes(raw)


def timed(label: str, fn) -> object:
    t = time.perf_counter()
    out = fn()
    print(f"{label:<58} {time.perf_counter() - t:8.2f} s")
    return out


def doc(body: str, pre: str = "") -> bytes:
    return (f"\\documentclass{{article}}{pre}\\begin{{document}}{body}\\end{{document}}").encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bomb-gib", type=float, default=2.0, help="size of the zero member")
    args = ap.parse_args()
    print(f"{platform.node()} {platform.machine()} python {platform.python_version()}")
    limits = ArchiveLimits()

    files = [(f"s{i}.tex", doc(rf"\input{{s{i + 1}}}") if i % 2 == 0 else b"text\n")
             for i in range(20_001)]
    tar = gzip.compress(_tar(files), mtime=0)

    def many_members():
        from datacomp_sci.extract.archives import arxiv_paper_from_bytes

        paper = arxiv_paper_from_bytes("x", tar, limits)
        result = extract_latex(paper.files, "x")
        return paper.member_skips, result.skipped

    skips = timed("20,001 .tex members: read + extract", many_members)
    print(f"{'':<58} skips {skips}")

    fig = r"\begin{figure}\includegraphics{a}\caption{C}\end{figure}"
    r = timed("argument doubling \\def\\x#1{\\x{#1#1}}",
              lambda: extract_latex({"m.tex": doc(fig + r"\x{ab}", r"\def\x#1{\x{#1#1}}"),
                                     "a.png": b"\x89PNG"}, "x"))
    print(f"{'':<58} skips {r.skipped}")
    fan = {f"s{i}.tex": rf"\input{{s{i + 1}}}\input{{s{i + 1}}}".encode() for i in range(1, 40)}
    fan["m.tex"] = doc(r"\input{s1}" + fig)
    fan["a.png"] = b"\x89PNG"
    r = timed("\\input fan-out, 40 levels", lambda: extract_latex(fan, "x"))
    print(f"{'':<58} skips {r.skipped}")

    claim = _tar([("2101/2101.00001.gz", b"a" * (1 << 20)), ("2101/2101.00002.gz", b"b" * 100)],
                 {"2101/2101.00001.gz": b"\x80\0\0\0\0\0\0\x02\x80\0\0\0"})

    def walk_gz(data: bytes, label: str) -> None:
        src = Source(fobj=io.BytesIO(data), max_bytes=limits.max_archive_bytes)
        events = timed(label, lambda: list(walk(src, want=lambda m: m.size <= limits.max_paper_bytes,
                                                skip_budget=limits.max_paper_bytes)))
        kinds = [e.reason if isinstance(e, Damage) else e.name for e in events]
        print(f"{'':<58} inflated {src.delivered / 2**20:,.0f} MiB; events {kinds}")

    walk_gz(gzip.compress(claim, mtime=0), "gzip bulk tar, header claims 10 GiB")

    zeros = int(args.bomb_gib * (1 << 30))
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    header = _tar([("2101/2101.00001.gz", b"")], {"2101/2101.00001.gz": b"%011o\0" % zeros})
    chunk = bytes(64 << 20)
    parts = [comp.compress(header[:512])]
    for _ in range(zeros // len(chunk)):
        parts.append(comp.compress(chunk))
    parts.append(comp.compress(bytes(zeros % len(chunk) + (-zeros) % 512)))
    parts.append(comp.compress(bytes(1024)) + comp.flush())
    walk_gz(b"".join(parts), f"gzip bulk tar, a real {args.bomb_gib:g} GiB member of zeros")

    bulk = _tar([(f"2101/2101.{i:05d}.gz", bytes([i % 251]) * 50_000) for i in range(2_000)])

    def ours():
        return sum(1 for e in walk(Source(data=bulk), want=lambda m: True,
                                   scan_member_data=True) if not isinstance(e, Damage))

    def reference():
        with tarfile.open(fileobj=io.BytesIO(bulk)) as tf:
            return sum(1 for m in tf if tf.extractfile(m).read() is not None)

    n = timed(f"well-formed bulk tar ({len(bulk) / 1e6:.0f} MB, 2,000 members): tarwalk", ours)
    timed("the same with tarfile", reference)
    assert n == 2_000


if __name__ == "__main__":
    main()
