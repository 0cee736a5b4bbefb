"""leaderboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright; no browser is downloaded), against a server the test starts on 127.0.0.1."""

from __future__ import annotations

import os
import shutil

import pytest
from helpers import live_board, make_submission, tar_bytes

from datacomp_sci.leaderboard.ingest import import_paths
from datacomp_sci.leaderboard.store import Store

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
XSS = "<script>alert(1)</script>"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run "
                              "installs it)"),
]

# (method, offset of every task score, dataset size, authors)
SUBMISSIONS = [("CLIP score L/14 30%", 0.05, 35, "DataComp team"),
               ("sci pairs", 0.02, 12, "Metzger et al."),
               (XSS, -0.05, 3, "Mallory"),
               ("basic filter", 0.0, 9, "Student group 3")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    store = Store.open(tmp / "board")
    token = store.add_token("browser")
    subs = [make_submission(tmp, m, offset=o, n=n, authors=a) for m, o, n, a in SUBMISSIONS]
    ids = {acc.entry.method: acc.entry.id for acc in import_paths(store, subs)}
    base = make_submission(tmp, "CommonPool baseline", offset=-0.01, n=50, authors="board")
    import_paths(store, [base], baseline=True)
    (tmp / "bad.tar").write_bytes(tar_bytes([("submission.json", b"{}"),
                                             ("../escape.txt", b"x")]))
    with live_board(store) as url:
        yield url, token, ids, tmp


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    pg = context.new_page()
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.dialogs = dialogs
    yield pg
    context.close()


def methods(page) -> list[str]:
    return page.eval_on_selector_all("#ranking tbody tr:not([hidden]) td.method a",
                                     "els => els.map(e => e.textContent)")


def test_ranking_rows_in_datacomp_order_with_xss_as_text(site, page):
    url, _, _, _ = site
    page.goto(f"{url}/board/small/filtering/")
    assert methods(page) == ["CLIP score L/14 30%", "sci pairs", "basic filter",
                             "CommonPool baseline", XSS, "CommonPool + arXiv + PMC",
                             "CommonPool", "arXiv + PMC"]
    ranks = page.eval_on_selector_all("#ranking tbody tr td:nth-child(2)",
                                      "els => els.map(e => e.textContent)")
    assert ranks[:5] == ["1", "2", "3", "", "4"]
    assert page.dialogs == []
    assert page.locator("script").count() == 1  # only the site's own board.js


def test_sorting_and_filtering(site, page):
    url, _, _, _ = site
    page.goto(f"{url}/board/small/filtering/")
    page.click("th[data-key=dataset_size] button")
    assert methods(page)[:5] == ["CommonPool baseline", "CLIP score L/14 30%", "sci pairs",
                                 "basic filter", XSS]
    assert page.get_attribute("th[data-key=dataset_size]", "aria-sort") == "descending"
    page.click("th[data-key=dataset_size] button")
    assert methods(page)[:5] == [XSS, "basic filter", "sci pairs", "CLIP score L/14 30%",
                                 "CommonPool baseline"]
    page.click("th[data-key=method] button")
    assert methods(page)[0] == XSS and methods(page)[1] == "arXiv + PMC"
    page.fill("#filter", "group 3")
    assert methods(page) == ["basic filter"]
    assert page.text_content("#shown") == "1 of 8 shown"
    page.fill("#filter", "")
    page.uncheck("#show-baselines")
    assert len(methods(page)) == 4 and "CommonPool" not in methods(page)


def test_submission_page_shows_tasks_and_plot(site, page):
    url, _, ids, _ = site
    page.goto(f"{url}/board/small/filtering/")
    page.click("text=sci pairs")
    page.wait_for_selector("#delta-plot")
    assert page.text_content("h1#method").strip() == "sci pairs"
    assert page.locator("#tasks tbody tr").count() == 38
    assert page.eval_on_selector("#delta-plot", "img => img.complete && img.naturalWidth") > 300
    assert "CommonPool baseline" in page.text_content("#baseline option:checked")
    assert "+0.030" in page.text_content("#tasks")  # 0.02 - (-0.01) on every task
    page.select_option("#baseline", ids["basic filter"])
    page.click("text=Show")
    page.wait_for_url(f"**baseline={ids['basic filter']}")
    assert "+0.020" in page.text_content("#tasks")
    assert page.eval_on_selector("#delta-plot", "img => img.naturalWidth") > 300


def test_xss_method_renders_as_text_on_its_page(site, page):
    url, _, ids, _ = site
    page.goto(f"{url}/submission/{ids[XSS]}/")
    assert page.text_content("h1#method").strip() == XSS
    assert page.dialogs == []


def test_compare_selected_entries(site, page):
    url, _, ids, _ = site
    page.goto(f"{url}/board/small/filtering/")
    assert page.is_disabled("#compare-button")
    page.check(f"input[value='{ids['sci pairs']}']")
    page.check(f"input[value='{ids['basic filter']}']")
    page.click("#compare-button")
    page.wait_for_selector("#compare-plot")
    assert page.url.endswith(f"/compare/{ids['sci pairs']}+{ids['basic filter']}/")
    assert page.eval_on_selector("#compare-plot", "img => img.naturalWidth") > 300
    assert page.locator("#compare tbody tr").count() == 5 + 1 + 38


def test_bad_upload_shows_its_errors(site, page):
    url, token, _, tmp = site
    page.goto(f"{url}/submit/")
    page.fill("#token", token)
    page.set_input_files("#archive", str(tmp / "bad.tar"))
    page.click("#upload")
    page.wait_for_selector("#result")
    text = page.text_content("#result")
    assert "not accepted" in text and "path leaves the archive" in text
    page.fill("#token", "wrong")
    page.set_input_files("#archive", str(tmp / "bad.tar"))
    page.click("#upload")
    page.wait_for_selector("#result")
    assert "token is not valid" in page.text_content("#result")
    assert not (tmp / "escape.txt").exists()
