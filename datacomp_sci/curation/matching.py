"""MetaCLIP's substring matching, through one Aho-Corasick automaton (pyahocorasick).

The rule (docs/formats.md, "MetaCLIP curation"): a text is *spaced* (a space on each
side; a space on each side of ``, . ; : ? ! ``` ``; tab, newline and carriage return
turned into spaces) and an entry matches where ``" " + entry + " "`` occurs in it,
case-sensitively. Every entry whose spaced form occurs is reported once per text, as
MetaCLIP's naive loop ``[i for i, e in enumerate(spaced_entries) if e in text]`` does
(overlapping matches included: " a b " and " b c " both match " a b c ").

Speed: a batch of texts is joined by NUL and spaced with a few ``str.replace`` passes
over the whole batch (NUL becomes ``" \\n "``, so every text keeps its own padding and
texts are separated by a newline that no spaced text contains), scanned with one
automaton ``iter`` call whose (end, key) pairs go straight into a NumPy array, and the
match ends are mapped back to texts with ``np.searchsorted`` over the newline positions.
Entries containing a newline, tab or carriage return can never match a spaced text and
are left out of the automaton, so no match can straddle two texts. A batch with a NUL
inside a text is scanned text by text instead. Results are identical either way.

Several keys may name the same concept and one key may name several concepts (a
repeated metadata entry; a knowledge-graph alias shared by two entities): the automaton
maps a key to a key id, and ``key_concepts`` (CSR) maps key ids to concept ids.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PUNCTS_TO_WRAP = (",", ".", ";", ":", "?", "!", "`")
CHARS_TO_SPACE = ("\t", "\n", "\r")
_SEP = "\x00"


def spacing(text: str) -> str:
    """MetaCLIP's spaced form of a text (the same string its ``spacing`` returns)."""
    spaced = f" {text} "
    for p in PUNCTS_TO_WRAP:
        spaced = spaced.replace(p, f" {p} ")
    for c in CHARS_TO_SPACE:
        spaced = spaced.replace(c, " ")
    return spaced


