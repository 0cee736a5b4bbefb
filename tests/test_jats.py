"""The PMC (JATS) extractor: sample corpus with exact expectations, rules, hostile XML."""

from __future__ import annotations

import http.server
import threading
from dataclasses import asdict

import pytest
from helpers import hang_guard

from datacomp_sci.extract.jats import extract_jats, pmc_figure_url, split_sentences
from datacomp_sci.samplegen.pmc import EXTERNAL_DTD_URL, SampleArticle, pmc_samples

SAMPLES = pmc_samples()
BY_ID = {a.pmcid: a for a in SAMPLES}
PAIR_KEYS = ("figure_path", "caption", "label", "parent_caption", "mentions", "anchor")


def _pairs(result) -> list[dict]:
    return [{k: asdict(p)[k] for k in PAIR_KEYS} for p in result.pairs]


def _article(inner: str, root: str = "<article>", doctype: str = "") -> dict[str, bytes]:
    xml = f'<?xml version="1.0"?>{doctype}{root}{inner}</article>'.encode()
    return {"PMC1/PMC1.nxml": xml, "PMC1/f1.jpg": b"\xff\xd8jpeg"}


_FIG = ('<body><fig id="F1"><label>Figure 1</label><caption><p>A caption.</p></caption>'
        '<graphic xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="f1"/></fig></body>')


# --- the sample corpus ---------------------------------------------------------------------------

@pytest.mark.parametrize("article", SAMPLES, ids=[a.pmcid for a in SAMPLES])
def test_sample_article_gives_exactly_its_expected_pairs(article: SampleArticle):
    result = extract_jats(article.files, article.pmcid)
    assert result.paper_id == article.pmcid
    assert _pairs(result) == article.expected
    assert result.license == article.expected_license
    assert result.skipped == article.expected_skips
    assert result.figures_found == article.expected_figures_found
    for pair in result.pairs:
        assert pair.figure_path in article.files


def test_extraction_is_deterministic():
    art = BY_ID["PMC9000016"]
    assert _pairs(extract_jats(art.files, art.pmcid)) == _pairs(extract_jats(dict(
        reversed(list(art.files.items()))), art.pmcid))


# --- hostile XML -----------------------------------------------------------------------------------

def test_billion_laughs_is_refused_fast_and_never_expanded():
    art = BY_ID["PMC9000021"]
    with hang_guard():
        result = extract_jats(art.files, art.pmcid)
    assert result.skipped == {"xml_unsafe": 1} and result.pairs == []
    assert "lollol" not in repr(result)


def test_billion_laughs_in_utf16_is_refused_too():
    nxml = BY_ID["PMC9000021"].files["PMC9000021/PMC9000021.nxml"]
    utf16 = nxml.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    result = extract_jats({"PMC9000021/PMC9000021.nxml": utf16}, "PMC9000021")
    assert result.skipped == {"xml_unsafe": 1} and result.pairs == []


def test_external_entity_never_reads_local_files():
    art = BY_ID["PMC9000022"]
    result = extract_jats(art.files, art.pmcid)
    assert result.skipped == {"xml_unsafe": 1}
    assert "root:" not in repr(result)
    param = ('<!DOCTYPE article [<!ENTITY % x SYSTEM "file:///etc/passwd"> %x;]>')
    result = extract_jats(_article(_FIG, doctype=param), "PMC1")
    assert result.skipped == {"xml_unsafe": 1} and "root:" not in repr(result)


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server API)
        _CountingHandler.hits.append(self.path)
        body = b'<!ENTITY nbsp "LEAKED">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_external_dtd_on_loopback_is_never_fetched():
    server = http.server.HTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        art = BY_ID["PMC9000023"]
        url = f"http://127.0.0.1:{server.server_port}/evil.dtd".encode()
        files = {k: v.replace(EXTERNAL_DTD_URL.encode(), url) for k, v in art.files.items()}
        result = extract_jats(files, art.pmcid)
    finally:
        server.shutdown()
        server.server_close()
    assert _CountingHandler.hits == []
    assert [p.caption for p in result.pairs] == ["Wind speed at 10 m height."]
    assert "LEAKED" not in repr(result)


