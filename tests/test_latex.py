"""LaTeX figure-caption extraction: the generated sample corpus and each construct."""

from __future__ import annotations

import pytest
from helpers import hang_guard

from datacomp_sci.extract.latex import (
    LatexOptions,
    decode_tex,
    extract_latex,
    latex_to_text,
    strip_comments,
)
from datacomp_sci.samplegen.arxiv import arxiv_samples

FIELDS = ("figure_path", "caption", "label", "parent_caption", "mentions")
PNG = b"\x89PNG\r\n\x1a\n fake"


def pairs(result) -> list[dict]:
    return [{k: getattr(p, k) for k in FIELDS} for p in result.pairs]


def doc(body: str, preamble: str = "") -> bytes:
    return (f"\\documentclass{{article}}\n{preamble}\\begin{{document}}\n{body}\n"
            f"\\end{{document}}\n").encode()


@pytest.fixture(scope="module")
def samples():
    return arxiv_samples()


# --- the sample corpus ------------------------------------------------------------------

def test_every_sample_project_gives_exactly_the_expected_pairs_and_skips(samples):
    for s in samples:
        result = extract_latex(s.files, s.paper_id)
        assert pairs(result) == s.expected, s.paper_id
        assert result.skipped == s.expected_skips, s.paper_id
        assert result.figures_found == s.figures, s.paper_id
        assert result.paper_id == s.paper_id


def test_keep_multi_panel_keeps_each_panel_with_the_shared_caption(samples):
    s = next(x for x in samples if x.paper_id == "2101.00007")
    result = extract_latex(s.files, s.paper_id, LatexOptions(keep_multi_panel=True))
    mention = ["Figures <ref> and <ref> differ."]
    assert pairs(result) == [
        {"figure_path": "a.png", "caption": "Two panels, one shared caption.",
         "label": "fig:ab", "parent_caption": None, "mentions": mention},
        {"figure_path": "b.png", "caption": "Two panels, one shared caption.",
         "label": "fig:ab", "parent_caption": None, "mentions": mention},
        {"figure_path": "c.png", "caption": "A single panel.", "label": "fig:c",
         "parent_caption": None, "mentions": mention},
    ]
    assert result.skipped == {"multi_panel_kept": 1}


def test_custom_tokens(samples):
    s = samples[0]
    result = extract_latex(s.files, s.paper_id, LatexOptions(ref_token="[R]", cit_token="[C]"))
    assert result.pairs[0].caption == "Training loss for α = 0.5 over 10 epochs [C]."
    assert result.pairs[0].mentions[0] == "As shown in Figure [R], the training loss falls " \
                                          "within a few epochs."


# --- reading and comments ----------------------------------------------------------------

def test_strip_comments_keeps_escaped_percent_and_joins_lines():
    assert strip_comments("50\\% done % note\nnext") == "50\\% done next"
    assert strip_comments("fig%\n    ure") == "figure"
    assert strip_comments("a\\\\% comment\nb") == "a\\\\b"
    assert strip_comments("\\verb|%x| y % z\nw") == "\\verb|%x| y w"
    assert strip_comments("a\\begin{comment}\n%\\x\n\\end{comment}b") == "ab"
    assert strip_comments("a\\iffalse x \\ifdim y \\fi z \\fi b") == "a b"


def test_decode_tex_falls_back_to_latin1():
    assert decode_tex("café".encode()) == "café"
    assert decode_tex("café".encode("latin-1")) == "café"


# --- captions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("latex, text", [
    (r"\textbf{Bold} and \emph{it}~here", "Bold and it here"),
    (r"see \ref{a}, \autoref{b}, \cref{c,d}, \Cref{e}, \eqref{f}, \pageref{g}",
     "see <ref>, <ref>, <ref>, <ref>, <ref>, <ref>"),
    (r"\cite{x} \citep[p.~2]{y} \citet{z} \citeauthor{w}", "<cit.> <cit.> <cit.> <cit.>"),
    (r"$\alpha = 0.5$ and $\mathbf{x}_i$", "α = 0.5 and x_i"),
    (r"A\label{fig:x} B \texttt{code} \unknown{kept}", "A B code kept"),
    ("line one\n\n   line   two", "line one line two"),
])
def test_latex_to_text(latex, text):
    assert latex_to_text(latex) == text


def test_caption_short_form_is_ignored_and_long_caption_kept():
    files = {"m.tex": doc(r"\begin{figure}\includegraphics{a}\caption[Short]{The [long] one}"
                          r"\end{figure}"), "a.png": PNG}
    assert pairs(extract_latex(files, "x"))[0]["caption"] == "The [long] one"


# --- macros ---------------------------------------------------------------------------------------

