"""Figure-caption pairs from one PubMed Central Open Access package (JATS / NLM XML).

One PMC OA package is a folder ``PMCxxxxxxx/`` holding one ``.nxml`` article and its
images. :func:`extract_jats` takes the package in memory (member path -> bytes) and
returns a :class:`~datacomp_sci.core.schema.PaperPairs`. It never raises on bad input: every
problem is counted in ``PaperPairs.skipped`` under a stable snake_case reason.

Rules (the user guide ``docs/guide/jats-extraction.md`` explains each one):

* XML is parsed by a hardened lxml parser (no entity substitution, no DTD loading, no
  network, no huge trees). A DOCTYPE whose internal subset declares entities is refused
  before parsing (``xml_unsafe``): billion-laughs expansion and external entities
  (``SYSTEM "file:///etc/passwd"``) never happen. Malformed XML is ``xml_error``; a
  complete document with recoverable errors (a stray ``&``) is parsed again in libxml2's
  recover mode with the same safe options and counted as ``xml_recovered``.
* Both un-namespaced NLM/JATS ``.nxml`` and default-namespaced JATS (any default
  namespace on ``<article>``) are read; element names are compared without namespace.
* Every ``<fig>`` is a candidate, wherever it sits. ``fig-type`` is compared case-
  insensitively against :data:`NON_FIGURE_TYPES`; anything else is a figure.
* The caption is the ``<title>`` and the paragraphs of the English ``<caption>``;
  ``<label>`` goes to ``label``; a ``<fig-group>`` caption goes to ``parent_caption``.
* Each ``<graphic>`` of a figure is one pair; the ``<graphic>``s of one
  ``<alternatives>`` count as one, the best resolvable file wins (:data:`IMAGE_EXT_RANK`).
* Mentions are the body sentences holding an ``<xref>`` whose ``rid`` names the figure
  (or its ``<fig-group>``), in document order, deduplicated.
"""

from __future__ import annotations

import bisect
import html.entities
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from lxml import etree

from datacomp_sci.core.schema import FigurePair, PaperPairs
from datacomp_sci.extract.sentences import split_sentences

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MATHML_NS = "http://www.w3.org/1998/Math/MathML"
_MATHML_PREFIX = "{" + MATHML_NS + "}"

# fig-type values (lower-cased, "-"/"_"/spaces collapsed to one space) that are not
# figures. Anything else, including no fig-type, is a figure ("figure", "fig", "scheme",
# "chart", "graph", "map", "plate", "photograph", "diagram", "illustration", ...).
NON_FIGURE_TYPES: frozenset[str] = frozenset({
    "table", "equation", "formula", "math", "chemical structure", "chem struct",
    "video", "movie", "animation", "audio", "sound", "multimedia", "media",
})

# Image files a <graphic> may resolve to, best first (PMC's full-size JPEG beats the GIF
# thumbnail PMC ships beside it). jpg/jpeg share a rank, as do tif/tiff.
# Formats the image stage decodes but PMC rarely ships as the figure file (WebP, BMP,
# PDF, EPS, PS) come last: they are pairs when nothing better is packaged.
IMAGE_EXT_RANK: dict[str, int] = {
    ".jpg": 0, ".jpeg": 0, ".png": 1, ".tif": 2, ".tiff": 2, ".gif": 3, ".webp": 4,
    ".bmp": 5, ".pdf": 6, ".eps": 7, ".ps": 8,
}
# Extensions stripped from an href before matching (PMC hrefs name .gif/.eps/.tif
# originals while the package holds the converted .jpg).
_HREF_EXTS = frozenset(IMAGE_EXT_RANK) | {".svg"}

_PMCID_RE = re.compile(r"^\s*(?:PMC)?(\d+)\s*$", re.IGNORECASE)
_PMCID_TYPES = ("pmcid", "pmc", "pmc-uid", "accession")
_WS_RE = re.compile(r"\s+")
_TITLE_END = ".!?:;"
# a complete document ends with its root's end tag (then only comments / PIs / space)
_COMPLETE_RE = re.compile(rb"</(?:[\w.-]+:)?article\s*>\s*(?:<!--.*?-->\s*|<\?.*?\?>\s*)*$", re.S)

# Elements whose content is never part of the surrounding text (captions, paragraphs).
_TEXT_SKIP = frozenset({
    "fig", "fig-group", "table-wrap", "table-wrap-group", "graphic", "inline-graphic",
    "media", "inline-media", "supplementary-material", "object-id", "fn", "boxed-text",
    "label", "alt-text", "long-desc", "attrib", "permissions",
})
_TEXT_BLOCK = frozenset({"p", "title", "list-item", "def-item", "disp-quote", "disp-formula",
                         "list", "def-list", "sec"})
# Containers a figure's own <graphic>s are never taken from.
_GRAPHIC_SKIP = frozenset({
    "caption", "table-wrap", "table-wrap-group", "disp-formula", "inline-formula",
    "chem-struct", "chem-struct-wrap", "supplementary-material", "fig", "fig-group",
    "media", "boxed-text", "inline-graphic", "alt-text", "long-desc",
})
# Containers whose paragraphs are not running body text (for mentions).
_BODY_SKIP = frozenset({
    "fig", "fig-group", "table-wrap", "table-wrap-group", "caption", "supplementary-material",
    "fn", "fn-group", "ref-list", "boxed-text", "disp-formula",
})

class _XmlRejected(Exception):
    """The article's XML cannot be used; ``reason`` is the skip reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --- public API ------------------------------------------------------------------------

def pmc_figure_url(pmcid: str, anchor: str | None) -> str:
    """The public URL of a figure on PMC's article site.

    ``https://pmc.ncbi.nlm.nih.gov/articles/{PMCID}/figure/{fig_id}/`` is the page PMC
    serves for one figure (image, label and caption); without an anchor the article's
    own page is returned. ``pmcid`` may be ``"PMC123"`` or ``"123"``.
    """
    m = _PMCID_RE.match(pmcid or "")
    if not m:
        raise ValueError(f"not a PMCID: {pmcid!r} (expected 'PMC' followed by digits)")
    base = f"https://pmc.ncbi.nlm.nih.gov/articles/PMC{m.group(1)}/"
    if not anchor:
        return base
    return f"{base}figure/{quote(anchor, safe='')}/"


def extract_jats(files: Mapping[str, bytes], package_name: str) -> PaperPairs:
    """Figure-caption pairs of one PMC OA package (member path -> bytes).

    ``package_name`` (e.g. ``"PMC3357053"`` or ``"PMC3357053.tar.gz"``) names the paper
    only when the XML carries no PMC article-id. ``figure_path`` of every pair is the
    exact key in ``files`` of the chosen image.
    """
    result = PaperPairs(paper_id=_pmcid_from_name(package_name), pairs=[])
    nxml_key = _choose_nxml(files, package_name, result)
    if nxml_key is None:
        return result
    try:
        article = _parse_article(files[nxml_key], result, nxml_key)
    except _XmlRejected as e:
        result.skip(e.reason, nxml_key, e.detail)
        return result
    result.paper_id = _article_pmcid(article) or result.paper_id
    result.license = article_license(article)
    base_dir = posixpath.dirname(_norm_key(nxml_key))
    _Extractor(article, _ImageIndex.build(files), base_dir, result).run()
    return result


# --- package and parsing ---------------------------------------------------------------

def _pmcid_from_name(name: str) -> str:
    base = posixpath.basename(name.replace("\\", "/").rstrip("/"))
    for suffix in (".tar.gz", ".tgz", ".tar", ".nxml", ".xml"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    m = _PMCID_RE.match(base)
    return f"PMC{m.group(1)}" if m else base


def _norm_key(key: str) -> str:
    return posixpath.normpath(key.replace("\\", "/")) if key else key


def _choose_nxml(files: Mapping[str, bytes], package_name: str, result: PaperPairs) -> str | None:
    """The article XML of the package: one ``.nxml``; several are counted, one is chosen
    (the one named after the package, else the shallowest, then alphabetical)."""
    cands = sorted(k for k in files if k.lower().endswith(".nxml"))
    if not cands:
        result.skip("no_nxml", package_name, "the package holds no .nxml file")
        return None
    if len(cands) == 1:
        return cands[0]
    stem = _pmcid_from_name(package_name).lower()

    def rank(k: str) -> tuple:
        name = posixpath.basename(k).lower()[: -len(".nxml")]
        return (name != stem, _norm_key(k).count("/"), k)

    chosen = min(cands, key=rank)
    result.skip("several_nxml", chosen, f"{len(cands)} .nxml files; used {chosen}: {', '.join(cands)}")
    return chosen


def _safe_parser(recover: bool = False) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, recover=recover, remove_blank_text=False,
    )


def _declares_entities(data: bytes) -> bool:
    """True when a DOCTYPE internal subset may declare entities (refused before parsing)."""
    text = data
    head = data[:4]
    enc = None
    if head in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff") or head.count(b"\x00") == 3:
        enc = "utf-32"
    elif head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head:
        enc = "utf-16"
    if enc:
        text = data.decode(enc, errors="replace").encode("utf-8")
    return b"<!DOCTYPE" in text and b"<!ENTITY" in text


def _parse_article(data: bytes, result: PaperPairs, key: str) -> etree._Element:
    if _declares_entities(data):
        raise _XmlRejected("xml_unsafe", "DOCTYPE declares entities (refused: entity "
                                         "expansion and external entities are not allowed)")
    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as e:
        if not _COMPLETE_RE.search(data[-4096:]):
            raise _XmlRejected("xml_error", f"{e} (document incomplete)") from None
        if "XML_PARSE_HUGE" in str(e):
            raise _XmlRejected("xml_error", f"{e} (over the parser's safety limits)") from None
        try:
            root = etree.fromstring(data, _safe_parser(recover=True))
        except etree.XMLSyntaxError:
            root = None
        if root is None:
            raise _XmlRejected("xml_error", str(e)) from None
        result.skip("xml_recovered", key, str(e))
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise _XmlRejected("xml_unsafe", "DOCTYPE declares entities")
    article = _find_article(root)
    if article is None:
        raise _XmlRejected("xml_error", f"no <article> element (root is <{etree.QName(root).localname}>)")
    _strip_default_namespace(article)
    return article


def _find_article(root: etree._Element) -> etree._Element | None:
    if etree.QName(root).localname == "article":
        return root
    for el in root.iter("{*}article"):
        return el
    return None


def _strip_default_namespace(article: etree._Element) -> None:
    """Rename ``{ns}tag`` to ``tag`` for the article's own namespace (JATS 1.3, NLM xsd)."""
    ns = etree.QName(article).namespace
    if not ns:
        return
    prefix = "{" + ns + "}"
    cut = len(prefix)
    for el in list(article.iter(prefix + "*")):
        el.tag = el.tag[cut:]


def _article_pmcid(article: etree._Element) -> str | None:
    ids: dict[str, str] = {}
    for meta in article.iterchildren("front"):
        for am in meta.iterchildren("article-meta"):
            for aid in am.iterchildren("article-id"):
                ids.setdefault((aid.get("pub-id-type") or "").lower(), (aid.text or "").strip())
    for kind in _PMCID_TYPES:
        m = _PMCID_RE.match(ids.get(kind, ""))
        if m:
            return f"PMC{m.group(1)}"
    return None


# --- licence -----------------------------------------------------------------------------

def _localname(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _href(el: etree._Element) -> str:
    return (el.get(XLINK_HREF) or el.get("xlink:href") or el.get("href") or "").strip()


def article_license(article: etree._Element) -> str | None:
    """The article's licence from ``front/article-meta/permissions``: the first
    ``<license xlink:href>``, else ``ali:license_ref`` text, else ``<license-p>`` text,
    else the ``license-type`` attribute; None when there is none."""
    perms = article.find("front/article-meta/permissions")
    if perms is None:
        perms = article.find("front//permissions")
    if perms is None:
        return None
    licenses = list(perms.iterchildren("license"))
    getters = (
        _href,
        lambda lic: next((plain_text(r) for r in lic.iter() if _localname(r) == "license_ref"), ""),
        lambda lic: " ".join(t for t in (plain_text(p) for p in lic.iterchildren("license-p")) if t),
        lambda lic: (lic.get("license-type") or "").strip(),
    )
    for get in getters:
        for lic in licenses:
            value = get(lic)
            if value:
                return value
    return None


# --- plain text ----------------------------------------------------------------------------

class _Text:
    """Builds plain text with whitespace collapsed, tracking the current offset."""

    __slots__ = ("parts", "length", "space")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.space = True  # at the start: a leading space is dropped

    def add(self, s: str | None) -> None:
        if not s:
            return
        s = _WS_RE.sub(" ", s)
        if self.space and s[0] == " ":
            s = s[1:]
        if s:
            self.parts.append(s)
            self.length += len(s)
            self.space = s[-1] == " "

    def value(self) -> str:
        return "".join(self.parts).rstrip()


def _tex_text(tex: str) -> str:
    m = re.search(r"\\begin\{document\}(.*?)\\end\{document\}", tex, re.S)
    body = m.group(1) if m else tex
    return body.replace("$", " ").strip()


def _math_text(el: etree._Element) -> str:
    """MathML as its tokens run together (whitespace between MathML tags is not text);
    ``<annotation>`` (usually TeX) is left out."""
    parts: list[str] = [(el.text or "").strip()]
    for child in el:
        if isinstance(child.tag, str) and _localname(child) not in ("annotation", "annotation-xml"):
            parts.append(_math_text(child))
        parts.append((child.tail or "").strip())
    return "".join(parts)


def _choose_alternative(alt: etree._Element) -> etree._Element | None:
    """The text rendering of an ``<alternatives>``: MathML, else TeX, else other text."""
    kids = [k for k in alt if isinstance(k.tag, str)]
    for want in ("math", "tex-math"):
        for k in kids:
            if _localname(k) == want:
                return k
    return next((k for k in kids if k.tag not in _TEXT_SKIP), None)


def _walk(el: etree._Element, out: _Text, xrefs: list | None) -> None:
    tag = el.tag
    if not isinstance(tag, str):
        if isinstance(el, etree._Entity):  # undeclared named entity left unresolved
            out.add(html.entities.html5.get(el.name + ";", ""))
        return
    if tag in _TEXT_SKIP:
        return
    if tag == "alternatives":
        chosen = _choose_alternative(el)
        if chosen is not None:
            _walk(chosen, out, xrefs)
        return
    if tag == "tex-math":
        out.add(_tex_text("".join(el.itertext())))
        return
    if tag.startswith(_MATHML_PREFIX):
        out.add(_math_text(el))
        return
    block = tag in _TEXT_BLOCK
    if block:
        out.add(" ")
    start = out.length
    out.add(el.text)
    for child in el:
        _walk(child, out, xrefs)
        out.add(child.tail)
    if tag == "xref" and xrefs is not None:
        xrefs.append((start, el.get("rid") or ""))
    if block:
        out.add(" ")


def plain_text(el: etree._Element) -> str:
    """An element's text as one line: tags dropped, whitespace collapsed, xref text
    kept, inline math as its MathML (or TeX) text, nested figures/tables/footnotes left out."""
    out = _Text()
    out.add(el.text)
    for child in el:
        _walk(child, out, None)
        out.add(child.tail)
    return out.value()


def caption_text(caption: etree._Element) -> str:
    """``<title>`` then the paragraphs of a ``<caption>``; a title without final
    punctuation gets a period so it reads as its own sentence."""
    pieces: list[str] = []
    lead = _WS_RE.sub(" ", caption.text or "").strip()
    if lead:
        pieces.append(lead)
    for child in caption:
        if isinstance(child.tag, str) and child.tag not in _TEXT_SKIP:
            text = plain_text(child)
            if text and child.tag == "title" and text[-1] not in _TITLE_END:
                text += "."
            if text:
                pieces.append(text)
        tail = _WS_RE.sub(" ", child.tail or "").strip()
        if tail:
            pieces.append(tail)
    return " ".join(pieces)



# --- sentences and mentions ----------------------------------------------------------------

@dataclass
class _Mentions:
    """id -> [(sentence number, sentence)] over the body, in document order."""

    by_id: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    count: int = 0

    def add_paragraph(self, p: etree._Element, targets: set[str]) -> None:
        out, xrefs = _Text(), []
        out.add(p.text)
        for child in p:
            _walk(child, out, xrefs)
            out.add(child.tail)
        if not xrefs:
            self.count += 1
            return
        text = out.value()
        spans = split_sentences(text)
        starts = [s for s, _ in spans]
        for pos, rid in xrefs:
            ids = [r for r in rid.split() if r in targets]
            if not ids or not spans:
                continue
            while pos < len(text) and text[pos] == " ":
                pos += 1
            k = max(0, bisect.bisect_right(starts, pos) - 1)
            sentence = text[spans[k][0]: spans[k][1]].strip()
            for i in ids:
                self.by_id.setdefault(i, []).append((self.count + k, sentence))
        self.count += len(spans)

    def for_ids(self, ids: list[str]) -> list[str]:
        found = sorted({m for i in ids for m in self.by_id.get(i, [])})
        seen: set[str] = set()
        out: list[str] = []
        for _, sentence in found:
            if sentence not in seen:
                seen.add(sentence)
                out.append(sentence)
        return out


def _body_paragraphs(el: etree._Element) -> Iterator[etree._Element]:
    for child in el:
        tag = child.tag
        if tag == "p":
            yield child
        elif isinstance(tag, str) and tag not in _BODY_SKIP:
            yield from _body_paragraphs(child)


# --- images ------------------------------------------------------------------------------------

@dataclass
class _ImageIndex:
    """Package images by path without extension (exact, and lower-cased)."""

    by_stem: dict[str, list[tuple[int, str]]]
    stems_by_lower: dict[str, set[str]]

    @classmethod
    def build(cls, files: Mapping[str, bytes]) -> _ImageIndex:
        by_stem: dict[str, list[tuple[int, str]]] = {}
        lower: dict[str, set[str]] = {}
        for key, data in files.items():
            norm = _norm_key(key)
            stem, ext = posixpath.splitext(norm)
            rank = IMAGE_EXT_RANK.get(ext.lower())
            if rank is None or not data or key.endswith("/"):
                continue
            by_stem.setdefault(stem, []).append((rank, key))
            lower.setdefault(stem.lower(), set()).add(stem)
        for cands in by_stem.values():
            cands.sort()
        return cls(by_stem, lower)

    def resolve(self, href: str, base_dir: str) -> tuple[str | None, str]:
        """(files key, "") or (None, why not)."""
        if not href:
            return None, "graphic has no xlink:href"
        if "://" in href:  # publisher XML: the file ships under the URL's base name
            name = posixpath.basename(unquote(urlsplit(href).path))
            if name in ("", ".", "..") or "\\" in name:
                return None, f"href {href!r} points outside the package"
            key, _ = self._lookup(posixpath.join(base_dir, name) if base_dir not in ("", ".")
                                  else name, href)
            if key is None:
                return None, (f"href {href!r} is a URL and no packaged image has its base "
                              f"name {name!r} (URLs are never fetched)")
            return key, ""
        if href.startswith(("/", "\\")):
            return None, f"href {href!r} points outside the package"
        path = posixpath.normpath(posixpath.join(base_dir, href.replace("\\", "/")))
        inside = base_dir in ("", ".") or path.startswith(base_dir + "/")
        if not inside or path == ".." or path.startswith("../"):
            return None, f"href {href!r} leaves the article's folder"
        return self._lookup(path, href)

    def _lookup(self, path: str, href: str) -> tuple[str | None, str]:
        stem, ext = posixpath.splitext(path)
        if ext.lower() not in _HREF_EXTS:
            stem = path
        if stem in self.by_stem:
            return self.by_stem[stem][0][1], ""
        stems = self.stems_by_lower.get(stem.lower(), set())
        if len(stems) == 1:
            return self.by_stem[next(iter(stems))][0][1], ""
        if stems:
            return None, f"href {href!r} matches several files case-insensitively: {sorted(stems)}"
        return None, f"no image file for href {href!r}"


def _graphic_units(fig: etree._Element) -> list[list[etree._Element]]:
    """The figure's own graphics; the graphics of one <alternatives> form one unit."""
    units: list[list[etree._Element]] = []

    def visit(el: etree._Element) -> None:
        for child in el:
            tag = child.tag
            if tag == "graphic":
                units.append([child])
            elif tag == "alternatives":
                graphics = [g for g in child if g.tag == "graphic"]
                if graphics:
                    units.append(graphics)
            elif isinstance(tag, str) and tag not in _GRAPHIC_SKIP:
                visit(child)

    visit(fig)
    return units


# --- figures ------------------------------------------------------------------------------------

def _lang(el: etree._Element | None) -> str | None:
    while el is not None:
        lang = el.get(XML_LANG)
        if lang is not None:
            return lang.strip().lower()
        el = el.getparent()
    return None


def _is_english(el: etree._Element) -> bool:
    lang = _lang(el)
    return lang is None or lang == "" or lang.startswith("en")


def _english_caption(el: etree._Element) -> tuple[etree._Element | None, bool]:
    """(the first English <caption> child, whether the element has any caption)."""
    caps = [c for c in el.iterchildren("caption")]
    for c in caps:
        if _is_english(c):
            return c, True
    return None, bool(caps)


def _fig_type_ok(fig: etree._Element) -> bool:
    kind = fig.get("fig-type")
    if kind is None:
        return True
    norm = re.sub(r"[\s_-]+", " ", kind).strip().lower()
    return norm not in NON_FIGURE_TYPES


def _label(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    lab = el.find("label")
    if lab is None:
        return None
    return plain_text(lab) or None


class _Extractor:
    """Walks the figures of one parsed article into ``result``."""

    def __init__(self, article: etree._Element, images: _ImageIndex, base_dir: str,
                 result: PaperPairs) -> None:
        self.article = article
        self.images = images
        self.base_dir = base_dir
        self.result = result
        self.used: dict[str, str] = {}

    def run(self) -> None:
        figs = list(self.article.iter("fig"))
        self.result.figures_found = len(figs)
        if not figs:
            return
        targets = {i for el in self.article.iter("fig", "fig-group") if (i := el.get("id"))}
        mentions = _Mentions()
        for body in self.article.iter("body"):
            for p in _body_paragraphs(body):
                mentions.add_paragraph(p, targets)
        for n, fig in enumerate(figs, 1):
            self._figure(fig, n, mentions)

    def _figure(self, fig: etree._Element, n: int, mentions: _Mentions) -> None:
        item = fig.get("id") or _label(fig) or f"fig#{n}"
        if not _fig_type_ok(fig):
            self.result.skip("not_a_figure", item, f"fig-type={fig.get('fig-type')!r}")
            return
        group = next((a for a in fig.iterancestors("fig-group")), None)
        caption, has_caption = _english_caption(fig)
        group_caption, group_has = _english_caption(group) if group is not None else (None, False)
        if caption is None and (has_caption or not _is_english(fig)):
            where = fig.find("caption") if has_caption else fig
            self.result.skip("non_english", item, f"xml:lang={_lang(where)!r}")
            return
        text = caption_text(caption) if caption is not None else ""
        parent = caption_text(group_caption) if group_caption is not None else None
        if not text and parent:  # a panel of a fig-group without its own caption
            text, parent = parent, None
        if not text:
            reason = "non_english" if group_has and group_caption is None else "no_caption"
            self.result.skip(reason, item, "figure has no caption text")
            return
        units = _graphic_units(fig)
        if not units:
            self.result.skip("no_graphic", item, "figure has no <graphic>")
            return
        ids = [i for i in (fig.get("id"), group.get("id") if group is not None else None) if i]
        label = _label(fig) or _label(group)
        for unit in units:
            self._pair(unit, item, text, parent, label, fig.get("id"), mentions.for_ids(ids))

    def _pair(self, unit: list[etree._Element], item: str, caption: str, parent: str | None,
              label: str | None, anchor: str | None, mentions: list[str]) -> None:
        key, why = self._best_graphic(unit)
        if key is None:
            self.result.skip("graphic_not_found", item, why)
            return
        if key in self.used:
            self.result.skip("duplicate_graphic", item, f"{key} is already the image of {self.used[key]}")
            return
        self.used[key] = item
        own, _ = _english_caption(unit[0]) if len(unit) == 1 else (None, False)
        if own is not None and caption_text(own):
            caption, parent = caption_text(own), caption
        self.result.pairs.append(FigurePair(
            figure_path=key, caption=caption, label=label, parent_caption=parent,
            mentions=list(mentions), anchor=anchor,
        ))

    def _best_graphic(self, unit: list[etree._Element]) -> tuple[str | None, str]:
        found: list[tuple[int, int, str]] = []
        reasons: list[str] = []
        for order, g in enumerate(unit):
            key, why = self.images.resolve(_href(g), self.base_dir)
            if key is None:
                reasons.append(why)
            else:
                ext = posixpath.splitext(key)[1].lower()
                found.append((IMAGE_EXT_RANK[ext], order, key))
        if not found:
            return None, "; ".join(reasons)
        return min(found)[2], ""
