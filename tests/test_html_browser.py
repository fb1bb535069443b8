"""The HTML paper in a real browser (headless Chromium through selenium): at 400 px and 1280 px
the page does not scroll sideways, wide tables scroll in their own box, every internal link
resolves and nothing is requested outside the file.

Skipped with a reason where selenium, Chromium or chromedriver is missing (Debian:
``apt-get install chromium chromium-driver``; ``pip install selenium``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from discbias.paths import ProjectPaths
from discbias.report.render import render_html, render_qmd
from discbias.report.tables import PubTable

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")

CHROME = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
DRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (CHROME and DRIVER),
                                 reason="no Chromium/chromedriver (Debian: apt-get install chromium chromium-driver)")]
REPO = Path(__file__).resolve().parents[1]
BUILT = REPO / "build" / "report" / "paper.html"


@pytest.fixture(scope="module")
def small_paper(tmp_path_factory) -> Path:
    """A small paper with what breaks narrow screens: a wide table, long code, a figure, a TOC."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = tmp_path_factory.mktemp("html")
    paths = ProjectPaths(root).ensure()
    paths.values.write_text(json.dumps({"x": 1}))
    wide = pd.DataFrame({f"Specification number {k}": [-1234.5678 * k, 0.5] for k in range(14)})
    PubTable(wide, caption="A wide table.", label="tbl-wide").write(paths.tables, "wide")
    fig, ax = plt.subplots(figsize=(5.77, 2.5))
    ax.plot([0, 1], [0, 1])
    paths.figures.mkdir(parents=True, exist_ok=True)
    fig.savefig(paths.figures / "line.svg")
    plt.close(fig)
    tdir = root / "templates"
    (tdir / "sections").mkdir(parents=True)
    (tdir / "paper.qmd.j2").write_text(
        '---\ntitle: "T"\nlang: en\n---\n\n# Results {#sec-results}\n\nSee @tbl-wide and @fig-line; a long identifier '
        "`build/results/a_very_long_results_file_name_without_any_break_points_at_all_0123456789.csv`.\n\n"
        "<< table('wide') >>\n\n![A line, n = 2.](<< figure('line') >>){#fig-line width=90%}\n\n"
        "# More {#sec-more}\n\nBack to @sec-results.\n")
    return render_html(render_qmd(paths, tdir))


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROME
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield d
    d.quit()


def _open(browser, page: Path, width: int) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    browser.get(page.as_uri())


def _problems(browser) -> dict:
    return browser.execute_script("""
      const d = document.documentElement;
      const ids = Array.from(document.querySelectorAll('a[href^="#"]')).map(a => a.getAttribute('href').slice(1));
      const external = Array.from(document.querySelectorAll('[src], link[href]'))
        .map(e => e.getAttribute('src') || e.getAttribute('href')).filter(u => u && !u.startsWith('data:'));
      return {
        inner: window.innerWidth, scroll: d.scrollWidth,
        unresolved: ids.filter(i => i && !document.getElementById(decodeURIComponent(i))),
        requests: performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:')),
        external: external,
        boxes: Array.from(document.querySelectorAll('.table-scroll')).map(b => [b.scrollWidth, b.clientWidth]),
        // a box that hides columns must show its cue (the written line above it is displayed)
        uncued: Array.from(document.querySelectorAll('.table-scroll')).filter(b => b.scrollWidth > b.clientWidth + 1)
          .filter(b => { const c = b.previousElementSibling;
                         return !(c && c.classList.contains('scroll-cue') && getComputedStyle(c).display !== 'none'
                                  && c.getBoundingClientRect().height > 0); }).length,
        lang: d.getAttribute('lang'),
      };""")


@pytest.mark.parametrize("width", [400, 1280])
def test_small_paper_fits_links_resolve_and_stays_offline(browser, small_paper, width):
    _open(browser, small_paper, width)
    p = _problems(browser)
    assert p["inner"] == width
    assert p["scroll"] <= p["inner"], f"the page scrolls sideways at {width}px ({p['scroll']} > {p['inner']})"
    assert p["unresolved"] == [] and p["requests"] == [] and p["external"] == []
    if width == 400:  # the wide table scrolls inside its own box, with a cue that it does
        assert p["boxes"] and p["boxes"][0][0] > p["boxes"][0][1]
    assert p["uncued"] == 0, f"{p['uncued']} table(s) hide columns at {width}px without a cue"
    assert p["lang"] == "en"


def test_figure_opens_full_size_and_contents_stay_reachable(browser, small_paper):
    _open(browser, small_paper, 400)
    assert browser.execute_script("return !!document.querySelector('a.to-toc[href=\"#TOC\"]') && "
                                  "!!document.getElementById('TOC')")
    browser.execute_script("document.querySelector('figure img').click()")
    assert browser.execute_script("return !!document.querySelector('.zoom-overlay img')")


@pytest.mark.skipif(not BUILT.exists() or os.environ.get("DISCBIAS_SKIP_BUILT_HTML") == "1",
                    reason="no build/report/paper.html here (run `make report`)")
@pytest.mark.parametrize("width", [400, 1280])
def test_built_paper_fits_links_resolve_and_stays_offline(browser, width):
    _open(browser, BUILT, width)
    p = _problems(browser)
    assert p["scroll"] <= p["inner"], f"the page scrolls sideways at {width}px ({p['scroll']} > {p['inner']})"
    assert p["unresolved"] == [] and p["requests"] == [] and p["external"] == []
    assert p["uncued"] == 0 and p["lang"] == "en"
