"""Generated arXiv-style LaTeX projects with the exact pairs an extractor must find.

Every project is small, original (fake prose written for this corpus) and exercises a
few constructs; ``description`` says which. ``expected`` holds the exact pairs for the
default :class:`datacomp_sci.extract.latex.LatexOptions` and ``expected_skips`` the exact skip
counts. The last four projects are malformed on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from . import figures


@dataclass
class SampleProject:
    paper_id: str
    files: dict[str, bytes]
    expected: list[dict]
    expected_skips: dict[str, int]
    description: str
    single_tex: bool = False
    figures: int = field(default=0)  # figures the extractor should find (figures_found)


@cache
def _png(seed: int) -> bytes:
    return figures.plot_bytes(seed, "png", size=(1.6, 1.2))


@cache
def _pdf(seed: int) -> bytes:
    return figures.plot_bytes(seed, "pdf", kind="bar", size=(1.6, 1.2))


@cache
def _eps(seed: int) -> bytes:
    return figures.plot_bytes(seed, "eps", kind="scatter", size=(1.6, 1.2))


@cache
def _jpg(seed: int) -> bytes:
    return figures.photo_bytes(seed, 64, 48)


def _pair(path: str, caption: str, label: str | None = None, parent: str | None = None,
          mentions: tuple[str, ...] = ()) -> dict:
    return {"figure_path": path, "caption": caption, "label": label,
            "parent_caption": parent, "mentions": list(mentions)}


def _doc(body: str, preamble: str = "", cls: str = "article") -> str:
    return (f"\\documentclass{{{cls}}}\n\\usepackage{{graphicx}}\n{preamble}"
            f"\\begin{{document}}\n{body}\n\\end{{document}}\n")


def _tex(s: str, encoding: str = "utf-8") -> bytes:
    return s.encode(encoding)


# --- well-formed projects ---------------------------------------------------------------------

def _basic() -> SampleProject:
    body = r"""
\section{Introduction}
We study how quickly a toy learner forgets. As shown in Figure~\ref{fig:loss}, the
training loss falls within a few epochs. Compare Fig.~\ref{fig:loss} with e.g. the
baselines of \citet{smith99} et al. before drawing conclusions.
Nothing else refers to it.

\begin{figure}[t]
  \centering
  \includegraphics[width=0.8\linewidth]{figs/loss.png}
  \caption{Training \textbf{loss} for $\alpha = 0.5$ over 10~epochs \citep{smith99}.}
  \label{fig:loss}
\end{figure}
"""
    return SampleProject(
        "2101.00001",
        {"paper.tex": _tex(_doc(body)), "figs/loss.png": _png(1), "refs.bib": b"@misc{smith99}\n"},
        [_pair("figs/loss.png", "Training loss for α = 0.5 over 10 epochs <cit.>.", "fig:loss",
               mentions=("As shown in Figure <ref>, the training loss falls within a few epochs.",
                         "Compare Fig. <ref> with e.g. the baselines of <cit.> et al. before "
                         "drawing conclusions."))],
        {}, "one figure: \\includegraphics with extension, math/cite/textbf/~ in the caption, "
            "mentions with Fig./e.g./et al. not splitting sentences", figures=1)


def _graphicspath() -> SampleProject:
    pre = "\\graphicspath{{figures/}{img/}}\n"
    body = r"""
