"""KG-derived texts for kept pairs (EntityNet's text augmentation), as a sidecar.

For each kept pair and each entity it matched, candidate texts are built from the
pair's caption (the first ``--text-columns`` column, normally ``text``):

* ``alias``: the entity's name as found in the caption replaced by another of its
  names (label or alias);
* ``type``: the name replaced by one of the entity's types (its hypernym);
* ``description``: ``"<label>, <description>"`` from the knowledge graph.

A name is found where MetaCLIP's rule would match it (delimited by the text's start or
end, white space or ``, . ; : ? ! ```), case-insensitively under ``--casefold``.
EntityNet trains on the alt-text with probability 0.5 and otherwise on a KG text,
alias swaps (0.6), types (0.2), descriptions (0.1) and attribute variants (0.1, not
built here); ``reshard --text-from kg_captions`` makes that choice per uid
(:mod:`datacomp_sci.resharding.textmix`).

The sidecar ``OUTPUT.kg_captions.parquet`` has one row per candidate: ``uid``,
``entity`` (id), ``kind``, ``text``, sorted by uid, kind, entity, text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from datacomp_sci.core.util import atomic_open

if TYPE_CHECKING:
    from datacomp_sci.curation.curate import Concepts, ConceptSource, MatchUnit

KG_CAPTIONS_SCHEMA = pa.schema([
    pa.field("uid", pa.string()), pa.field("entity", pa.string()),
    pa.field("kind", pa.string()), pa.field("text", pa.string()),
])
KINDS = ("alias", "type", "description")
MAX_PER_ENTITY = 8  # candidates of one kind per entity (bounds hostile alias lists)
_DELIM = r"[ \t\n\r,.;:?!`]"


def _name_pattern(name: str, casefold: bool) -> re.Pattern:
    flags = re.IGNORECASE if casefold else 0
    return re.compile(rf"(?:^|(?<={_DELIM})){re.escape(name)}(?={_DELIM}|$)", flags)


def candidates(caption: str, entity, casefold: bool) -> list[tuple[str, str]]:
    """(kind, text) candidates of one entity for one caption."""
    out: list[tuple[str, str]] = []
    found = None
    for name in entity.names:
        m = _name_pattern(name, casefold).search(caption)
        if m:
            found = m
            break
    if found is not None:
        a, b = found.span()
        used = caption[a:b]
        swaps = [n for n in entity.names if n.casefold() != used.casefold()]
        for n in swaps[:MAX_PER_ENTITY]:
            out.append(("alias", caption[:a] + n + caption[b:]))
        for t in entity.types[:MAX_PER_ENTITY]:
            if t.casefold() != used.casefold():
                out.append(("type", caption[:a] + t + caption[b:]))
    if entity.description:
        out.append(("description", f"{entity.label}, {entity.description}"))
    return out


def write_kg_captions(path: Path, kept: list[tuple[MatchUnit, np.ndarray]], src: ConceptSource,
                      concepts: Concepts) -> dict[str, Any]:
    """Write the candidates of every kept pair; returns counts per kind."""
    from datacomp_sci.core.uids import u8u8_to_uids
    from datacomp_sci.curation.curate import read_sidecar
    from datacomp_sci.curation.entities import load_entities, select_entities

    chosen = select_entities(load_entities(src.path), src.min_sitelinks, src.types)
    rows: dict[str, list] = {k: [] for k in KG_CAPTIONS_SCHEMA.names}
    pairs_without = 0
    for unit, keep in kept:
        m = read_sidecar(unit)
        if m is None or not keep.any():
            continue
        column = unit.text_columns[0]
        table = pq.read_table(unit.metadata_file, columns=["uid", column]) \
            if column in pq.read_schema(unit.metadata_file).names else None
        if table is None:
            pairs_without += int(keep.sum())
            continue
        table = table.filter(pa.array(table.column("uid").is_valid()))
        captions = table.column(column)
        kept_rows = np.flatnonzero(keep)
        uids = u8u8_to_uids(_u8u8(m.uid_hi[kept_rows], m.uid_lo[kept_rows]))
        for uid, r in zip(uids, kept_rows, strict=True):
            caption = captions[int(r)].as_py()
            if not isinstance(caption, str):
                pairs_without += 1
                continue
            made = 0
            for c in m.concepts[m.offsets[r]:m.offsets[r + 1]]:
                ent = chosen[int(c)]
                for kind, text in candidates(caption, ent, src.casefold):
                    rows["uid"].append(uid)
                    rows["entity"].append(ent.id)
                    rows["kind"].append(kind)
                    rows["text"].append(text)
                    made += 1
            pairs_without += made == 0
    out = pa.table(rows, schema=KG_CAPTIONS_SCHEMA).sort_by(
        [("uid", "ascending"), ("kind", "ascending"), ("entity", "ascending"),
         ("text", "ascending")])
    with atomic_open(path) as f:
        pq.write_table(out, f, compression="zstd")
    kinds = out.column("kind").to_pylist()
    return {"candidates": out.num_rows, "pairs_without_candidates": pairs_without,
            **{f"candidates_{k}": kinds.count(k) for k in KINDS}}


def _u8u8(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    from datacomp_sci.core.uids import SUBSET_DTYPE

    arr = np.empty(len(hi), dtype=SUBSET_DTYPE)
    arr["f0"], arr["f1"] = hi, lo
    return arr