def test_macros_with_arguments_and_optional_default_build_paths():
    pre = (r"\newcommand{\img}[2][figs]{\includegraphics{#1/#2}}"
           r"\def\panel#1{\img{p#1}}\newcommand\cap[1]{Panel #1 of \total}\def\total{three}")
    body = (r"\begin{figure}\panel{1}\caption{\cap{one}}\end{figure}"
            r"\begin{figure}\img[other]{q}\caption{Other}\end{figure}")
    files = {"m.tex": doc(body, pre), "figs/p1.png": PNG, "other/q.pdf": b"%PDF"}
    got = pairs(extract_latex(files, "x"))
    assert [(p["figure_path"], p["caption"]) for p in got] == [
        ("figs/p1.png", "Panel one of three"), ("other/q.pdf", "Other")]


def test_user_macros_cannot_redefine_what_the_extractor_needs():
    pre = r"\renewcommand{\caption}[1]{nothing}\def\ref#1{X}\let\includegraphics\relax"
    body = r"\begin{figure}\includegraphics{a}\caption{Kept}\label{f}\end{figure} See \ref{f}."
    got = pairs(extract_latex({"m.tex": doc(body, pre), "a.png": PNG}, "x"))
    assert got == [{"figure_path": "a.png", "caption": "Kept", "label": "f",
                    "parent_caption": None, "mentions": ["See <ref>."]}]


def test_self_reproducing_macros_are_bounded():
    pre = r"\def\a{\a\a}\def\b{x\b}"
    body = r"\a \b \begin{figure}\includegraphics{a}\caption{Fine}\end{figure}"
    with hang_guard():
        result = extract_latex({"m.tex": doc(body, pre), "a.png": PNG}, "x")
    assert result.skipped == {"macro_expansion_limit": 1}
    assert [p.caption for p in result.pairs] == ["Fine"]


def test_local_sty_macros_are_used_but_not_internal_code():
    sty = (rb"\newcommand{\figpath}{plots/}" b"\n" rb"\def\citep{\NAT@citex}"
           b"\n" rb"\newcommand{\internal}{\@gobble}")
    body = r"\begin{figure}\includegraphics{\figpath a}\caption{See \citep{k}}\end{figure}"
    files = {"m.tex": doc(body, r"\usepackage{mine}"), "mine.sty": sty, "plots/a.png": PNG}
    assert pairs(extract_latex(files, "x"))[0]["caption"] == "See <cit.>"
    assert pairs(extract_latex(files, "x"))[0]["figure_path"] == "plots/a.png"


# --- graphics ------------------------------------------------------------------------------------

def test_extension_order_follows_pdftex():
    files = {"m.tex": doc(r"\begin{figure}\includegraphics{a}\caption{c}\end{figure}"),
             "a.eps": b"%!PS", "a.jpg": b"\xff\xd8", "a.png": PNG}
    assert extract_latex(files, "x").pairs[0].figure_path == "a.png"
    del files["a.png"]
    assert extract_latex(files, "x").pairs[0].figure_path == "a.jpg"
    del files["a.jpg"]
    assert extract_latex(files, "x").pairs[0].figure_path == "a.eps"


def test_graphicspath_and_main_in_subdirectory():
    files = {"paper/m.tex": doc(r"\begin{figure}\includegraphics{a}\caption{c}\end{figure}",
                                r"\graphicspath{{img/}}"), "paper/img/a.png": PNG,
             "img/a.png": PNG}
    assert extract_latex(files, "x").pairs[0].figure_path == "paper/img/a.png"


def test_ambiguous_case_insensitive_match_is_not_resolved():
    files = {"m.tex": doc(r"\begin{figure}\includegraphics{a}\caption{c}\end{figure}"),
             "A.png": PNG, "A.PNG": PNG}
    result = extract_latex(files, "x")
    assert result.pairs == [] and result.skipped == {"graphic_not_found": 1}


def test_graphic_outside_project_root_is_not_found():
    files = {"m.tex": doc(r"\begin{figure}\includegraphics{../x/a.png}\caption{c}\end{figure}"),
             "x/a.png": PNG}
    assert extract_latex(files, "x").skipped == {"graphic_not_found": 1}


# --- sub-figures and figure units --------------------------------------------------------------

def test_subfigures_mixing_captioned_and_uncaptioned_panels():
    body = (r"\begin{figure}\subfloat[Has one]{\includegraphics{a}}"
            r"\subfloat{\includegraphics{b}}\caption{Parent}\end{figure}")
    files = {"m.tex": doc(body), "a.png": PNG, "b.png": PNG}
    result = extract_latex(files, "x")
    assert [(p.figure_path, p.caption, p.parent_caption) for p in result.pairs] == [
        ("a.png", "Has one", "Parent")]
    assert result.skipped == {"multi_graphic_no_subcaption": 1}