\begin{figure}\includegraphics{plot}\caption{Both plot.png and plot.pdf exist: pdfTeX picks the PDF.}\end{figure}
\begin{figure}\includegraphics{photo}\caption{Found through the second graphicspath entry.}\end{figure}
\begin{figure}\includegraphics{./figures/bar.png}\caption{A path with a leading dot-slash.}\end{figure}
\begin{figure}\includegraphics{scan}\caption{Only scan.eps exists: found after the bitmap formats.}\end{figure}
"""
    return SampleProject(
        "2101.00002",
        {"main.tex": _tex(_doc(body, pre)), "figures/plot.png": _png(2), "figures/plot.pdf": _pdf(2),
         "img/photo.jpg": _jpg(3), "figures/bar.png": _png(4), "img/scan.eps": _eps(5)},
        [_pair("figures/plot.pdf", "Both plot.png and plot.pdf exist: pdfTeX picks the PDF."),
         _pair("img/photo.jpg", "Found through the second graphicspath entry."),
         _pair("figures/bar.png", "A path with a leading dot-slash."),
         _pair("img/scan.eps", "Only scan.eps exists: found after the bitmap formats.")],
        {}, "\\graphicspath with two entries, extension-less names, pdfTeX extension order, "
            "eps after bitmaps, ./ prefix", figures=4)


def _input_tree() -> SampleProject:
    main = _doc("\\input{sections/intro}\n\\include{sections/results}\n\\input{sections/missing}\n"
                "\\input{sections/a}\n")
    intro = "Our results appear in Figure~\\ref{fig:tree}. The tree is deep.\n"
    results = "\\input{figs/fig1.tex}\n"
    fig1 = ("\\begin{figure}\n\\includegraphics{figs/tree}\n"
            "\\caption{A figure defined three inputs deep.}\\label{fig:tree}\n\\end{figure}\n")
    a = "Section A text.\n\\input{sections/b}\n"
    b = "Section B text.\n\\input{sections/a}\n"
    return SampleProject(
        "2101.00003",
        {"main.tex": _tex(main), "sections/intro.tex": _tex(intro),
         "sections/results.tex": _tex(results), "figs/fig1.tex": _tex(fig1),
         "sections/a.tex": _tex(a), "sections/b.tex": _tex(b), "figs/tree.png": _png(6)},
        [_pair("figs/tree.png", "A figure defined three inputs deep.", "fig:tree",
               mentions=("Our results appear in Figure <ref>.",))],
        {"input_not_found": 1, "input_cycle": 1},
        "\\input/\\include tree (no .tex extension), a missing input, an input cycle a->b->a",
        figures=1)


def _macros() -> SampleProject:
    pre = r"""
