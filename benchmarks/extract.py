"""Benchmark: extraction time on typical and hostile inputs.

Unit tests only check that hostile inputs end (with a generous hang guard) and what they
produce; how fast they end is measured here. Prints the best of ``--repeat`` runs per
case in milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable


def _typical_jats() -> dict[str, bytes]:
    fig = ('<fig id="F{n}"><label>Figure {n}</label><caption><p>A caption.</p></caption>'
           '<graphic xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="f{n}"/></fig>')
    para = ('<p>Cells were counted in each well (<xref ref-type="fig" rid="F{n}">Fig. {n}</xref>). '
            'The mean was 4.2 per field, e.g. in controls. Counts rose with dose.</p>\n')
    body = ("<body>" + "".join(para.format(n=i % 20) for i in range(1200))
            + "".join(fig.format(n=n) for n in range(20)) + "</body>")
    files = {"PMC1/PMC1.nxml": f'<?xml version="1.0"?><article>{body}</article>'.encode()}
    files.update({f"PMC1/f{n}.jpg": b"x" for n in range(20)})
    return files


def cases() -> dict[str, Callable[[], object]]:
    from datacomp_sci.extract.images import ImageLimits, ImageSkipped, prepare_image
    from datacomp_sci.extract.jats import extract_jats
    from datacomp_sci.extract.latex import LatexOptions, extract_latex
    from datacomp_sci.samplegen import figures
    from datacomp_sci.samplegen.pmc import pmc_samples

    png = figures.plot_bytes(0, "png")

    def tex(body: str, pre: str = "") -> bytes:
        return (r"\documentclass{article}" + pre + r"\begin{document}" + body
                + r"\end{document}").encode()

    laughs = next(a for a in pmc_samples() if a.pmcid == "PMC9000021")
    jats = _typical_jats()

    def image(data: bytes, name: str, limits: ImageLimits | None = None):
        def run():
            with contextlib.suppress(ImageSkipped):
                prepare_image(data, name, limits=limits or ImageLimits())
        return run

    return {
        "jats: typical 200 kB article, 20 figures": lambda: extract_jats(jats, "PMC1"),
        "jats: billion laughs refused": lambda: extract_jats(laughs.files, laughs.pmcid),
        "latex: self-reproducing macros": lambda: extract_latex(
            {"m.tex": tex(r"\a \b \begin{figure}\includegraphics{a}\caption{Fine}\end{figure}",
                          r"\def\a{\a\a}\def\b{x\b}"), "a.png": png}, "x"),
        "latex: 3 MB .tex skipped": lambda: extract_latex(
            {"m.tex": tex("x" * 3_000_000)}, "x", LatexOptions(max_tex_bytes=1_000_000)),
        "latex: 20,000 unbalanced braces": lambda: extract_latex(
            {"m.tex": tex("{" * 20000 + r"\begin{figure}\includegraphics{a}\caption{x}"),
             "a.png": png}, "x"),
        "image: PNG decompression bomb": image(figures.png_bomb(), "bomb.png"),
        "image: looping EPS (1 s timeout)": image(
            figures.looping_eps(), "loop.eps", ImageLimits(converter_timeout_s=1.0)),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (best is shown)")
    args = ap.parse_args(argv)
    for name, fn in cases().items():
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        print(f"{name:<45} {best * 1000:10.1f} ms")


if __name__ == "__main__":
    main()