def test_caption_above_graphics_segments_by_caption():
    body = (r"\begin{figure}\caption{First}\label{f1}\includegraphics{a}"
            r"\caption{Second}\label{f2}\includegraphics{b}\end{figure}")
    got = extract_latex({"m.tex": doc(body), "a.png": PNG, "b.png": PNG}, "x")
    assert [(p.figure_path, p.caption, p.label) for p in got.pairs] == [
        ("a.png", "First", "f1"), ("b.png", "Second", "f2")]
    assert got.figures_found == 2


def test_subfile_uses_only_the_child_document_body():
    child = (b"\\documentclass[main.tex]{subfiles}\n\\begin{document}\n\\begin{figure}"
             b"\\includegraphics{a}\\caption{Child}\\end{figure}\n\\end{document}\n")
    files = {"main.tex": doc(r"\subfile{child}"), "child.tex": child, "a.png": PNG}
    result = extract_latex(files, "x")
    assert [p.caption for p in result.pairs] == ["Child"] and result.skipped == {}


# --- mentions --------------------------------------------------------------------------------------

def test_mentions_are_sentences_in_order_deduplicated_and_outside_floats():
    body = (r"\section{Results} Figure~\ref{f} is first. Other text. "
            "Again \\ref{f} here, i.e. twice \\ref{f}.\n\n\\subsection{More}A new paragraph "
            r"cites Figs.~\ref{g} and \ref{f}."
            r"\begin{figure}\includegraphics{a}\caption{Cap \ref{f}}\label{f}\end{figure}")
    got = pairs(extract_latex({"m.tex": doc(body), "a.png": PNG}, "x"))
    assert got[0]["mentions"] == ["Figure <ref> is first.", "Again <ref> here, i.e. twice <ref>.",
                                  "A new paragraph cites Figs. <ref> and <ref>."]
    assert got[0]["caption"] == "Cap <ref>"


# --- hostile input ----------------------------------------------------------------------------------

def test_oversized_tex_is_skipped_unread():
    big = doc("x" * 3_000_000)
    with hang_guard():
        result = extract_latex({"m.tex": big}, "x", LatexOptions(max_tex_bytes=1_000_000))
    assert result.skipped == {"tex_too_large": 1, "no_main_tex": 1}


def test_expansion_beyond_max_tex_bytes_is_cut_and_counted():
    pre = r"\def\x{0123456789}\def\y{\x\x\x\x\x\x\x\x\x\x}\def\z{\y\y\y\y\y\y\y\y\y\y}"
    body = r"\begin{figure}\includegraphics{a}\caption{c}\end{figure}" + r"\z" * 2000
    result = extract_latex({"m.tex": doc(body, pre), "a.png": PNG}, "x",
                           LatexOptions(max_tex_bytes=100_000))
    assert result.skipped == {"tex_too_large": 1}
    assert [p.figure_path for p in result.pairs] == ["a.png"]


@pytest.mark.parametrize(("body", "want_pairs", "want_skips"), [
    # unbalanced braces: the caption runs to the end of the file, the figure still counts
    ("{" * 20000 + r"\begin{figure}\includegraphics{a}\caption{" + "{" * 5000 + "x}",
     [("a.png", "x")], {}),
    # stray closing braces and \end{figure}s; the one real figure has no caption
    ("}" * 20000 + r"\end{figure}\end{figure}\begin{figure}\includegraphics{a}",
     [], {"no_caption": 1}),
    # thousands of figure environments, none with a graphic (counted once per paper)
    (r"\begin{figure}\caption" * 5000, [], {"no_graphic": 1}),
    # definitions and inputs without arguments: nothing to expand or read
    (r"\newcommand" * 3000 + r"\def" * 3000 + r"\input" * 3000, [], {}),
    ("\\" * 100001, [], {}),
    # an optional argument that never closes: no graphic is found
    (r"\begin{figure}\includegraphics[" + "[" * 50000, [], {"no_graphic": 1}),
])
def test_hostile_input_finishes_without_crashing(body, want_pairs, want_skips):
    with hang_guard():
        result = extract_latex({"m.tex": doc(body), "a.png": PNG}, "x")
    assert [(p.figure_path, p.caption) for p in result.pairs] == want_pairs
    assert result.skipped == want_skips


def test_output_is_deterministic(samples):
    s = samples[5]
    a, b = extract_latex(s.files, s.paper_id), extract_latex(s.files, s.paper_id)
    assert pairs(a) == pairs(b) and a.skipped_items == b.skipped_items