def load_entries(path: str | Path) -> list[str]:
    """MetaCLIP metadata: a JSON list of strings (``metadata.json``), or a text file with
    one entry per line (blank lines skipped; the entry is the line without its newline,
    spaces kept, since they are part of what is matched)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"metadata file {path} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e})") from e
    if text.lstrip().startswith("["):
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: looks like JSON but does not parse ({e})") from e
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ValueError(f"{path}: MetaCLIP metadata must be a JSON list of strings")
    else:
        entries = [line.rstrip("\r") for line in text.split("\n")]
        entries = [e for e in entries if e.strip()]
    if not entries:
        raise ValueError(f"{path}: no entries")
    return entries


@dataclass
class Matches:
    """Matches of a batch of texts: ``text`` index and ``concept`` id, one row per
    distinct (text, concept), sorted by text then concept."""

    text: np.ndarray  # int64
    concept: np.ndarray  # int32


class Matcher:
    """An Aho-Corasick automaton over spaced keys, mapping matches to concept ids."""

    def __init__(self, keys: list[str], key_concepts: list[list[int]] | None = None,
                 casefold: bool = False):
        from datacomp_sci.core.deps import require

        ahocorasick = require("ahocorasick")
        self.casefold = casefold
        self.automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        # spaced key -> key id; repeated keys share the first id and its concepts merge
        first: dict[str, int] = {}
        concepts: list[list[int]] = []
        for i, key in enumerate(keys):
            if casefold:
                key = key.casefold()
            if any(c in key for c in CHARS_TO_SPACE):
                continue  # can never occur in a spaced text
            owned = key_concepts[i] if key_concepts is not None else [i]
            spaced = f" {key} "
            if spaced in first:
                concepts[first[spaced]].extend(owned)
                continue
            first[spaced] = len(concepts)
            concepts.append(list(owned))
            self.automaton.add_word(spaced, first[spaced])
        self.n_keys = len(concepts)
        distinct = [sorted(set(c)) for c in concepts]
        lengths = np.fromiter((len(c) for c in distinct), dtype=np.int64, count=len(distinct))
        self.offsets = np.zeros(len(distinct) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        self.concepts = np.fromiter(itertools.chain.from_iterable(distinct), dtype=np.int32,
                                    count=int(self.offsets[-1]))
        self.one_to_one = bool((lengths == 1).all()
                               and np.array_equal(self.concepts, np.arange(len(distinct))))
        if self.n_keys:
            self.automaton.make_automaton()

    def _scan(self, spaced: str) -> np.ndarray:
        """(end, key id) pairs of every occurrence, as a (k, 2) int64 array."""
        if not self.n_keys:
            return np.empty((0, 2), dtype=np.int64)
        flat = np.fromiter(itertools.chain.from_iterable(self.automaton.iter(spaced)),
                           dtype=np.int64)
        return flat.reshape(-1, 2)

    def match(self, texts: list[str | None]) -> Matches:
        """Match a batch of texts (None: no text, no match)."""
        if None in texts:
            idx = np.fromiter((i for i, t in enumerate(texts) if t is not None), dtype=np.int64)
            present = [texts[i] for i in idx.tolist()]
        else:
            idx, present = None, texts
        joined = _SEP.join(present)  # type: ignore[arg-type]
        if self.casefold:
            joined = joined.casefold()
        if not present:
            text_idx, keys = np.empty(0, np.int64), np.empty(0, np.int64)
        elif joined.count(_SEP) == len(present) - 1:
            spaced = _space_joined(joined)
            hits = self._scan(spaced)
            # text k of the batch lies between newline k-1 and newline k
            codes = np.frombuffer(spaced.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            newlines = np.flatnonzero(codes == 10)
            text_idx = np.searchsorted(newlines, hits[:, 0])
            keys = hits[:, 1]
        else:  # a text holds a NUL: scan text by text
            parts_t, parts_k = [], []
            for i, t in enumerate(present):
                h = self._scan(spacing(t.casefold() if self.casefold else t))  # type: ignore[union-attr]
                parts_t.append(np.full(len(h), i, dtype=np.int64))
                parts_k.append(h[:, 1])
            text_idx = np.concatenate(parts_t)
            keys = np.concatenate(parts_k)
        if idx is not None:
            text_idx = idx[text_idx]
        return self._to_concepts(text_idx, keys)

    def _to_concepts(self, text_idx: np.ndarray, keys: np.ndarray) -> Matches:
        if self.one_to_one:
            concept = keys
            text = text_idx
        else:
            counts = self.offsets[keys + 1] - self.offsets[keys]
            text = np.repeat(text_idx, counts)
            starts = np.repeat(self.offsets[keys], counts)
            within = np.arange(len(text)) - np.repeat(np.cumsum(counts) - counts, counts)
            concept = self.concepts[starts + within]
        pair = distinct_sorted(text.astype(np.int64) << 32 | concept.astype(np.int64))
        return Matches(text=(pair >> 32).astype(np.int64),
                       concept=(pair & 0xFFFFFFFF).astype(np.int32))


def distinct_sorted(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (``np.unique`` without its overhead)."""
    keys = np.sort(keys)
    if len(keys) > 1:
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    return keys


def _space_joined(joined: str) -> str:
    """MetaCLIP's spacing of every text of a NUL-joined batch, texts separated by a newline
    (``str.replace`` passes: much faster than ``str.translate`` with a dict)."""
    for p in PUNCTS_TO_WRAP:
        joined = joined.replace(p, f" {p} ")
    for c in CHARS_TO_SPACE:
        joined = joined.replace(c, " ")
    return f" {joined.replace(_SEP, ' ' + chr(10) + ' ')} "


def naive_match(text: str | None, entries: list[str]) -> list[int]:
    """MetaCLIP's reference loop (for tests and the benchmark's baseline)."""
    if text is None:
        return []
    spaced = spacing(text)
    return [i for i, e in enumerate(entries) if f" {e} " in spaced]
