"""Knowledge-graph entities as concepts (EntityNet-style curation).

An entities file is JSON lines, one entity per line (docs/formats.md, "Knowledge-graph
entities"): ``id`` (e.g. a Wikidata QID), ``label``, ``aliases`` (list), ``description``,
``types`` (labels of its instance-of / subclass-of ancestors) and optional ``sitelinks``
(number of Wikipedia articles). Labels and aliases are the keys matched (with MetaCLIP's
spacing rule); a key that names several entities (a shared alias) counts for each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datacomp_sci.curation.curate import Concepts, ConceptSource

MAX_LINE = 1 << 20  # bytes; longer lines are hostile input


@dataclass
class Entity:
    id: str
    label: str
    aliases: list[str] = field(default_factory=list)
    description: str | None = None
    types: list[str] = field(default_factory=list)
    sitelinks: int | None = None

    @property
    def names(self) -> list[str]:
        seen: dict[str, None] = {}
        for n in [self.label, *self.aliases]:
            if n and n.strip():
                seen.setdefault(n, None)
        return list(seen)

    def to_json(self) -> dict:
        out = {"id": self.id, "label": self.label, "aliases": self.aliases,
               "description": self.description, "types": self.types}
        if self.sitelinks is not None:
            out["sitelinks"] = self.sitelinks
        return out


def _str_list(value, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: `{key}` must be a list of strings")
    return value


def parse_entity(obj, where: str) -> Entity:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: each line must be a JSON object")
    eid, label = obj.get("id"), obj.get("label")
    if not isinstance(eid, str) or not eid or not isinstance(label, str) or not label.strip():
        raise ValueError(f"{where}: an entity needs a non-empty string `id` and `label`")
    desc = obj.get("description")
    if desc is not None and not isinstance(desc, str):
        raise ValueError(f"{where}: `description` must be a string")
    sitelinks = obj.get("sitelinks")
    if sitelinks is not None and (isinstance(sitelinks, bool) or not isinstance(sitelinks, int)):
        raise ValueError(f"{where}: `sitelinks` must be an integer")
    return Entity(eid, label, _str_list(obj.get("aliases"), where, "aliases"), desc,
                  _str_list(obj.get("types"), where, "types"), sitelinks)


def load_entities(path: str | Path) -> list[Entity]:
    """Read an entities file; a repeated id is an error (ids name the rows of the counts)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"entities file {path} does not exist")
    out: list[Entity] = []
    seen: set[str] = set()
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            where = f"{path}:{n}"
            if len(raw) > MAX_LINE:
                raise ValueError(f"{where}: line longer than {MAX_LINE} bytes")
            line = raw.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ValueError(f"{where}: not JSON ({e}); expected one entity object per line") from e
            ent = parse_entity(obj, where)
            if ent.id in seen:
                raise ValueError(f"{where}: entity id {ent.id!r} appears twice")
            seen.add(ent.id)
            out.append(ent)
    if not out:
        raise ValueError(f"{path}: no entities")
    return out


def select_entities(entities: list[Entity], min_sitelinks: int | None,
                    types: tuple[str, ...]) -> list[Entity]:
    """``--min-sitelinks`` (an entity without a count has 0) and ``--types`` (any of them,
    case-insensitive) filters."""
    wanted = {t.casefold() for t in types}
    out = []
    for e in entities:
        if min_sitelinks is not None and (e.sitelinks or 0) < min_sitelinks:
            continue
        if wanted and not wanted & {t.casefold() for t in e.types}:
            continue
        out.append(e)
    return out


def entity_concepts(src: ConceptSource) -> Concepts:
    from datacomp_sci.curation.curate import Concepts

    everything = load_entities(src.path)
    chosen = select_entities(everything, src.min_sitelinks, src.types)
    if not chosen:
        raise ValueError(f"{src.path}: no entity passes --min-sitelinks {src.min_sitelinks} "
                         f"--types {','.join(src.types) or '-'}")
    index: dict[str, list[int]] = {}
    for i, e in enumerate(chosen):
        for name in e.names:
            key = name.casefold() if src.casefold else name
            owners = index.setdefault(key, [])
            if not owners or owners[-1] != i:
                owners.append(i)
    keys = list(index)
    return Concepts(ids=[e.id for e in chosen], labels=[e.label for e in chosen], keys=keys,
                    key_concepts=[index[k] for k in keys],
                    stats={"entities_in_file": len(everything), "entities": len(chosen),
                           "names": len(keys),
                           "ambiguous_names": sum(len(v) > 1 for v in index.values())})