# --- hostile input: bounds on work, not only on depth -----------------------------------

def _peak_bytes(fn):
    import tracemalloc

    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_argument_doubling_recursion_is_bounded_by_expanded_size():
    pre = r"\def\x#1{\x{#1#1}}"
    body = r"\begin{figure}\includegraphics{a}\caption{Fine \x{ab}}\end{figure}"
    opts = LatexOptions(max_expansions=30, max_expansion_bytes=1_000_000)
    result, peak = _peak_bytes(lambda: extract_latex({"m.tex": doc(body, pre), "a.png": PNG},
                                                     "x", opts))
    assert result.skipped["macro_expansion_limit"] == 1
    assert peak < 50_000_000  # 2**30 characters without the bound
    assert [p.figure_path for p in result.pairs] == ["a.png"]


def test_input_fan_out_is_bounded_by_a_total_input_count():
    files = {f"s{i}.tex": (rf"\input{{s{i + 1}}}\input{{s{i + 1}}}x").encode()
             for i in range(1, 40)}
    files["s40.tex"] = b"leaf "
    files["m.tex"] = doc(r"\input{s1}\begin{figure}\includegraphics{a}\caption{C}\end{figure}")
    files["a.png"] = PNG
    result = extract_latex(files, "x", LatexOptions(max_inputs=500))
    assert result.skipped == {"input_limit": 1}  # 2**40 splices without the bound
    assert [p.figure_path for p in result.pairs] == ["a.png"]


def test_main_files_per_paper_are_capped_and_counted():
    files = {f"m{i:05d}.tex": doc(rf"\begin{{figure}}\includegraphics{{a{i}}}\caption{{C}}"
                                  r"\end{figure}") for i in range(30)}
    files.update({f"a{i}.png": PNG for i in range(30)})
    result = extract_latex(files, "x", LatexOptions(max_main_files=10))
    assert result.skipped == {"too_many_main_files": 1}
    assert len(result.pairs) == 10


def test_expanded_source_is_bounded_per_paper_not_per_main_file():
    big = "word " * 30_000
    files = {f"m{i}.tex": doc(big) for i in range(5)}
    result = extract_latex(files, "x", LatexOptions(max_tex_bytes=400_000))
    assert result.skipped == {"tex_too_large": 1}  # the third main file reaches the bound


# --- \includegraphics[page=N] and clip ---------------------------------------------------

def test_pages_of_one_pdf_are_distinct_figures_with_page_in_their_path():
    body = (r"\begin{figure}\includegraphics[page=1]{x.pdf}\caption{One}\end{figure}"
            r"\begin{figure}\includegraphics[width=3cm,page=2]{x}\caption{Two}\end{figure}"
            r"\begin{figure}\includegraphics[page=2]{x.pdf}\caption{Again}\end{figure}")
    result = extract_latex({"m.tex": doc(body), "x.pdf": b"%PDF-1.4"}, "p")
    assert [(p.figure_path, p.file_path, p.page, p.caption) for p in result.pairs] == [
        ("x.pdf", "x.pdf", 1, "One"), ("x.pdf#page=2", "x.pdf", 2, "Two")]
    assert result.skipped == {"duplicate_figure_path": 1}


@pytest.mark.parametrize("options, star, expected", [
    ("page=3", False, (3, None)),
    ("viewport=10 20 110 120, clip", False, (1, ("viewport", 10, 20, 110, 120))),
    ("viewport=10 20 110 120", False, (1, None)),  # no clip: graphicx prints the whole page
    ("trim=1in 0 0 2cm, clip=true", False, (1, ("trim", 72, 0, 0, 72 / 2.54 * 2))),
    ("trim={1 2 3 4}", True, (1, ("trim", 1, 2, 3, 4))),
    ("viewport=1 2 3, clip", False, (1, None)),
    ("page=x,clip", False, (1, None)),
])
def test_includegraphics_page_and_clip_options(options, star, expected):
    from datacomp_sci.extract.latex import graphic_page_and_clip

    page, clip = graphic_page_and_clip(options, star)
    assert page == expected[0]
    if expected[1] is None:
        assert clip is None
    else:
        assert clip[0] == expected[1][0] and clip[1:] == pytest.approx(expected[1][1:])


def test_clip_applies_to_pdf_figures_only():
    body = r"\begin{figure}\includegraphics[page=2,viewport=0 0 1 1,clip]{a}\caption{C}\end{figure}"
    (pair,) = extract_latex({"m.tex": doc(body), "a.png": PNG}, "p").pairs
    assert (pair.figure_path, pair.page, pair.clip) == ("a.png", 1, None)
