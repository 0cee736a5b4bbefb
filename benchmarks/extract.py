"""Benchmark: extraction time of the hostile inputs the unit tests exercise.

Unit tests only check that these inputs end (under a generous hang guard) and what they
produce; how fast they end is measured here (the fuzz campaign's cases and a typical JATS
article are in ``hostile_input.py``). Prints the best of ``--repeat`` runs per case in
milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable


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

    def image(data: bytes, name: str, limits: ImageLimits | None = None):
        def run():
            with contextlib.suppress(ImageSkipped):
                prepare_image(data, name, limits=limits or ImageLimits())
        return run

    return {
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