@pytest.mark.parametrize("data,reason", [
    (b"", "xml_error"),
    (b"\x00\x01not xml at all", "xml_error"),
    (b"<article><body><p>cut here", "xml_error"),
    (b"<article><body>" + b"<sec>" * 300 + b"</sec>" * 300 + b"</body></article>", "xml_error"),
    (b"<notjats/>", "xml_error"),
])
def test_malformed_xml_is_a_counted_error(data: bytes, reason: str):
    result = extract_jats({"PMC1/PMC1.nxml": data}, "PMC1.tar.gz")
    assert result.skipped == {reason: 1}
    assert result.paper_id == "PMC1" and result.pairs == []


def test_recoverable_error_in_complete_document_is_counted_and_kept():
    files = _article("<body><p>Salt & pepper.</p>" + _FIG[len("<body>"):])
    result = extract_jats(files, "PMC1")
    assert result.skipped == {"xml_recovered": 1}
    assert [p.caption for p in result.pairs] == ["A caption."]


# --- rules ------------------------------------------------------------------------------------------

def test_any_default_namespace_and_oai_wrapper_are_read():
    nlm = '<article xmlns="http://dtd.nlm.nih.gov/2.0/xsd/archivearticle">'
    assert [p.figure_path for p in extract_jats(_article(_FIG, nlm), "PMC1").pairs] == ["PMC1/f1.jpg"]
    wrapped = ('<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><GetRecord><metadata>'
               '<article xmlns="https://jats.nlm.nih.gov/ns/archiving/1.3/"><front><article-meta>'
               '<article-id pub-id-type="pmcid">PMC77</article-id></article-meta></front>'
               f'{_FIG}</article></metadata></GetRecord></OAI-PMH>').encode()
    result = extract_jats({"PMC1/PMC1.nxml": wrapped, "PMC1/f1.jpg": b"x"}, "PMC1")
    assert result.paper_id == "PMC77" and len(result.pairs) == 1


@pytest.mark.parametrize("fig_type,kept", [
    ("FIGURE", True), ("Fig", True), ("graph", True), ("Chart", True), ("map", True),
    ("schematic", True), ("plate", True), ("TABLE", False), ("Equation", False),
    ("Chemical Structure", False), ("chemical_structure", False), ("movie", False),
])
def test_fig_type_is_compared_case_insensitively(fig_type: str, kept: bool):
    fig = _FIG.replace('<fig id="F1">', f'<fig id="F1" fig-type="{fig_type}">')
    result = extract_jats(_article(fig), "PMC1")
    assert len(result.pairs) == (1 if kept else 0)
    assert result.skipped == ({} if kept else {"not_a_figure": 1})


def test_licence_is_null_without_permissions_and_carried_by_result():
    assert extract_jats(_article(_FIG), "PMC1").license is None
    assert BY_ID["PMC9000001"].expected_license == "https://creativecommons.org/licenses/by/4.0/"


def test_pmcid_from_article_id_wins_over_package_name():
    meta = '<front><article-meta><article-id pub-id-type="pmc">4242</article-id></article-meta></front>'
    assert extract_jats(_article(meta + _FIG), "PMC1").paper_id == "PMC4242"


def test_sentence_splitting_keeps_abbreviations_and_decimals_together():
    text = ("Values rose 2.5-fold (Fig. 3; see Smith et al. 2020), e.g. in roots, i.e. below "
            "ground. J. Doe disagreed! Why? Because vs. controls the change was 1.0.")
    spans = [text[a:b] for a, b in split_sentences(text)]
    assert spans == [
        "Values rose 2.5-fold (Fig. 3; see Smith et al. 2020), e.g. in roots, i.e. below ground.",
        "J. Doe disagreed!",
        "Why?",
        "Because vs. controls the change was 1.0.",
    ]


