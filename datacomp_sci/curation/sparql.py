"""``datacomp-sci kg fetch``: entities under given roots from a Wikidata SPARQL endpoint.

The EntityNet-style query (docs/formats.md, "Knowledge-graph entities"): every item that
is a subclass of (``wdt:P279*``) one of the root items, with its English label,
description, aliases (``skos:altLabel``) and number of sitelinks; ``types`` are the
English labels of the roots it falls under and of its direct ``P31``/``P279`` parents.
It runs once per root, in pages (``ORDER BY ?item LIMIT n OFFSET k``) so that no
single request is heavy, against Wikidata's public endpoint by default or any
compatible one (QLever, a local Blazegraph). Requests are POSTed as a form
(``query=...``), answers read in the SPARQL 1.1 JSON results format. Transient
failures (connection errors, 429, 5xx) are retried with exponential back-off honouring
``Retry-After``. Output: JSON lines sorted by id, written atomically.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datacomp_sci import __version__
from datacomp_sci.core.util import atomic_open
from datacomp_sci.curation.entities import Entity

WIKIDATA_ENDPOINT = "https://query.wikidata.org/sparql"
USER_AGENT = f"datacomp-sci/{__version__} (kg fetch; python-urllib)"
_QID = re.compile(r"^Q[1-9][0-9]*$")
_ENTITY_PREFIX = "http://www.wikidata.org/entity/"
MAX_ANSWER_BYTES = 256 << 20

QUERY = """\
PREFIX wd: <http://www.wikidata.org/entity/>
PREFIX wdt: <http://www.wikidata.org/prop/direct/>
PREFIX wikibase: <http://wikiba.se/ontology#>
PREFIX schema: <http://schema.org/>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?item ?label ?description ?sitelinks
       (GROUP_CONCAT(DISTINCT ?alias; SEPARATOR="\\u001f") AS ?aliases)
       (GROUP_CONCAT(DISTINCT ?parentLabel; SEPARATOR="\\u001f") AS ?parents)
