"""One sentence rule for LaTeX and JATS mentions (datacomp_sci.extract.sentences)."""

from __future__ import annotations

import pytest

from datacomp_sci.extract.jats import extract_jats
from datacomp_sci.extract.latex import extract_latex
from datacomp_sci.extract.sentences import split_sentences

PNG = b"\x89PNG\r\n\x1a\n fake"


def spans(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


@pytest.mark.parametrize("text, expected", [
    ("We used A, B, etc. The result holds.", ["We used A, B, etc.", "The result holds."]),
    ("We used A, B, etc. for the rest.", ["We used A, B, etc. for the rest."]),
    ("See Fig. 3 and Eq. 2. Then stop.", ["See Fig. 3 and Eq. 2.", "Then stop."]),
    ("Smith et al. Found it.", ["Smith et al. Found it."]),
    ("J. Doe agreed. Émile did not!", ["J. Doe agreed.", "Émile did not!"]),
    ("It rose 2.5-fold. (Next) one.", ["It rose 2.5-fold.", "(Next) one."]),
    ("Why? \"Because.\" Yes.", ["Why?", "\"Because.\"", "Yes."]),
])
def test_sentence_rule(text, expected):
    assert spans(text) == expected


PROSE = ("We measured A, B, etc. The growth in {ref} rose. "
         "Plants, e.g. maize, grew (see {ref}), i.e. fast. Done etc. and more.")


def _latex_mentions(prose: str) -> list[str]:
    body = prose.format(ref=r"Figure~\ref{f1}") + (
        "\n\n\\begin{figure}\\includegraphics{a}\\caption{Cap}\\label{f1}\\end{figure}")
    tex = (f"\\documentclass{{article}}\\begin{{document}}\n{body}\n\\end{{document}}").encode()
    (pair,) = extract_latex({"m.tex": tex, "a.png": PNG}, "x", ).pairs
    return pair.mentions


def _jats_mentions(prose: str) -> list[str]:
    body = prose.format(ref='<xref ref-type="fig" rid="f1">Figure &lt;ref&gt;</xref>')
    xml = (f'<article><body><p>{body}</p><fig id="f1"><caption><p>Cap</p></caption>'
           '<graphic xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="a"/></fig>'
           "</body></article>").encode()
    (pair,) = extract_jats({"P/P.nxml": xml, "P/a.jpg": b"j"}, "P").pairs
    return pair.mentions


def test_latex_and_jats_mentions_split_the_same_prose_alike():
    latex, jats = _latex_mentions(PROSE), _jats_mentions(PROSE)
    assert latex == jats == ["The growth in Figure <ref> rose.",
                             "Plants, e.g. maize, grew (see Figure <ref>), i.e. fast."]
