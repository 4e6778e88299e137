"""The offline docs site: nbdev directives applied, pages linked, and the site looked at in headless Chromium."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from drift_nb.docs import build_docs
    return build_docs(tmp_path_factory.mktemp("site") / "docs", readme=False)


def test_every_chapter_and_report_has_a_page(site):
    from drift_nb.docs import page_name
    pages = {str(p.relative_to(site)) for p in site.rglob("*.html")}
    for nb in (ROOT / "nbs").glob("[0-9]*.ipynb"):
        assert page_name(nb) in pages
    chapters = [nb for nb in (ROOT / "nbs").glob("*/[0-9]*.ipynb") if nb.parent.name != "reports"]
    assert len(chapters) >= 14, "the chapter folders hold their notebooks"
    for nb in chapters:
        assert f"{nb.parent.name}/{page_name(nb)}" in pages, nb
    for rep in (ROOT / "nbs" / "reports").glob("[a-z]*.ipynb"):  # a missing report page fails, never skips
        assert f"reports/{rep.stem}.html" in pages, rep


def test_sidebar_groups_chapters_and_home_shows_goals(site):
    home = (site / "index.html").read_text()
    nav = home.split('<nav id="sidebar">', 1)[1].split("</nav>", 1)[0]
    groups = [g for g in __import__("re").findall(r"<h4>([^<]+)</h4>", nav)]
    assert groups[:2] == ["Infrastructure", "Route C: binary-latent inpainting"] and len(groups) == len(set(groups))
    assert 'href="routec/masks.html"' in nav
    page = (site / "routec" / "masks.html").read_text()
    assert 'href="../site.css"' in page and 'href="../core.html"' in page, "pages in chapter folders link back up"
    text = _text(home)
    assert "Goals" in text and "missed" in text and "routec_eval_suite" in text, "the home page summarises the goals"


def _text(html_page: str) -> str:
    import html, re
    return html.unescape(re.sub(r"<[^>]+>", "", html_page))


def test_directives_applied(site):
    raw = (site / "core.html").read_text()
    core = _text(raw)
    assert "from nbdev.showdoc import show_doc" not in core, "#| hide cells must not be rendered"
    assert "#| export" not in core and "#| default_exp" not in core
    assert "seed_everything" in core and "seed:int" in core, "exported functions show their signature"
    assert "Seed Python" in core, "and their docstring"
    assert 'href="data.html"' in (site / "index.html").read_text(), "notebook links point at pages"
    assert 'href="core.html"' in raw and 'href="reports/data_overview.html"' in raw, "the sidebar links every page"


def test_report_page_shows_the_executed_run(site):
    page = (site / "reports" / "data_overview.html").read_text()
    run = ROOT / "papermill_runs" / "data_overview" / "run.json"
    if run.is_file():
        assert "Executed run: profile <b>cpu</b>" in page and "data:image/png;base64" in page


def test_readme_is_generated_from_index():
    from drift_nb.docs import readme_text
    assert (ROOT / "README.md").read_text() == readme_text(), "README.md is stale: run `drift-nb docs`"


def _chromium(*args, timeout=120):
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not CHROMIUM and os.environ.get("DRIFT_NB_REQUIRE_CHROMIUM") != "1",
                    reason="headless Chromium not installed (Debian: apt-get install chromium)")
@pytest.mark.parametrize("page, words", [("index.html", ["Two commands", "Infrastructure", "Reports"]),
                                         ("core.html", ["Core utilities", "seed_everything", "get_device"])])
def test_screenshot_in_headless_chromium(site, tmp_path, page, words):
    assert CHROMIUM, "DRIFT_NB_REQUIRE_CHROMIUM=1 but no chromium on PATH"
    url = (site / page).as_uri()
    dom = _chromium(f"--user-data-dir={tmp_path / 'prof1'}", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for w in words: assert w in dom.stdout
    assert 'id="sidebar"' in dom.stdout
    shot = tmp_path / "shot.png"
    r = _chromium(f"--user-data-dir={tmp_path / 'prof2'}", f"--screenshot={shot}", "--window-size=1280,900", url)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    import matplotlib.image as mpimg
    img = mpimg.imread(shot)
    assert img.shape[0] == 900 and img.shape[1] == 1280
    assert img[..., :3].std() > 0.05, "the page must not render blank"
    keep = os.environ.get("DRIFT_NB_SCREENSHOTS")
    if keep: Path(keep).mkdir(parents=True, exist_ok=True); shutil.copy2(shot, Path(keep) / page.replace(".html", ".png"))


def test_readme_and_home_links_resolve(site):
    "Every relative link of the README points at a file of the repository, and every local link of the home page at a page."
    import re
    readme = (ROOT / "README.md").read_text()
    links = [l.split("#")[0] for l in re.findall(r"\]\(([^)\s]+)\)", readme) if not re.match(r"[a-z]+://", l) and not l.startswith("#")]
    assert links, "the README links the chapters"
    missing = [l for l in links if l and not (ROOT / l).exists()]
    assert not missing, f"README links to missing files: {missing[:5]}"
    home = (site / "index.html").read_text()
    hrefs = [h.split("#")[0] for h in re.findall(r'href="([^"]+)"', home) if not re.match(r"[a-z]+:", h) and not h.startswith("#")]
    # a link that leaves the site points into the repository the site is built in (docs/ by default)
    bad = [h for h in hrefs if h and not ((ROOT / "docs" / h) if h.startswith("../") else (site / h)).exists()]
    assert not bad, f"the home page links to missing pages: {bad[:5]}"
    assert "[[" not in readme, "a name linked twice"