def test_pmc_figure_url():
    assert pmc_figure_url("PMC3357053", "PLS011F1") == (
        "https://pmc.ncbi.nlm.nih.gov/articles/PMC3357053/figure/PLS011F1/")
    assert pmc_figure_url("3357053", None) == "https://pmc.ncbi.nlm.nih.gov/articles/PMC3357053/"
    assert pmc_figure_url("PMC1", "f 1/x") == "https://pmc.ncbi.nlm.nih.gov/articles/PMC1/figure/f%201%2Fx/"
    with pytest.raises(ValueError, match="not a PMCID"):
        pmc_figure_url("arXiv:2101.00001", "F1")


def typical_article() -> dict[str, bytes]:
    """A 200 kB article: 1,200 paragraphs citing 20 figures (its extraction is timed by
    ``benchmarks/extract.py``)."""
    para = ('<p>Cells were counted in each well (<xref ref-type="fig" rid="F{n}">Fig. {n}</xref>). '
            'The mean was 4.2 per field, e.g. in controls. Counts rose with dose.</p>\n')
    figs = "".join(_FIG[len("<body>"):-len("</body>")].replace('"F1"', f'"F{n}"')
                   .replace('"f1"', f'"f{n}"') for n in range(20))
    body = "<body>" + "".join(para.format(n=i % 20) for i in range(1200)) + figs + "</body>"
    files = _article(body)
    files.update({f"PMC1/f{n}.jpg": b"x" for n in range(20)})
    return files


def test_typical_200kb_article_extracts_every_figure_and_mention():
    files = typical_article()
    assert 190_000 < len(files["PMC1/PMC1.nxml"]) < 260_000
    result = extract_jats(files, "PMC1")
    assert len(result.pairs) == 20 and len(result.pairs[3].mentions) == 1


# --- absolute-URL hrefs and figure formats -------------------------------------------------

def _fig_with_href(href: str) -> str:
    return (f'<body><fig id="F1"><caption><p>A caption.</p></caption><graphic '
            f'xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="{href}"/></fig></body>')


@pytest.mark.parametrize("href, files, expected", [
    ("https://peerj.com/articles/1/fig-1.png", {"PMC1/fig-1.png": b"p"}, "PMC1/fig-1.png"),
    ("https://x.copernicus.org/a/f01.png?v=2", {"PMC1/f01.jpg": b"j"}, "PMC1/f01.jpg"),
    ("http://h/x/My%20Fig.tif", {"PMC1/My Fig.jpg": b"j"}, "PMC1/My Fig.jpg"),
    ("https://h/img/f1", {"PMC1/f1.gif": b"g", "PMC1/f1.jpg": b"j"}, "PMC1/f1.jpg"),
])
def test_url_href_resolves_to_the_packaged_file_by_base_name(href, files, expected):
    xml = f'<?xml version="1.0"?><article>{_fig_with_href(href)}</article>'.encode()
    result = extract_jats({"PMC1/PMC1.nxml": xml, **files}, "PMC1")
    assert [p.figure_path for p in result.pairs] == [expected]


def test_url_href_without_a_packaged_file_is_not_found():
    xml = f'<?xml version="1.0"?><article>{_fig_with_href("https://h/fig-9.png")}</article>'
    result = extract_jats({"PMC1/PMC1.nxml": xml.encode(), "PMC1/other.jpg": b"j"}, "PMC1")
    assert result.pairs == [] and result.skipped == {"graphic_not_found": 1}
    assert "URLs are never fetched" in result.skipped_items[0]["detail"]


@pytest.mark.parametrize("ext", [".webp", ".bmp", ".pdf", ".eps", ".ps"])
def test_figures_in_every_decodable_format_are_pairs_ranked_after_jpeg(ext):
    alone = extract_jats({**_article(_FIG), "PMC1/f1.jpg": b"", f"PMC1/f1{ext}": b"x"}, "PMC1")
    assert [p.figure_path for p in alone.pairs] == [f"PMC1/f1{ext}"]
    both = extract_jats({**_article(_FIG), f"PMC1/f1{ext}": b"x"}, "PMC1")
    assert [p.figure_path for p in both.pairs] == ["PMC1/f1.jpg"]