\newcommand{\figdir}{plots}
\providecommand{\figdir}{ignored}
\newcommand{\plotfig}[2]{\includegraphics[width=#2]{\figdir/#1}}
\newcommand{\mycap}[2][Result]{#1: #2}
\def\both#1#2{\plotfig{run_#1}{#2}}
\newcommand\oldname{first}
\renewcommand\oldname{second}
\newcommand*{\fig}[1]{Figure~\ref{#1}}
"""
    body = r"""
\begin{figure}\plotfig{alpha}{3cm}\caption{\mycap{the \oldname\ run}}\label{fig:alpha}\end{figure}
\begin{figure}\both{7}{2cm}\caption{\mycap[Ablation]{seven layers}}\label{fig:seven}\end{figure}
The ablation in \fig{fig:seven} removes layers.
"""
    return SampleProject(
        "2101.00004",
        {"ms.tex": _tex(_doc(body, pre)), "plots/alpha.pdf": _pdf(7), "plots/run_7.png": _png(8)},
        [_pair("plots/alpha.pdf", "Result: the second run", "fig:alpha"),
         _pair("plots/run_7.png", "Ablation: seven layers", "fig:seven",
               mentions=("The ablation in Figure <ref> removes layers.",))],
        {}, "\\newcommand/\\renewcommand/\\providecommand/\\def with arguments, an optional "
            "first argument default, macros calling macros that build image paths", figures=2)


def _subcaption() -> SampleProject:
    body = r"""
\begin{figure}
\centering
\begin{subfigure}[b]{0.45\textwidth}
  \includegraphics[width=\textwidth]{left}
  \caption{Left panel}\label{fig:pair-a}
\end{subfigure}
\begin{subfigure}[b]{0.45\textwidth}
  \includegraphics[width=\textwidth]{right}
  \caption{Right panel}\label{fig:pair-b}
\end{subfigure}
\caption{Two panels side by side.}\label{fig:pair}
\end{figure}
Figure~\ref{fig:pair} has two panels. Panel \ref{fig:pair-b} is darker.
"""
    return SampleProject(
        "2101.00005",
        {"main.tex": _tex(_doc(body, "\\usepackage{subcaption}\n")), "left.png": _png(9),
         "right.png": _png(10)},
        [_pair("left.png", "Left panel", "fig:pair-a", "Two panels side by side.",
               ("Figure <ref> has two panels.",)),
         _pair("right.png", "Right panel", "fig:pair-b", "Two panels side by side.",
               ("Figure <ref> has two panels.", "Panel <ref> is darker."))],
        {}, "subcaption's subfigure environment: sub-captions, sub-labels, parent caption, "
            "sub-figure mentions include the parent's", figures=1)


def _subfig_commands() -> SampleProject:
    body = r"""
\begin{figure}
\subfigure[Noisy input\label{fig:in}]{\includegraphics{in.png}}
\subfigure[Denoised output]{\includegraphics{out.png}}
\caption{Denoising with the subfigure package.}
\end{figure}
\begin{figure}
\subfloat[][First epoch]{\includegraphics{e1}}\hfill
\subfloat[Last epoch]{\includegraphics{e2}}
\caption{Training with subfig.}
\end{figure}
\begin{figure}
\subcaptionbox{Mean\label{fig:mean}}{\includegraphics{mean}}
\subcaptionbox{Variance}[0.4\linewidth]{\includegraphics{var}}
\caption{Statistics with subcaptionbox.}\label{fig:stats}
\end{figure}
In \ref{fig:in} the noise is visible. The mean in \cref{fig:mean} is flat.
"""
    files = {"main.tex": _tex(_doc(body)), "in.png": _png(11), "out.png": _png(12),
             "e1.png": _png(13), "e2.pdf": _pdf(14), "mean.png": _png(15), "var.png": _png(16)}
    return SampleProject(
        "2101.00006", files,
        [_pair("in.png", "Noisy input", "fig:in", "Denoising with the subfigure package.",
               ("In <ref> the noise is visible.",)),
         _pair("out.png", "Denoised output", None, "Denoising with the subfigure package."),
         _pair("e1.png", "First epoch", None, "Training with subfig."),
         _pair("e2.pdf", "Last epoch", None, "Training with subfig."),
         _pair("mean.png", "Mean", "fig:mean", "Statistics with subcaptionbox.",
               ("The mean in <ref> is flat.",)),
         _pair("var.png", "Variance", None, "Statistics with subcaptionbox.")],
        {}, "\\subfigure[..]{..} (subfigure pkg), \\subfloat[][..]{..} (subfig), "
            "\\subcaptionbox{..}[..]{..} (subcaption), labels inside sub-captions", figures=3)


def _multi_panel() -> SampleProject:
    body = r"""
\begin{figure}
\includegraphics[width=0.3\textwidth]{a}\includegraphics[width=0.3\textwidth]{b}
\caption{Two panels, one shared caption.}\label{fig:ab}
\end{figure}
\begin{figure}\includegraphics{c}\caption{A single panel.}\label{fig:c}\end{figure}
Figures~\ref{fig:ab} and~\ref{fig:c} differ.
"""
    return SampleProject(
        "2101.00007",
        {"main.tex": _tex(_doc(body)), "a.png": _png(17), "b.png": _png(18), "c.png": _png(19)},
        [_pair("c.png", "A single panel.", "fig:c", mentions=("Figures <ref> and <ref> differ.",))],
        {"multi_graphic_no_subcaption": 1},
        "multi-graphic figure without sub-captions (skipped by default, kept with "
        "keep_multi_panel), next to a single-graphic figure", figures=2)


def _floats() -> SampleProject:
    pre = "\\usepackage{wrapfig}\n\\usepackage{sidecap}\n\\usepackage{capt-of}\n"
    body = r"""
\begin{wrapfigure}{r}{0.4\textwidth}
\includegraphics[width=0.38\textwidth]{wrap}
\caption{A wrapped figure.}\label{fig:wrap}
\end{wrapfigure}
\begin{SCfigure}[0.5][t]
\includegraphics{side}
\caption[Short entry]{The long caption next to the figure.}
\end{SCfigure}
\begin{center}
\begin{minipage}{0.45\textwidth}
\includegraphics{inline}
\captionof{figure}{Outside any float.}\label{fig:inline}
\end{minipage}
\end{center}
The wrapped one (\autoref{fig:wrap}) and the inline one (\Cref{fig:inline}) are small.
"""
    return SampleProject(
        "2101.00008",
        {"main.tex": _tex(_doc(body, pre)), "wrap.png": _png(20), "side.pdf": _pdf(21),
         "inline.jpg": _jpg(22)},
        [_pair("wrap.png", "A wrapped figure.", "fig:wrap",
               mentions=("The wrapped one (<ref>) and the inline one (<ref>) are small.",)),
         _pair("side.pdf", "The long caption next to the figure."),
         _pair("inline.jpg", "Outside any float.", "fig:inline",
               mentions=("The wrapped one (<ref>) and the inline one (<ref>) are small.",))],
        {}, "wrapfigure, SCfigure, \\caption[short]{long}, \\captionof{figure} in a minipage",
        figures=3)


def _two_minipages() -> SampleProject:
    body = r"""
\begin{figure*}
\begin{minipage}{0.48\textwidth}
\includegraphics{speed}
\caption{Speed of the solver.}\label{fig:speed}
\end{minipage}\hfill
\begin{minipage}{0.48\textwidth}
\includegraphics{memory}
\caption{Memory of the solver.}\label{fig:memory}
\end{minipage}
\end{figure*}
Memory grows linearly (Figure~\ref{fig:memory}).
"""
    return SampleProject(
        "2101.00009",
        {"main.tex": _tex(_doc(body)), "speed.png": _png(23), "memory.png": _png(24)},
        [_pair("speed.png", "Speed of the solver.", "fig:speed"),
         _pair("memory.png", "Memory of the solver.", "fig:memory",
               mentions=("Memory grows linearly (Figure <ref>).",))],
        {}, "figure* holding two captioned minipages: two figures", figures=2)


def _latin1_comments() -> SampleProject:
    body = (
        "% \\begin{figure}\\includegraphics{ghost}\\caption{Commented out.}\\end{figure}\n"
        "\\begin{figure}\n\\includegraphics{caf%\n"
        "   e}\n"
        "\\caption{R\u00e9sultats du caf\u00e9: 50\\% plus rapide % a trailing comment\n"
        "que pr\u00e9vu.}\n"
        "\\end{figure}\n"
        "\\begin{verbatim}\n\\begin{figure}\\includegraphics{ghost}\\caption{In verbatim.}"
        "\\end{figure}\n\\end{verbatim}\n"
        "\\begin{comment}\n\\begin{figure}\\includegraphics{ghost}\\caption{In a comment env.}"
        "\\end{figure}\n\\end{comment}\n"
        "\\iffalse\n\\begin{figure}\\includegraphics{ghost}\\caption{Disabled.}\\end{figure}\n\\fi\n"
    )
    return SampleProject(
        "2101.00010",
        {"these.tex": _tex(_doc(body, "\\usepackage[latin1]{inputenc}\n"), "latin-1"),
         "cafe.png": _png(25), "ghost.png": _png(26)},
        [_pair("cafe.png", "R\u00e9sultats du caf\u00e9: 50% plus rapide que pr\u00e9vu.")],
        {}, "Latin-1 encoded .tex; comments, \\% kept, % joining lines inside a file name; "
            "verbatim, comment and \\iffalse blocks ignored", figures=1)


def _old_style_eps() -> SampleProject:
    tex = r"""\documentstyle[epsf,psfig]{article}
\begin{document}
\begin{figure}\epsfig{file=fig1.eps,width=8cm}\caption{Drawn with epsfig.}\end{figure}
\begin{figure}\centerline{\psfig{figure=fig2.ps,height=5cm}}\caption{Drawn with psfig.}\end{figure}
\begin{figure}\epsfxsize=6cm \epsfbox{fig3.eps}\caption{Drawn with epsfbox.}\end{figure}
\end{document}
"""
    return SampleProject(
        "hep-th/9901001",
        {"paper.tex": _tex(tex), "fig1.eps": _eps(27), "fig2.ps": _eps(28), "fig3.eps": _eps(29)},
        [_pair("fig1.eps", "Drawn with epsfig."), _pair("fig2.ps", "Drawn with psfig."),
         _pair("fig3.eps", "Drawn with epsfbox.")],
        {}, "old-style arXiv id, LaTeX 2.09 \\documentstyle, \\epsfig{file=}, "
            "\\psfig{figure=}, \\epsfbox", figures=3)


def _aastex() -> SampleProject:
    body = r"""
\begin{figure}\plotone{f1.eps}\caption{Light curve of the model star.}\label{f1}\end{figure}
\begin{figure}\plottwo{f2a.eps}{f2b.eps}\caption{Two spectra.}\end{figure}
"""
    return SampleProject(
        "2101.00012",
        {"ms.tex": _tex(_doc(body, cls="aastex")), "f1.eps": _eps(30), "f2a.eps": _eps(31),
         "f2b.eps": _eps(32)},
        [_pair("f1.eps", "Light curve of the model star.", "f1")],
        {"multi_graphic_no_subcaption": 1}, "AASTeX \\plotone and \\plottwo (two panels)",
        figures=2)


def _two_mains() -> SampleProject:
    paper = _doc("\\begin{figure}\\includegraphics{shared}\\caption{Main result.}\\end{figure}\n")
    supp = _doc("\\begin{figure}\\includegraphics{shared}\\caption{Main result again.}"
                "\\end{figure}\n\\begin{figure}\\includegraphics{extra}\\caption{Extra run.}"
                "\\end{figure}\n")
    return SampleProject(
        "2101.00013",
        {"paper.tex": _tex(paper), "supplement.tex": _tex(supp), "shared.png": _png(33),
         "extra.png": _png(34)},
        [_pair("shared.png", "Main result."), _pair("extra.png", "Extra run.")],
        {"duplicate_figure_path": 1},
        "two main files (paper + supplement): both processed, figure paths unique", figures=3)


def _import() -> SampleProject:
    main = _doc("\\import{chapters/}{chap1}\n\\begin{figure}\\includegraphics{top}"
                "\\caption{Back at the root.}\\end{figure}\n", "\\usepackage{import}\n")
    chap1 = ("\\begin{figure}\\includegraphics{img/local}\\caption{Relative to the chapter.}"
             "\\end{figure}\n\\subimport{part/}{sec}\n")
    sec = "\\begin{figure}\\includegraphics{deep}\\caption{Two imports deep.}\\end{figure}\n"
    return SampleProject(
        "2101.00014",
        {"main.tex": _tex(main), "chapters/chap1.tex": _tex(chap1),
         "chapters/part/sec.tex": _tex(sec), "chapters/img/local.png": _png(35),
         "chapters/part/deep.png": _png(36), "top.png": _png(37)},
        [_pair("chapters/img/local.png", "Relative to the chapter."),
         _pair("chapters/part/deep.png", "Two imports deep."),
         _pair("top.png", "Back at the root.")],
        {}, "\\import{dir}{file} and \\subimport: inputs and graphics relative to the "
            "imported file's directory", figures=3)


def _resolution_skips() -> SampleProject:
    body = r"""
\begin{figure}\includegraphics{fig16_kepler_data}\caption{Resolved although the case differs.}\end{figure}
\begin{figure}\includegraphics{absent}\caption{The file is not in the package.}\end{figure}
\begin{figure}\includegraphics{chart.mps}\caption{MetaPost output is not an image format.}\end{figure}
\begin{figure}\includegraphics{nocap}\end{figure}
\begin{figure}\begin{tabular}{cc} 1 & 2 \end{tabular}\caption{A table in a figure float.}\end{figure}
"""
    return SampleProject(
        "2101.00015",
        {"main.tex": _tex(_doc(body)), "fig16_Kepler_data.pdf": _pdf(38), "chart.mps": _eps(39),
         "nocap.png": _png(40)},
        [_pair("fig16_Kepler_data.pdf", "Resolved although the case differs.")],
        {"graphic_case_mismatch_resolved": 1, "graphic_not_found": 1,
         "unsupported_graphic_format": 1, "no_caption": 1, "no_graphic": 1},
        "unique case-insensitive match, missing graphic, unsupported format, no caption, "
        "no graphic", figures=5)


def _eps_converted() -> SampleProject:
    pre = "\\DeclareGraphicsExtensions{.jpg,.png}\n"
    body = r"""
\begin{figure}\includegraphics{wave.eps}\caption{Only the epstopdf output is shipped.}\end{figure}
\begin{figure}\includegraphics{both}\caption{DeclareGraphicsExtensions puts JPEG first.}\end{figure}
"""
    return SampleProject(
        "2101.00016",
        {"main.tex": _tex(_doc(body, pre)), "wave-eps-converted-to.pdf": _pdf(41),
         "both.png": _png(42), "both.jpg": _jpg(43)},
        [_pair("wave-eps-converted-to.pdf", "Only the epstopdf output is shipped."),
         _pair("both.jpg", "DeclareGraphicsExtensions puts JPEG first.")],
        {}, "x.eps resolved to x-eps-converted-to.pdf; \\DeclareGraphicsExtensions order",
        figures=2)


def _broken_images() -> SampleProject:
    body = r"""
\begin{figure}\includegraphics{bomb.png}\caption{A decompression bomb.}\end{figure}
\begin{figure}\includegraphics{cut.jpg}\caption{A truncated JPEG.}\end{figure}
"""
    return SampleProject(
        "2101.00017",
        {"main.tex": _tex(_doc(body)), "bomb.png": figures.png_bomb(),
         "cut.jpg": figures.truncated_jpeg(44)},
        [_pair("bomb.png", "A decompression bomb."), _pair("cut.jpg", "A truncated JPEG.")],
        {}, "BROKEN IMAGES (for the image stage): a PNG bomb and a truncated JPEG; the "
            "LaTeX extractor still emits both pairs", figures=2)


def _single_tex() -> SampleProject:
    body = r"""
\begin{figure}\includegraphics{lost}\caption{No image ships with a single .tex.}\label{fig:lost}\end{figure}
See Figure~\ref{fig:lost}.
"""
    return SampleProject(
        "2101.00018", {"main.tex": _tex(_doc(body))}, [], {"graphic_not_found": 1},
        "a single gzipped .tex without images", single_tex=True, figures=1)


def _environments_and_refs() -> SampleProject:
    pre = r"""
\newenvironment{widefig}[1][t]{\begin{figure*}[#1]\centering}{\end{figure*}}
"""
    body = r"""
\begin{widefig}
\includegraphics{wide}
\caption{Made with a user environment.}\label{fig:wide}
\end{widefig}
\begin{figure}\includegraphics{narrow}\caption{Narrow.}\label{fig:narrow}\end{figure}
Both \cref{fig:wide,fig:narrow} are drawn to scale. Only \autoref{fig:narrow} is narrow!
Why is \ref{fig:wide} wide? Because it spans two columns.
"""
    return SampleProject(
        "2101.00019",
        {"main.tex": _tex(_doc(body, pre)), "wide.pdf": _pdf(45), "narrow.png": _png(46)},
        [_pair("wide.pdf", "Made with a user environment.", "fig:wide",
               mentions=("Both <ref> are drawn to scale.", "Why is <ref> wide?")),
         _pair("narrow.png", "Narrow.", "fig:narrow",
               mentions=("Both <ref> are drawn to scale.", "Only <ref> is narrow!"))],
        {}, "\\newenvironment wrapping figure*, multi-key \\cref{a,b}, \\autoref, sentences "
            "ending in ! and ?", figures=2)


def _caption_markup() -> SampleProject:
    body = r"""
\begin{figure}
\includegraphics{markup}
\caption{Error $\epsilon$ vs.\ step size; see Eq.~\eqref{eq:1}, Sec.~\ref{sec:m} and
\citep[e.g.][p.~3]{a,b}. The ratio $\frac{a}{b}$ is \emph{small} and \textit{stable}
(\SI{5}{ms}; \unknownmacro{kept} text).}
\label{fig:markup}
\end{figure}
"""
    return SampleProject(
        "2101.00020", {"main.tex": _tex(_doc(body)), "markup.png": _png(47)},
        [_pair("markup.png", "Error \u03f5 vs. step size; see Eq. <ref>, Sec. <ref> and <cit.>. The "
                             "ratio a/b is small and stable (5ms; kept text).", "fig:markup")],
        {}, "refs, eqref, cites with notes, math, \\frac, emphasis and unknown macros in a "
            "caption", figures=1)


# --- malformed projects -----------------------------------------------------------------------

def _unbalanced() -> SampleProject:
    pre = "\\def\\boom{\\boom\\boom}\n"
    body = r"""
Some \textbf{unclosed bold text in a paragraph.
A stray } closing brace. \boom
\begin{figure}\includegraphics{ok}\caption{Still found.}\end{figure}
\begin{figure}\includegraphics{open}\caption{Never closed
"""
    return SampleProject(
        "2101.00021",
        {"main.tex": _tex(_doc(body, pre)), "ok.png": _png(48), "open.png": _png(49)},
        [_pair("ok.png", "Still found."), _pair("open.png", "Never closed")],
        {"macro_expansion_limit": 1},
        "MALFORMED: unbalanced braces, an unterminated caption and figure, a macro that "
        "expands to itself twice", figures=2)


def _input_loop() -> SampleProject:
    main = _doc("\\input{main}\n\\input{loop}\n\\begin{figure}\\includegraphics{fine}"
                "\\caption{After the loops.}\\end{figure}\n")
    return SampleProject(
        "2101.00022",
        {"main.tex": _tex(main), "loop.tex": _tex("Loop text.\n\\input{loop.tex}\n"),
         "fine.png": _png(50)},
        [_pair("fine.png", "After the loops.")], {"input_cycle": 2},
        "MALFORMED: a main file inputting itself and a file inputting itself", figures=1)


def _megabyte_line() -> SampleProject:
    line = "word " * 210_000
    body = line + "\\begin{figure}\\includegraphics{end}\\caption{At the end of a 1 MB line.}" \
                  "\\end{figure}"
    return SampleProject(
        "2101.00023", {"main.tex": _tex(_doc(body)), "end.png": _png(51)},
        [_pair("end.png", "At the end of a 1 MB line.")], {},
        "MALFORMED: a single line of more than a megabyte", figures=1)


def _no_documentclass() -> SampleProject:
    tex = "\\begin{figure}\\includegraphics{orphan}\\caption{No main file.}\\end{figure}\n"
    return SampleProject(
        "2101.00024", {"fragment.tex": _tex(tex), "orphan.png": _png(52)}, [],
        {"no_main_tex": 1}, "MALFORMED: no file has \\documentclass", figures=0)


_BUILDERS = (
    _basic, _graphicspath, _input_tree, _macros, _subcaption, _subfig_commands, _multi_panel,
    _floats, _two_minipages, _latin1_comments, _old_style_eps, _aastex, _two_mains, _import,
    _resolution_skips, _eps_converted, _broken_images, _single_tex, _environments_and_refs,
    _caption_markup, _unbalanced, _input_loop, _megabyte_line, _no_documentclass,
)


def arxiv_samples() -> list[SampleProject]:
    """The generated arXiv sample projects, in a fixed order (same call, same bytes)."""
    return [build() for build in _BUILDERS]