WHERE {{
  ?item wdt:P279* wd:{root} .
  ?item rdfs:label ?label . FILTER(LANG(?label) = "en")
  OPTIONAL {{ ?item schema:description ?description . FILTER(LANG(?description) = "en") }}
  OPTIONAL {{ ?item wikibase:sitelinks ?sitelinks }}
  OPTIONAL {{ ?item skos:altLabel ?alias . FILTER(LANG(?alias) = "en") }}
  OPTIONAL {{ ?item wdt:P31|wdt:P279 ?parent . ?parent rdfs:label ?parentLabel .
             FILTER(LANG(?parentLabel) = "en") }}
  {sitelinks_filter}
}}
GROUP BY ?item ?label ?description ?sitelinks
ORDER BY ?item
LIMIT {limit} OFFSET {offset}"""

ROOT_LABEL_QUERY = """\
PREFIX wd: <http://www.wikidata.org/entity/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?root ?label WHERE {{
  VALUES ?root {{ {roots} }}
  ?root rdfs:label ?label . FILTER(LANG(?label) = "en")
}}"""


@dataclass
class FetchOptions:
    endpoint: str = WIKIDATA_ENDPOINT
    page_size: int = 10000
    min_sitelinks: int | None = None
    retries: int = 5
    backoff_s: float = 2.0
    timeout_s: float = 300.0
    max_pages: int = 10000
    on_page: Callable[[str, int], None] | None = None  # root, rows in the page


@dataclass
class FetchResult:
    output: Path
    entities: int
    pages: int
    per_root: dict[str, int] = field(default_factory=dict)
    retried: int = 0


class SparqlError(RuntimeError):
    pass


def _post(query: str, opts: FetchOptions, counter: list[int]) -> dict:
    data = urllib.parse.urlencode({"query": query}).encode()
    req = urllib.request.Request(opts.endpoint, data=data, method="POST", headers={
        "Accept": "application/sparql-results+json",
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": USER_AGENT,
    })
    last = ""
    for attempt in range(opts.retries + 1):
        wait = opts.backoff_s * (2 ** attempt)
        try:
            with urllib.request.urlopen(req, timeout=opts.timeout_s) as resp:
                body = resp.read(MAX_ANSWER_BYTES + 1)
            if len(body) > MAX_ANSWER_BYTES:
                raise ValueError(f"{opts.endpoint} answered more than {MAX_ANSWER_BYTES >> 20} MiB "
                                 "for one page: lower --page-size")
            try:
                return json.loads(body)
            except json.JSONDecodeError as e:
                raise ValueError(f"{opts.endpoint} did not answer in the SPARQL JSON results "
                                 f"format ({e}): is it a SPARQL endpoint?") from e
        except urllib.error.HTTPError as e:
            if e.code not in (429, 500, 502, 503, 504):
                detail = e.read(300).decode("utf-8", "replace").strip().splitlines()[:1]
                raise ValueError(f"{opts.endpoint} refused the query: HTTP {e.code} "
                                 f"{e.reason} {' '.join(detail)}".rstrip()) from e
            last = f"HTTP {e.code} {e.reason}"
            retry_after = e.headers.get("Retry-After") if e.headers else None
            if retry_after and retry_after.strip().isdigit():
                wait = max(wait, float(retry_after))
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
            reason = getattr(e, "reason", e)
            last = str(reason)
        if attempt < opts.retries:
            counter[0] += 1
            time.sleep(min(wait, 120.0))
    raise ConnectionError(f"cannot reach the SPARQL endpoint {opts.endpoint} ({last}) after "
                          f"{opts.retries + 1} tries: check the network, or give --endpoint of a "
                          "reachable (e.g. local QLever) endpoint")


def _value(binding: dict, name: str) -> str | None:
    v = binding.get(name)
    return v.get("value") if isinstance(v, dict) else None


def _split(value: str | None) -> list[str]:
    return sorted({x for x in (value or "").split("\x1f") if x.strip()})


def _bindings(answer: dict, endpoint: str) -> list[dict]:
    try:
        rows = answer["results"]["bindings"]
    except (KeyError, TypeError):
        raise ValueError(f"{endpoint}: answer has no results.bindings (not SPARQL JSON results)") from None
    if not isinstance(rows, list):
        raise ValueError(f"{endpoint}: results.bindings is not a list")
    return rows


def fetch_entities(roots: list[str], output: str | Path, opts: FetchOptions | None = None) -> FetchResult:
    """Query every root, merge entities found under several roots, write JSON lines."""
    opts = opts or FetchOptions()
    bad = [r for r in roots if not _QID.match(r)]
    if not roots or bad:
        raise ValueError(f"--root takes Wikidata item ids such as Q11862 (got {bad or 'none'})")
    if opts.page_size < 1:
        raise ValueError("--page-size must be at least 1")
    output = Path(output)
    retried = [0]
    answer = _post(ROOT_LABEL_QUERY.format(roots=" ".join(f"wd:{r}" for r in roots)), opts, retried)
    root_label = {}
    for b in _bindings(answer, opts.endpoint):
        qid = (_value(b, "root") or "").removeprefix(_ENTITY_PREFIX)
        root_label[qid] = _value(b, "label") or qid
    entities: dict[str, Entity] = {}
    per_root: dict[str, int] = {}
    pages = 0
    sl = (f"FILTER(?sitelinks >= {int(opts.min_sitelinks)})"
          if opts.min_sitelinks is not None else "")
    for root in roots:
        per_root[root] = 0
        for page in range(opts.max_pages):
            q = QUERY.format(root=root, limit=opts.page_size, offset=page * opts.page_size,
                             sitelinks_filter=sl)
            rows = _bindings(_post(q, opts, retried), opts.endpoint)
            pages += 1
            if opts.on_page:
                opts.on_page(root, len(rows))
            for b in rows:
                item = _value(b, "item") or ""
                qid = item.removeprefix(_ENTITY_PREFIX)
                label = _value(b, "label")
                if not _QID.match(qid) or not label:
                    continue
                sitelinks = _value(b, "sitelinks")
                types = set(_split(_value(b, "parents")))
                types.add(root_label.get(root, root))
                types.discard(label)
                aliases = {a for a in _split(_value(b, "aliases")) if a != label}
                ent = entities.get(qid)
                if ent is None:
                    ent = entities[qid] = Entity(
                        qid, label, [], _value(b, "description"), [],
                        int(float(sitelinks)) if sitelinks not in (None, "") else None)
                    per_root[root] += 1
                ent.aliases = sorted(set(ent.aliases) | aliases)  # a row per root or page
                ent.types = sorted(set(ent.types) | types)
            if len(rows) < opts.page_size:
                break
        else:
            raise ValueError(f"root {root}: more than {opts.max_pages} pages; raise --page-size")
    with atomic_open(output) as f:
        for qid in sorted(entities, key=lambda q: int(q[1:])):
            f.write((json.dumps(entities[qid].to_json(), ensure_ascii=False) + "\n").encode())
    return FetchResult(output, len(entities), pages, per_root, retried[0])
