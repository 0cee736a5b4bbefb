"""Benchmark: build-pool throughput on one core against the codec floor.

Generates a corpus of paper packages of mixed formats (arXiv per-paper .gz tars with
PNG/PDF/EPS/JPEG figures and PMC .tar.gz packages with JPEG/PNG/TIFF figures) by
replicating the bundled sample projects under new ids, builds both pools with one
worker, and times the codec work alone (decode, rasterise, resize, encode: what
``images.codec_floor`` measures) on exactly the figure files that became pairs.

    python benchmarks/build_pool.py --papers 300

Prints figures/s and ``codec floor / build time`` (target: >= 0.8, i.e. parsing and
bookkeeping under 20 % of the time).
"""

from __future__ import annotations

import argparse
import gzip
import io
import platform
import re
import tarfile
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

_PMC_ID = re.compile(rb'(<article-id[^>]*pub-id-type="pmc(?:id)?"[^>]*>)\s*(?:PMC)?\d+\s*(</article-id>)')


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in sorted(files):
            ti = tarfile.TarInfo(name)
            ti.size = len(files[name])
            tf.addfile(ti, io.BytesIO(files[name]))
    return gzip.compress(buf.getvalue(), mtime=0)


def make_corpus(root: Path, n_papers: int) -> tuple[Path, Path]:
    from datacomp_sci.samplegen.arxiv import arxiv_samples
    from datacomp_sci.samplegen.bundle import _broken_images
    from datacomp_sci.samplegen.figures import photo_bytes
    from datacomp_sci.samplegen.pmc import pmc_samples

    broken = _broken_images()
    arxiv = [p for p in arxiv_samples() if not p.single_tex and p.expected
             and not any(v in broken for v in p.files.values())]
    pmc = [a for a in pmc_samples() if a.expected
           and not any(v in broken for v in a.files.values())]
    a_dir, p_dir = root / "arxiv", root / "pmc"
    a_dir.mkdir(parents=True)
    p_dir.mkdir(parents=True)
    n_arxiv = (2 * n_papers) // 3
    for i in range(n_arxiv):
        proj = arxiv[i % len(arxiv)]
        (a_dir / f"2201.{i:05d}.gz").write_bytes(_tar_gz(proj.files))
    # The bundled PMC samples carry 300x200 placeholder images; real PMC figures are
    # full-size JPEGs (typically 1,000-2,500 px wide), so the benchmark uses photographs
    # of that size, or the codec floor would be meaningless.
    photos = [photo_bytes(seed, 1600, 1200) for seed in range(4)]
    for i in range(n_papers - n_arxiv):
        art = pmc[i % len(pmc)]
        new = f"PMC95{i:05d}"
        files = {}
        for k, v in art.files.items():
            if k.endswith(".nxml"):  # give the copy its own id (with or without "PMC")
                v = _PMC_ID.sub(rb"\g<1>" + new.encode() + rb"\g<2>", v)
            elif k.lower().endswith((".jpg", ".jpeg")):
                v = photos[(i + len(files)) % len(photos)]
            files[new + k[len(art.pmcid):]] = v
        (p_dir / f"{new}.tar.gz").write_bytes(_tar_gz(files))
    return a_dir, p_dir


def codec_floor_seconds(pool: Path, corpus: Path, source: str, image_size: int) -> float:
    """Codec time alone for every figure file that became a pair of ``pool``."""
    from datacomp_sci.extract.archives import ArchiveLimits, iter_unit_papers, list_units
    from datacomp_sci.extract.images import codec_floor

    wanted: set[tuple[str, str]] = set()
    for f in sorted((pool / "metadata").glob("*.parquet")):
        t = pq.read_table(f, columns=["paper_id", "figure_path"])
        wanted.update(zip(t.column("paper_id").to_pylist(), t.column("figure_path").to_pylist(),
                          strict=True))
    total, n = 0.0, 0
    units, _ = list_units([str(corpus)], source)
    for unit in units:
        for paper in iter_unit_papers(unit, ArchiveLimits()):
            # PMC paper ids come from the XML; the package name is the same id
            for path in sorted(p for pid, p in wanted if pid == paper.paper_id):
                total += codec_floor(paper.files[path], path, image_size)
                n += 1
    if n != len(wanted):
        raise RuntimeError(f"codec floor measured {n} of {len(wanted)} figures")
    return total


def inflate_floor_seconds(corpus: Path) -> float:
    """Time to inflate every input package alone (gzip), the other cost that is neither
    parsing nor bookkeeping."""
    from datacomp_sci.extract.archives import gunzip_bounded

    total = 0.0
    for f in sorted(corpus.iterdir()):
        raw = f.read_bytes()
        t = time.perf_counter()
        gunzip_bounded(raw, 1 << 30)
        total += time.perf_counter() - t
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--papers", type=int, default=300, help="papers in the generated corpus")
    ap.add_argument("--image-size", type=int, default=512)
    args = ap.parse_args()

    from datacomp_sci.pool.build import build_pool, options_from_config

    # One-time start-up is not throughput: the shard writer imports webdataset, which
    # imports torch (~1.3 s). Import it before the clock starts; it is reported apart.
    t = time.perf_counter()
    import webdataset  # noqa: F401

    print(f"start-up: webdataset/torch import {time.perf_counter() - t:.2f} s (not timed below)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        a_dir, p_dir = make_corpus(root / "corpus", args.papers)
        print(f"corpus: {args.papers} papers generated in {time.perf_counter() - t:.1f} s")
        build_s = floor_s = inflate_s = 0.0
        figures = 0
        for source, corpus in (("arxiv", a_dir), ("pmc", p_dir)):
            opts = options_from_config(source, None, image_size=args.image_size)
            t = time.perf_counter()
            res = build_pool([str(corpus)], root / f"pool_{source}", opts, workers=1)
            dt = time.perf_counter() - t
            floor = codec_floor_seconds(root / f"pool_{source}", corpus, source, args.image_size)
            inflate = inflate_floor_seconds(corpus)
            n = res.report["pairs_written"]
            rest = dt - floor - inflate
            print(f"{source:5s}: {res.report['papers_seen']} papers, {n} figures, "
                  f"build {dt:.2f} s ({n / dt:.1f} figures/s), codec floor {floor:.2f} s "
                  f"({n / floor:.1f} figures/s), floor/build = {floor / dt:.2f}; "
                  f"gzip inflate {inflate:.2f} s ({inflate / dt:.0%}), "
                  f"parsing + bookkeeping {rest:.2f} s ({rest / dt:.0%})")
            build_s += dt
            floor_s += floor
            inflate_s += inflate
            figures += n
        print(f"total: {figures} figures, build {build_s:.2f} s = {figures / build_s:.1f} figures/s "
              f"on one core; codec floor {floor_s:.2f} s = {figures / floor_s:.1f} figures/s; "
              f"floor/build = {floor_s / build_s:.2f} (target >= 0.80); gzip inflate of the "
              f"inputs {inflate_s / build_s:.0%}; parsing + bookkeeping "
              f"{(build_s - floor_s - inflate_s) / build_s:.0%} (target < 20%)")
        print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")


if __name__ == "__main__":
    main()
