"""One sentence splitter for figure mentions, shared by the LaTeX and JATS extractors.

A sentence ends at ``.``, ``!`` or ``?`` (then any closing quotes or brackets) followed by
white space, unless

* the next character is a lower-case letter ("... vs. controls", "... etc. and so on"), or
* the punctuation is a period after an abbreviation ("Fig.", "et al.", "e.g.", "i.e.",
  "Eq.", ...; :data:`ABBREVIATIONS`) or after a single capital initial ("J. Smith").

"etc." is not in the list: followed by a capital it ends its sentence ("..., etc. The
results"), followed by a lower-case word it does not (the first rule). A decimal point
("2.5") is never a boundary (no white space follows it).

The LaTeX extractor applies the rule to raw LaTeX (where a paragraph break, a sectioning
command or ``\\item`` also ends a sentence); the JATS extractor to the plain text of a
``<p>``. Both therefore cut the same prose into the same sentences.
"""

from __future__ import annotations

import re

# Compared lower-case, without the final period.
ABBREVIATIONS = frozenset({
    "fig", "figs", "eq", "eqs", "eqn", "eqns", "ref", "refs", "al", "e.g", "i.e", "vs", "cf",
    "c.f", "w.r.t", "approx", "ca", "resp", "viz", "no", "nos", "vol", "pp", "suppl", "sect",
    "sec", "secs", "tab", "app", "dr", "prof", "mr", "mrs", "ms", "st", "inc", "ltd", "co",
    "corp", "jr", "sr", "sp", "spp", "ssp", "subsp", "cv", "var", "aff", "incl", "nov", "ph.d",
    "et", "ext", "chap", "ch", "p", "ed", "eds", "fn", "lit", "thm", "def", "prop", "lem",
})

# punctuation (group 1), closing quotes/brackets, then the white space after it
PUNCT_END = r"([.!?])[\"'\u2019\u201d)\]]*\s+"
_PUNCT_END = re.compile(PUNCT_END)
_WORD_BEFORE = re.compile(r"(?:[^\W\d_]|\.)+$")


def is_sentence_end(text: str, punct: int, after: int) -> bool:
    """Whether the ``.``/``!``/``?`` at ``punct``, whose white space ends at ``after``,
    ends a sentence."""
    nxt = text[after:after + 1]
    if nxt and nxt.islower():
        return False
    if text[punct] != ".":
        return True
    w = _WORD_BEFORE.search(text, max(0, punct - 20), punct)
    if w is None:
        return True
    word = w.group(0)
    return not (word.lower().rstrip(".") in ABBREVIATIONS or (len(word) == 1 and word.isupper()))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of plain text, each ending after its punctuation
    and closing quotes (white space between sentences belongs to neither)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _PUNCT_END.finditer(text):
        if not is_sentence_end(text, m.start(1), m.end()):
            continue
        end = m.end(0) - len(m.group(0)) + len(m.group(0).rstrip())
        spans.append((start, end))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans
