"""Sample PMC OA packages (JATS / NLM XML) with the exact pairs an extractor must find.

Every article is invented (prose, ids, images); fake PMCIDs are in the PMC9000001 range.
:func:`pmc_samples` returns them in PMCID order; each carries its package members (with the
top folder, as in a PMC OA ``.tar.gz``), the expected pairs, licence and skip counts.
The hostile articles (PMC9000021 onward) must give clear counted errors, never a crash.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field

from .figures import gif_bytes, photo_bytes, plot_bytes, tiff_bytes


@dataclass
class SampleArticle:
    pmcid: str  # "PMC9000001" style
    files: dict[str, bytes]  # package members with the top folder
    expected: list[dict]  # {"figure_path","caption","label","parent_caption","mentions","anchor"}
    expected_license: str | None
    expected_skips: dict[str, int]
    description: str
    expected_figures_found: int = 0
    tags: list[str] = field(default_factory=list)


# --- XML building blocks -------------------------------------------------------------------

_DOCTYPES = {
    "nlm11": '<!DOCTYPE article PUBLIC "-//NLM//DTD Journal Publishing DTD v1.1 20031101//EN" '
             '"journalpublishing.dtd">',
    "nlm23": '<!DOCTYPE article PUBLIC "-//NLM//DTD Journal Archiving and Interchange DTD v2.3 '
             '20070202//EN" "archivearticle.dtd">',
    "nlm30": '<!DOCTYPE article PUBLIC "-//NLM//DTD Journal Publishing DTD v3.0 20080202//EN" '
             '"journalpublishing3.dtd">',
    "jats13": "",
}
_NS = ('xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:mml="http://www.w3.org/1998/Math/MathML" '
       'xmlns:ali="http://www.niso.org/schemas/ali/1.0/"')
JATS13_NS = "https://jats.nlm.nih.gov/ns/archiving/1.3/"

CC_BY = "https://creativecommons.org/licenses/by/4.0/"
CC_BY_NC = "https://creativecommons.org/licenses/by-nc/4.0/"
LIC_HREF = (f'<permissions><copyright-statement>\u00a9 2021 The Authors</copyright-statement>'
            f'<license license-type="open-access" xlink:href="{CC_BY}"><license-p>Distributed '
            f'under the Creative Commons Attribution License.</license-p></license></permissions>')
LIC_ALI = (f'<permissions><license><ali:license_ref specific-use="textmining">{CC_BY_NC}'
           f'</ali:license_ref><license-p>Non-commercial re-use is permitted.</license-p>'
           f'</license></permissions>')
LIC_P = ('<permissions><license><license-p>This article may be reused\n   freely with attribution '
         '(see <ext-link ext-link-type="uri" xlink:href="https://example.org/terms">the terms'
         '</ext-link>).</license-p></license></permissions>')
LIC_P_TEXT = "This article may be reused freely with attribution (see the terms)."
LIC_TYPE = '<permissions><license license-type="open-access"><license-p> </license-p></license></permissions>'


def _nxml(pmcid: str, flavour: str, body: str, *, permissions: str = LIC_HREF,
          lang: str | None = "en", floats: str = "", back: str = "",
          article_id: bool = True, doctype: str | None = None) -> bytes:
    """One article as .nxml bytes. ``flavour``: nlm11 / nlm23 / nlm30 (DOCTYPE'd,
    un-namespaced) or jats13 (default namespace, no DOCTYPE)."""
    digits = pmcid[3:]
    ns = f'xmlns="{JATS13_NS}" ' if flavour == "jats13" else ""
    lang_attr = f' xml:lang="{lang}"' if lang else ""
    if not article_id:
        ids = ""
    elif flavour == "jats13":
        ids = f'<article-id pub-id-type="pmcid">{pmcid}</article-id>'
    else:
        ids = f'<article-id pub-id-type="pmc">{digits}</article-id>'
    head = doctype if doctype is not None else _DOCTYPES[flavour]
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{head}\n'
        f'<article {ns}{_NS} article-type="research-article"{lang_attr}>\n'
        f'<front><journal-meta><journal-title-group><journal-title>Journal of Invented Results'
        f'</journal-title></journal-title-group></journal-meta>\n<article-meta>{ids}'
        f'<article-id pub-id-type="doi">10.0000/fake.{digits}</article-id>'
        f'<title-group><article-title>Sample article {pmcid}</article-title></title-group>'
        f'{permissions}</article-meta></front>\n'
        f'<body>\n{body}\n</body>\n{back}{floats}</article>\n'
    )
    return xml.encode("utf-8")


def _fig(fid: str | None, label: str | None, caption: str | None, graphics: str,
         attrs: str = "") -> str:
    id_attr = f' id="{fid}"' if fid else ""
    lab = f"<label>{label}</label>" if label else ""
    cap = f"<caption>{caption}</caption>" if caption is not None else ""
    return f'<fig{id_attr}{attrs} position="float">{lab}{cap}{graphics}</fig>\n'


def _g(href: str, extra: str = "") -> str:
    return f'<graphic xlink:href="{href}"{extra}/>'


def _pair(path: str, caption: str, label: str | None, anchor: str | None,
          mentions: tuple[str, ...] = (), parent: str | None = None) -> dict:
    return {"figure_path": path, "caption": caption, "label": label, "parent_caption": parent,
            "mentions": list(mentions), "anchor": anchor}


def _jpg(seed: int) -> bytes:
    return photo_bytes(seed, 200, 140, "JPEG")


def _png(seed: int) -> bytes:
    return plot_bytes(seed, "png", kind="bar", size=(2.4, 1.6))


def _gif(seed: int) -> bytes:
    return gif_bytes(seed, 120, 80)


def _tif(seed: int) -> bytes:
    return tiff_bytes(seed, 96, 64)


def _article(pmcid: str, nxml: bytes, images: dict[str, bytes], expected: list[dict],
             license: str | None, skips: dict[str, int], found: int, description: str,
             tags: tuple[str, ...] = ()) -> SampleArticle:
    files = {f"{pmcid}/{pmcid}.nxml": nxml}
    files.update({f"{pmcid}/{name}": data for name, data in images.items()})
    return SampleArticle(pmcid, files, expected, license, skips, description, found, list(tags))


# --- the articles ---------------------------------------------------------------------------

def _a01() -> SampleArticle:
    pid = "PMC9000001"
    s1 = "Soil cores were collected at 12 sites along the ridge (Fig. 1)."
    s3 = "Respiration tracked moisture closely (Fig. 2, e.g. at site 7)."
    body = (
        '<sec><title>Results</title><p>Soil cores were collected at 12 sites along the ridge '
        '(<xref ref-type="fig" rid="F1">Fig. 1</xref>). Moisture fell by 3.5% per 100 m of '
        'elevation, as Okafor et al. reported for similar slopes. Respiration tracked moisture '
        'closely (<xref ref-type="fig" rid="F2">Fig. 2</xref>, e.g. at site 7).</p>\n'
        + _fig("F1", "Figure 1", "<title>Sampling design.</title><p>Twelve cores were taken "
               "along a\n  1.2 km transect.</p>", _g("pmc9000001f1"))
        + _fig("F2", "Figure 2", "<p>Soil respiration against volumetric moisture; each point "
               "is one core.</p>", _g("pmc9000001f2"))
        + "</sec>"
    )
    images = {"pmc9000001f1.gif": _gif(11), "pmc9000001f1.jpg": _jpg(11),
              "pmc9000001f2.jpg": _jpg(12), "pmc9000001f2.gif": _gif(12)}
    expected = [
        _pair(f"{pid}/pmc9000001f1.jpg", "Sampling design. Twelve cores were taken along a 1.2 km "
              "transect.", "Figure 1", "F1", (s1,)),
        _pair(f"{pid}/pmc9000001f2.jpg", "Soil respiration against volumetric moisture; each "
              "point is one core.", "Figure 2", "F2", (s3,)),
    ]
    return _article(pid, _nxml(pid, "nlm23", body), images, expected, CC_BY, {}, 2,
                    "NLM 2.3 DOCTYPE'd .nxml, extension-less hrefs, .gif thumbnails beside .jpg, "
                    "licence from <license xlink:href>, mentions with 'Fig.', 'et al.', decimals",
                    ("nlm23", "gif_thumbnail", "license_href", "mentions"))


def _a02() -> SampleArticle:
    pid = "PMC9000002"
    s1 = "We imaged leaf sections under two light regimes (Figs. 1 and 2)."
    s2 = "The stomatal counts are summarised in Figure 3."
    s3 = "Counts in Fig. 2 were made blind."
    body = ('<sec><title>Methods</title><p>We imaged leaf sections under two light regimes '
            '(<xref ref-type="fig" rid="f1 f2">Figs. 1 and 2</xref>). The stomatal counts are '
            'summarised in <xref ref-type="fig" rid="f3">Figure 3</xref>. Counts in '
            '<xref ref-type="fig" rid="f2">Fig. 2</xref> were made blind.</p></sec>')
    floats = ("<floats-group>\n"
              + _fig("f1", "Figure 1", "<title>Leaf cross-section under low light</title>",
                     _g("pmc9000002-g001.jpg"))
              + _fig("f2", "Figure 2", "<title>Leaf cross-section under high light</title>"
                     "<p>Scale bar, 50 \u00b5m.</p>", _g("pmc9000002-g002.jpg"))
              + _fig("f3", "Figure 3", "<p>Stomatal density per mm<sup>2</sup> for each regime "
                     "(mean \u00b1 s.d., <italic>n</italic> = 8).</p>", _g("pmc9000002-g003.jpg"))
              + "</floats-group>\n")
    images = {f"pmc9000002-g00{i}.jpg": _jpg(20 + i) for i in (1, 2, 3)}
    expected = [
        _pair(f"{pid}/pmc9000002-g001.jpg", "Leaf cross-section under low light.", "Figure 1",
              "f1", (s1,)),
        _pair(f"{pid}/pmc9000002-g002.jpg", "Leaf cross-section under high light. Scale bar, "
              "50 \u00b5m.", "Figure 2", "f2", (s1, s3)),
        _pair(f"{pid}/pmc9000002-g003.jpg", "Stomatal density per mm2 for each regime "
              "(mean \u00b1 s.d., n = 8).", "Figure 3", "f3", (s2,)),
    ]
    return _article(pid, _nxml(pid, "jats13", body, permissions=LIC_ALI, floats=floats), images,
                    expected, CC_BY_NC, {}, 3,
                    "JATS 1.3 default namespace, no DOCTYPE; figures in <floats-group>; "
                    "ali:license_ref; an xref whose rid lists two figures",
                    ("jats13", "floats_group", "license_ali", "multi_rid"))


def _a03() -> SampleArticle:
    pid = "PMC9000003"
    s1 = "The two colonies differed in foraging range (Figure 1)."
    s2 = "Colony B travelled further at dusk (Fig. 1B)."
    body = ('<p>The two colonies differed in foraging range (<xref ref-type="fig" rid="g1">'
            'Figure 1</xref>). Colony B travelled further at dusk (<xref ref-type="fig" '
            'rid="g1b">Fig. 1B</xref>).</p>\n'
            '<fig-group id="g1"><label>Figure 1</label><caption><title>Foraging tracks of two bat '
            'colonies.</title></caption>\n'
            + _fig("g1a", "A", "<p>Colony A, summer tracks.</p>", _g("pmc9000003-g1a"))
            + _fig("g1b", "B", "<p>Colony B, summer tracks.</p>", _g("pmc9000003-g1b"))
            + "</fig-group>")
    images = {"pmc9000003-g1a.jpg": _jpg(31), "pmc9000003-g1b.jpg": _jpg(32)}
    parent = "Foraging tracks of two bat colonies."
    expected = [
        _pair(f"{pid}/pmc9000003-g1a.jpg", "Colony A, summer tracks.", "A", "g1a", (s1,), parent),
        _pair(f"{pid}/pmc9000003-g1b.jpg", "Colony B, summer tracks.", "B", "g1b", (s1, s2),
              parent),
    ]
    return _article(pid, _nxml(pid, "jats13", body, permissions=LIC_P), images, expected,
                    LIC_P_TEXT, {}, 2,
                    "<fig-group> with its own caption (parent_caption) around two captioned "
                    "figures; mentions of the group id; licence from <license-p> text",
                    ("fig_group", "license_p"))


def _a04() -> SampleArticle:
    pid = "PMC9000004"
    kinds = [("F1", "Figure"), ("F2", "SCHEME"), ("F3", "photograph"), ("F4", "Table"),
             ("F5", "equation"), ("F6", "Video"), ("F7", "chemical-structure"), ("F8", None)]
    figs = ""
    images: dict[str, bytes] = {}
    expected = []
    for n, (fid, kind) in enumerate(kinds, 1):
        attrs = f' fig-type="{kind}"' if kind else ""
        caption = f"Panel {n} of the survey, type {kind or 'unspecified'}."
        figs += _fig(fid, f"Figure {n}", f"<p>{caption}</p>", _g(f"pmc9000004-f{n}"), attrs)
        images[f"pmc9000004-f{n}.jpg"] = _jpg(40 + n)
        if kind is None or kind.lower() in ("figure", "scheme", "photograph"):
            expected.append(_pair(f"{pid}/pmc9000004-f{n}.jpg", caption, f"Figure {n}", fid))
    body = "<p>Survey panels are listed below without cross-references.</p>\n" + figs
    return _article(pid, _nxml(pid, "nlm30", body), images, expected, CC_BY,
                    {"not_a_figure": 4}, 8,
                    "fig-type variants compared case-insensitively: Figure, SCHEME, photograph "
                    "and none are kept; Table, equation, Video, chemical-structure are not figures",
                    ("fig_type",))


def _a05() -> SampleArticle:
    pid = "PMC9000005"
    figs = (
        _fig("F1", "Abb. 1", "<p>Verteilung der Proben im Untersuchungsgebiet.</p>",
             _g("pmc9000005-f1"))
        + _fig("F2", "Figure 2", "<p>Sampling grid used in the second season.</p>",
               _g("pmc9000005-f2"), ' xml:lang="en"')
        + _fig("F3", "Figure 3", '<p>Ignored German text.</p>', _g("pmc9000005-f3"))
        .replace("<caption><p>Ignored German text.</p></caption>",
                 '<caption xml:lang="de"><p>Bodenfeuchte im Jahresverlauf.</p></caption>'
                 '<caption xml:lang="en"><p>Soil moisture over the year.</p></caption>')
        + _fig("F4", "Figure 4", "<p>Courbes de croissance.</p>", _g("pmc9000005-f4"))
        .replace("<caption>", '<caption xml:lang="fr">')
    )
    body = "<p>Die Proben wurden im Sommer entnommen.</p>\n" + figs
    images = {f"pmc9000005-f{i}.jpg": _jpg(50 + i) for i in (1, 2, 3, 4)}
    expected = [
        _pair(f"{pid}/pmc9000005-f2.jpg", "Sampling grid used in the second season.", "Figure 2",
              "F2"),
        _pair(f"{pid}/pmc9000005-f3.jpg", "Soil moisture over the year.", "Figure 3", "F3"),
    ]
    return _article(pid, _nxml(pid, "nlm23", body, lang="de"), images, expected, CC_BY,
                    {"non_english": 2}, 4,
                    "German article: a figure without xml:lang inherits 'de' (skipped), an "
                    "xml:lang='en' figure is kept, the English one of two captions is chosen, a "
                    "French caption is skipped", ("non_english",))


def _a06() -> SampleArticle:
    pid = "PMC9000006"
    figs = (
        _fig("F1", "Figura 1", "<p>Mapa de las parcelas.</p>", _g("pmc9000006-f1"),
             ' xml:lang="es"')
        + _fig("F2", "Figure 2", "<p>Plot layout, colour-coded by treatment.</p>",
               _g("pmc9000006-f2")).replace("<caption>", '<caption xml:lang="en-GB">')
        + _fig("F3", "Figure 3", "<p>Yield per plot.</p>", _g("pmc9000006-f3"))
    )
    images = {f"pmc9000006-f{i}.jpg": _jpg(60 + i) for i in (1, 2, 3)}
    expected = [
        _pair(f"{pid}/pmc9000006-f2.jpg", "Plot layout, colour-coded by treatment.", "Figure 2",
              "F2"),
        _pair(f"{pid}/pmc9000006-f3.jpg", "Yield per plot.", "Figure 3", "F3"),
    ]
    return _article(pid, _nxml(pid, "nlm23", "<p>Plots were sown in spring.</p>\n" + figs),
                    images, expected, CC_BY, {"non_english": 1}, 3,
                    "English article with one Spanish figure (skipped) and an en-GB caption (kept)",
                    ("non_english",))


def _a07() -> SampleArticle:
    pid = "PMC9000007"
    hrefs = ["pmc9000007-f1.png", "pmc9000007-f2.tif", "pmc9000007-f3", "pmc9000007-f4.gif",
             "pmc9000007-f5", "pmc9000007-f6"]
    chosen = ["pmc9000007-f1.png", "pmc9000007-f2.tif", "pmc9000007-f3.tiff",
              "pmc9000007-f4.jpg", "pmc9000007-f5.jpeg", "pmc9000007-f6.png"]
    images = {"pmc9000007-f1.png": _png(71), "pmc9000007-f2.tif": _tif(72),
              "pmc9000007-f3.tiff": _tif(73), "pmc9000007-f4.gif": _gif(74),
              "pmc9000007-f4.jpg": _jpg(74), "pmc9000007-f5.gif": _gif(75),
              "pmc9000007-f5.jpeg": _jpg(75), "pmc9000007-f6.tif": _tif(76),
              "pmc9000007-f6.png": _png(76)}
    figs, expected = "", []
    for n, (href, path) in enumerate(zip(hrefs, chosen, strict=True), 1):
        caption = f"Image format case {n}."
        figs += _fig(f"F{n}", f"Figure {n}", f"<p>{caption}</p>", _g(href))
        expected.append(_pair(f"{pid}/{path}", caption, f"Figure {n}", f"F{n}"))
    return _article(pid, _nxml(pid, "nlm30", figs), images, expected, CC_BY, {}, 6,
                    ".png and .tif hrefs with extension, an extension-less href to .tiff, a "
                    ".gif href resolved to the .jpg beside it, .jpeg beats .gif, .png beats .tif",
                    ("image_formats",))


def _a08() -> SampleArticle:
    pid = "PMC9000008"
    s1 = "Larvae were reared at three temperatures (Fig. 1; Table 1)."
    body = (
        '<p>Larvae were reared at three temperatures (<xref ref-type="fig" rid="F1">Fig. 1'
        '</xref>; <xref ref-type="table" rid="T1">Table 1</xref>). Growth followed '
        '<inline-graphic xlink:href="pmc9000008-i1"/> closely.</p>\n'
        '<disp-formula id="E1"><graphic xlink:href="pmc9000008-e1"/></disp-formula>\n'
        '<table-wrap id="T1"><label>Table 1</label><caption><p>Rearing temperatures.</p>'
        '</caption><graphic xlink:href="pmc9000008-t1"/></table-wrap>\n'
        + _fig("F1", "Figure 1", "<p>Larval length over 20 days.</p>", _g("pmc9000008-f1"))
        + '<supplementary-material id="S1"><caption><p>Raw counts.</p></caption>'
        '<graphic xlink:href="pmc9000008-s1"/></supplementary-material>'
    )
    images = {f"pmc9000008-{n}.jpg": _jpg(80 + i)
              for i, n in enumerate(("i1", "e1", "t1", "f1", "s1"))}
    expected = [_pair(f"{pid}/pmc9000008-f1.jpg", "Larval length over 20 days.", "Figure 1",
                      "F1", (s1,))]
    return _article(pid, _nxml(pid, "nlm30", body, permissions=LIC_TYPE), images, expected,
                    "open-access", {}, 1,
                    "graphics of a table-wrap, a disp-formula, an inline-graphic and a "
                    "supplementary-material are never figures; licence from license-type",
                    ("non_figure_graphics", "license_type"))


def _a09() -> SampleArticle:
    pid = "PMC9000009"
    cap1 = "Two views of the same specimen: dorsal and ventral."
    figs = (
        _fig("F1", "Figure 1", f"<p>{cap1}</p>", _g("pmc9000009-f1a") + _g("pmc9000009-f1b"))
        + _fig("F2", "Figure 2", "<p>Specimen length distribution.</p>",
               '<alternatives>' + _g("pmc9000009-f2.gif", ' specific-use="thumbnail"')
               + _g("pmc9000009-f2-full.jpg") + '</alternatives>')
        + _fig("F3", "Figure 3", "<p>Collection localities.</p>",
               '<alternatives>' + _g("pmc9000009-f3-full.jpg") + _g("pmc9000009-f3.gif")
               + '</alternatives>')
    )
    images = {"pmc9000009-f1a.jpg": _jpg(91), "pmc9000009-f1b.jpg": _jpg(92),
              "pmc9000009-f2.gif": _gif(93), "pmc9000009-f2-full.jpg": _jpg(93),
              "pmc9000009-f3.gif": _gif(94)}
    expected = [
        _pair(f"{pid}/pmc9000009-f1a.jpg", cap1, "Figure 1", "F1"),
        _pair(f"{pid}/pmc9000009-f1b.jpg", cap1, "Figure 1", "F1"),
        _pair(f"{pid}/pmc9000009-f2-full.jpg", "Specimen length distribution.", "Figure 2", "F2"),
        _pair(f"{pid}/pmc9000009-f3.gif", "Collection localities.", "Figure 3", "F3"),
    ]
    return _article(pid, _nxml(pid, "jats13", figs), images, expected, CC_BY, {}, 3,
                    "a figure with two graphics gives two pairs with the same caption; "
                    "<alternatives> collapse to the best resolvable file (jpg over gif; the gif "
                    "when the jpg is missing)", ("multi_graphic", "alternatives"))


def _a10() -> SampleArticle:
    pid = "PMC9000010"
    figs = (
        _fig("F1", "Figure 1", "<p>Missing image file.</p>", _g("pmc9000010-missing"))
        + _fig("F2", "Figure 2", "<p>A figure without any graphic.</p>", "")
        + _fig("F3", "Figure 3", None, _g("pmc9000010-f3"))
        + _fig("F4", "Figure 4", "<p>  \n </p>", _g("pmc9000010-f4"))
        + _fig("F5", "Figure 5", "<p>The only usable figure.</p>", _g("pmc9000010-f5"))
        + _fig("F6", "Figure 6", "<p>Escapes the package.</p>", _g("../PMC9000001/pmc9000001f1"))
        + _fig("F7", "Figure 7", "<p>Graphic without href.</p>", "<graphic/>")
    )
    images = {f"pmc9000010-f{i}.jpg": _jpg(100 + i) for i in (3, 4, 5)}
    expected = [_pair(f"{pid}/pmc9000010-f5.jpg", "The only usable figure.", "Figure 5", "F5")]
    return _article(pid, _nxml(pid, "nlm23", figs, permissions=""), images, expected, None,
                    {"graphic_not_found": 3, "no_graphic": 1, "no_caption": 2}, 7,
                    "skip reasons: missing file, no graphic, no caption, blank caption, an href "
                    "leaving the package, a graphic without href; no licence",
                    ("skips", "no_license"))


def _a11() -> SampleArticle:
    pid = "PMC9000011"
    figs = (
        _fig("F1", "Figure 1", "<p>Case differs but the match is unique.</p>", _g("Fig1"))
        + _fig("F2", "Figure 2", "<p>Two files differ only in case.</p>", _g("fig2"))
        + _fig("F3", "Figure 3", "<p>Exact case wins.</p>", _g("fig3"))
    )
    images = {"fig1.JPG": _jpg(111), "Fig2.jpg": _jpg(112), "FIG2.jpg": _jpg(113),
              "fig3.gif": _gif(114), "FIG3.jpg": _jpg(114)}
    expected = [
        _pair(f"{pid}/fig1.JPG", "Case differs but the match is unique.", "Figure 1", "F1"),
        _pair(f"{pid}/fig3.gif", "Exact case wins.", "Figure 3", "F3"),
    ]
    return _article(pid, _nxml(pid, "nlm30", figs), images, expected, CC_BY,
                    {"graphic_not_found": 1}, 3,
                    "case-insensitive href matching only when unique; an exact-case match wins",
                    ("href_case",))


def _a12() -> SampleArticle:
    pid = "PMC9000012"
    f1 = ('<title>Growth   of\n   <italic>E. coli</italic> strains</title>\n<p>Optical density '
          '(OD<sub>600</sub>) over 24 h; see <xref ref-type="bibr" rid="B1">[1]</xref>. '
          '<!-- internal note --> Doubling time <inline-formula><mml:math><mml:mi>\u03c4</mml:mi>'
          '\n <mml:mo>=</mml:mo>\n <mml:mn>42</mml:mn></mml:math></inline-formula> min.</p>\n'
          '<p>Strain labels follow <xref ref-type="table" rid="T1">Table 1</xref>&#160;and the '
          'key in panel&#x00A0;B.</p>')
    f2 = ('<p>Response to drug concentration <inline-formula><alternatives><tex-math>'
          '\\documentclass[12pt]{minimal}\\begin{document}$\\alpha$\\end{document}</tex-math>'
          '<mml:math><mml:mi>\u03b1</mml:mi></mml:math></alternatives></inline-formula> on a '
          'log scale.</p>')
    f3 = '<p>Fit of <bold>y</bold> against <inline-formula><tex-math>$x^2$</tex-math></inline-formula>.</p>'
    figs = (_fig("F1", "Figure 3", f1, _g("pmc9000012-f3"))
            + _fig("F2", "Figure 4", f2, _g("pmc9000012-f4"))
            + _fig("F3", "<bold>Figure 5</bold>", f3, _g("pmc9000012-f5")))
    images = {f"pmc9000012-f{i}.jpg": _jpg(120 + i) for i in (3, 4, 5)}
    expected = [
        _pair(f"{pid}/pmc9000012-f3.jpg", "Growth of E. coli strains. Optical density (OD600) "
              "over 24 h; see [1]. Doubling time \u03c4=42 min. Strain labels follow Table 1 "
              "and the key in panel B.", "Figure 3", "F1"),
        _pair(f"{pid}/pmc9000012-f4.jpg", "Response to drug concentration \u03b1 on a log scale.",
              "Figure 4", "F2"),
        _pair(f"{pid}/pmc9000012-f5.jpg", "Fit of y against x^2.", "Figure 5", "F3"),
    ]
    return _article(pid, _nxml(pid, "jats13", figs), images, expected, CC_BY, {}, 3,
                    "caption text: title gets a period, whitespace collapsed, inline markup "
                    "dropped, xref text kept, comments ignored, MathML preferred over TeX",
                    ("caption_text", "math"))


def _a13() -> SampleArticle:
    pid = "PMC9000013"
    s1 = "Quadrats were placed at random (Fig. 1); rainfall is shown in Fig. A1."
    body = ('<p>Quadrats were placed at random (<xref ref-type="fig" rid="F1">Fig. 1</xref>); '
            'rainfall is shown in <xref ref-type="fig" rid="FA1">Fig. A1</xref>.</p>\n'
            '<boxed-text id="B1"><caption><title>Box 1</title></caption><p>Field protocol '
            'summary.</p>'
            + _fig("F1", "Figure 1", "<p>Quadrat layout used in every plot.</p>",
                   _g("pmc9000013-f1"))
            + "</boxed-text>")
    back = ('<back><app-group><app id="A1"><title>Appendix</title>'
            + _fig("FA1", "Figure A1", "<p>Seasonal rainfall at the field station.</p>",
                   _g("pmc9000013-fa1"))
            + "</app></app-group></back>\n")
    images = {"pmc9000013-f1.jpg": _jpg(131), "pmc9000013-fa1.jpg": _jpg(132)}
    expected = [
        _pair(f"{pid}/pmc9000013-f1.jpg", "Quadrat layout used in every plot.", "Figure 1", "F1",
              (s1,)),
        _pair(f"{pid}/pmc9000013-fa1.jpg", "Seasonal rainfall at the field station.",
              "Figure A1", "FA1", (s1,)),
    ]
    return _article(pid, _nxml(pid, "nlm30", body, permissions="", back=back), images,
                    expected, None, {}, 2,
                    "figures inside <boxed-text> and in an appendix (<back>/<app>); no licence",
                    ("boxed_text", "appendix", "no_license"))


def _a14() -> SampleArticle:
    pid = "PMC9000014"
    figs = _fig("F1", "Figure 1", "<p>Survey region and transects.</p>", _g("pmc9000014-f1"),
                ' fig-type="map"')
    expected = [_pair(f"{pid}/pmc9000014-f1.jpg", "Survey region and transects.", "Figure 1",
                      "F1")]
    return _article(pid, _nxml(pid, "jats13", figs, article_id=False),
                    {"pmc9000014-f1.jpg": _jpg(141)}, expected, CC_BY, {}, 1,
                    "no PMC article-id: the paper id comes from the package name; fig-type map",
                    ("package_name_id",))


def _a15() -> SampleArticle:
    pid = "PMC9000015"
    s1 = "Nest sites clustered near the river mouth (Fig. 1)."
    s2 = "Hatching success did not differ between years (Fig. 1 inset)."
    body = ('<p>Nest sites clustered near the river mouth (<xref ref-type="fig" rid="F1">Fig. 1'
            '</xref>).'
            + _fig("F1", "Fig. 1", "<p>Map of nest sites; the river is shown in blue.</p>",
                   _g("pmc9000015f1"))
            + ' Most nests faced south-east.</p>\n<p>Hatching success did not differ between '
            'years (<xref ref-type="fig" rid="F1">Fig. 1</xref> inset).</p>')
    expected = [_pair(f"{pid}/pmc9000015f1.jpg", "Map of nest sites; the river is shown in blue.",
                      "Fig. 1", "F1", (s1, s2))]
    return _article(pid, _nxml(pid, "nlm30", body), {"pmc9000015f1.jpg": _jpg(151)}, expected,
                    CC_BY, {}, 1,
                    "a figure anchored inside a paragraph: its caption is not paragraph text",
                    ("fig_in_p", "mentions"))


def _a16() -> SampleArticle:
    pid = "PMC9000016"
    s1 = ("Body mass was 3.25 g on average (i.e. lighter than expected), as noted by Tanaka et "
          "al. in earlier surveys (Fig. 1a).")
    s2 = "Wing length, e.g. in adult males, scaled with mass (Fig. 1b; cf. Fig. 2)."
    s4 = "We think so (Fig. 2)."
    s5 = "As before, wing length scaled with mass (Fig. 2)."
    x1a = '(<xref ref-type="fig" rid="F1">Fig. 1a</xref>)'
    body = (
        '<p>Body mass was 3.25 g on average (i.e. lighter than expected), as noted by Tanaka et '
        f'al. in earlier surveys {x1a}. Wing length, e.g. in adult males, scaled with mass '
        '(<xref ref-type="fig" rid="F1">Fig. 1b</xref>; cf. <xref ref-type="fig" rid="F2">Fig. 2'
        '</xref>). Is the trend robust? We think so (<xref ref-type="fig" rid="F2">Fig. 2</xref>).'
        '</p>\n<p>As before, wing length scaled with mass (<xref ref-type="fig" rid="F2">Fig. 2'
        '</xref>). Body mass was 3.25 g on average (i.e. lighter than expected), as noted by '
        f'Tanaka et al. in earlier surveys {x1a}.</p>\n'
        + _fig("F1", "Figure 1", "<p>Body mass (a) and wing length (b) of adults.</p>",
               _g("pmc9000016-f1"))
        + _fig("F2", "Figure 2", "<p>Wing length against body mass.</p>", _g("pmc9000016-f2"))
    )
    images = {"pmc9000016-f1.jpg": _jpg(161), "pmc9000016-f2.jpg": _jpg(162)}
    expected = [
        _pair(f"{pid}/pmc9000016-f1.jpg", "Body mass (a) and wing length (b) of adults.",
              "Figure 1", "F1", (s1, s2)),
        _pair(f"{pid}/pmc9000016-f2.jpg", "Wing length against body mass.", "Figure 2", "F2",
              (s2, s4, s5)),
    ]
    return _article(pid, _nxml(pid, "jats13", body), images, expected, CC_BY, {}, 2,
                    "sentence splitting keeps 'Fig.', 'et al.', 'e.g.', 'i.e.', 'cf.' and decimals "
                    "inside sentences; repeated sentences are deduplicated",
                    ("mentions", "sentences"))


def _a17() -> SampleArticle:
    pid = "PMC9000017"
    parent = "Coral cover before and after the heatwave."
    graphics = ('<graphic xlink:href="pmc9000017-f1a"><caption><p>Reef flat, 2019.</p></caption>'
                '</graphic><graphic xlink:href="pmc9000017-f1b"><caption><p>Reef flat, 2021.</p>'
                '</caption></graphic>')
    figs = _fig("F1", "Figure 1", f"<title>{parent}</title>", graphics)
    images = {"pmc9000017-f1a.jpg": _jpg(171), "pmc9000017-f1b.jpg": _jpg(172)}
    expected = [
        _pair(f"{pid}/pmc9000017-f1a.jpg", "Reef flat, 2019.", "Figure 1", "F1", (), parent),
        _pair(f"{pid}/pmc9000017-f1b.jpg", "Reef flat, 2021.", "Figure 1", "F1", (), parent),
    ]
    return _article(pid, _nxml(pid, "nlm30", figs), images, expected, CC_BY, {}, 1,
                    "panels with their own <graphic><caption>: the panel caption is the caption, "
                    "the figure caption the parent_caption", ("graphic_caption",))


def _a18() -> SampleArticle:
    pid = "PMC9000018"
    s1 = "Pollen of all three species is shown in Figure 2."
    cap = "Pollen grains of three alpine species under light microscopy."
    body = ('<p>Pollen of all three species is shown in <xref ref-type="fig" rid="G1">Figure 2'
            '</xref>.</p>\n<fig-group id="G1"><label>Figure 2</label><caption><p>'
            f'{cap}</p></caption>'
            + _fig("G1a", None, None, _g("pmc9000018-g2a"))
            + _fig("G1b", None, None, _g("pmc9000018-g2b"))
            + "</fig-group>")
    images = {"pmc9000018-g2a.jpg": _jpg(181), "pmc9000018-g2b.jpg": _jpg(182)}
    expected = [
        _pair(f"{pid}/pmc9000018-g2a.jpg", cap, "Figure 2", "G1a", (s1,)),
        _pair(f"{pid}/pmc9000018-g2b.jpg", cap, "Figure 2", "G1b", (s1,)),
    ]
    return _article(pid, _nxml(pid, "nlm23", body), images, expected, CC_BY, {}, 2,
                    "<fig-group> whose figures have no caption or label: each takes the group's",
                    ("fig_group",))


def _a19() -> SampleArticle:
    pid = "PMC9000019"
    figs = (_fig("F1", "Figure 1", "<p>Original use of the image.</p>", _g("pmc9000019-f1"))
            + _fig("F2", "Figure 2", "<p>The same image again.</p>", _g("pmc9000019-f1"))
            + _fig("F3", "Figure 3", "<p>A different image.</p>", _g("pmc9000019-f3")))
    images = {"pmc9000019-f1.jpg": _jpg(191), "pmc9000019-f3.jpg": _jpg(193)}
    expected = [
        _pair(f"{pid}/pmc9000019-f1.jpg", "Original use of the image.", "Figure 1", "F1"),
        _pair(f"{pid}/pmc9000019-f3.jpg", "A different image.", "Figure 3", "F3"),
    ]
    return _article(pid, _nxml(pid, "jats13", figs), images, expected, CC_BY,
                    {"duplicate_graphic": 1}, 3,
                    "two figures pointing at one image: the image is paired once",
                    ("duplicate_graphic",))


def _a20() -> SampleArticle:
    pid = "PMC9000020"
    lic = ('<permissions><license><license-p>\n  Published under the\n  '
           '<ext-link ext-link-type="uri" xlink:href="https://example.org/open">Example Open '
           'Licence</ext-link>,   version 2.\n</license-p></license></permissions>')
    floats = ("<floats-wrap>"
              + _fig("F1", "Figure 1", "<p>Specimen drawer, top view.</p>",
                     _g("pmc9000020f1.jpg"), ' fig-type="fig"')
              + _fig("F2", "Figure 2", "<p>Specimen drawer, side view.</p>",
                     _g("pmc9000020f2.jpg"), ' fig-type="Illustration"')
              + "</floats-wrap>\n")
    images = {"pmc9000020f1.jpg": _jpg(201), "pmc9000020f2.jpg": _jpg(202)}
    expected = [
        _pair(f"{pid}/pmc9000020f1.jpg", "Specimen drawer, top view.", "Figure 1", "F1"),
        _pair(f"{pid}/pmc9000020f2.jpg", "Specimen drawer, side view.", "Figure 2", "F2"),
    ]
    return _article(pid, _nxml(pid, "nlm11", "<p>Drawers were photographed.</p>",
                               permissions=lic, floats=floats, lang=None),
                    images, expected, "Published under the Example Open Licence, version 2.",
                    {}, 2,
                    "NLM Publishing 1.1 DOCTYPE, figures in <floats-wrap>, hrefs with .jpg, "
                    "licence text with whitespace normalised", ("nlm11", "floats_wrap"))


# --- hostile articles -------------------------------------------------------------------------

_SIMPLE_FIG = _fig("F1", "Figure 1", "<p>Wind speed at 10&nbsp;m height.</p>", _g("fig1"))
_BILLION_LAUGHS = (
    '<!DOCTYPE article [\n<!ENTITY lol "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
              for i in range(1, 10))
    + "]>"
)
_XXE = '<!DOCTYPE article [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>'
EXTERNAL_DTD_URL = "http://127.0.0.1:9/datacomp-sci-evil.dtd"


def _hostile(pid: str, nxml: bytes | None, expected: list[dict], skips: dict[str, int],
             found: int, description: str, license: str | None = None,
             extra: dict[str, bytes] | None = None) -> SampleArticle:
    files = {} if nxml is None else {f"{pid}/{pid}.nxml": nxml}
    files[f"{pid}/fig1.jpg"] = _jpg(int(pid[-2:]))
    files.update(extra or {})
    return SampleArticle(pid, files, expected, license, skips, description, found, ["hostile"])


def _h21() -> SampleArticle:
    pid = "PMC9000021"
    body = _SIMPLE_FIG.replace("Wind speed", "&lol9; Wind speed")
    return _hostile(pid, _nxml(pid, "nlm23", body, doctype=_BILLION_LAUGHS), [],
                    {"xml_unsafe": 1}, 0, "billion-laughs entity expansion: refused, not expanded")


def _h22() -> SampleArticle:
    pid = "PMC9000022"
    body = _SIMPLE_FIG.replace("Wind speed", "&xxe; Wind speed")
    return _hostile(pid, _nxml(pid, "nlm23", body, doctype=_XXE), [], {"xml_unsafe": 1}, 0,
                    "external entity SYSTEM file:///etc/passwd: refused, never read")


def _h23() -> SampleArticle:
    pid = "PMC9000023"
    doctype = f'<!DOCTYPE article SYSTEM "{EXTERNAL_DTD_URL}">'
    expected = [_pair(f"{pid}/fig1.jpg", "Wind speed at 10 m height.", "Figure 1", "F1")]
    return _hostile(pid, _nxml(pid, "nlm23", _SIMPLE_FIG, doctype=doctype), expected, {}, 1,
                    "external DTD URL: never fetched; the undeclared &nbsp; reads as a space",
                    license=CC_BY)


def _h24() -> SampleArticle:
    pid = "PMC9000024"
    full = _nxml(pid, "nlm23", _SIMPLE_FIG + _fig("F2", "Figure 2", "<p>Second.</p>", _g("f2")))
    return _hostile(pid, full[: full.index(b"Second")], [], {"xml_error": 1}, 0,
                    "truncated XML: a counted xml_error, no pairs")


def _h25() -> SampleArticle:
    return _hostile("PMC9000025", None, [], {"no_nxml": 1}, 0, "a package without .nxml")


def _h26() -> SampleArticle:
    pid = "PMC9000026"
    other = _nxml(pid, "nlm23", _fig("F9", "Figure 9", "<p>Stale copy.</p>", _g("../fig1")))
    expected = [_pair(f"{pid}/fig1.jpg", "Wind speed at 10 m height.", "Figure 1", "F1")]
    return _hostile(pid, _nxml(pid, "nlm23", _SIMPLE_FIG), expected, {"several_nxml": 1}, 1,
                    "two .nxml files: the one named after the package is used, the choice counted",
                    license=CC_BY, extra={f"{pid}/old/{pid}-v1.nxml": other})


def _h27() -> SampleArticle:
    pid = "PMC9000027"
    body = "<p>Salt & pepper were added.</p>\n" + _SIMPLE_FIG
    expected = [_pair(f"{pid}/fig1.jpg", "Wind speed at 10 m height.", "Figure 1", "F1")]
    return _hostile(pid, _nxml(pid, "nlm23", body), expected, {"xml_recovered": 1}, 1,
                    "a stray '&' in a complete document: parsed in recover mode and counted",
                    license=CC_BY)


_BUILDERS = (_a01, _a02, _a03, _a04, _a05, _a06, _a07, _a08, _a09, _a10, _a11, _a12, _a13,
             _a14, _a15, _a16, _a17, _a18, _a19, _a20, _h21, _h22, _h23, _h24, _h25, _h26, _h27)


@functools.lru_cache(maxsize=1)
def _build_all() -> tuple[SampleArticle, ...]:
    return tuple(build() for build in _BUILDERS)


def pmc_samples() -> list[SampleArticle]:
    """All sample articles, in PMCID order (a fresh copy each call; same bytes every time)."""
    return [copy.deepcopy(a) for a in _build_all()]
