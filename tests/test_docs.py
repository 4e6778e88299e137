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
    assert "Goals at a glance" in text and "goals missed" in text, "the home page summarises the goals"


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
@pytest.mark.parametrize("page, words", [("index.html", ["Two commands", "Infrastructure", "Reports", "Goals at a glance"]),
                                         ("core.html", ["Core utilities", "seed_everything", "get_device"]),
                                         ("drifting/drift_field.html", ["The drift field", "<mfrac>"]),
                                         ("reports/data_overview.html", ["MNIST", "Parameters of this run"])])
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
    if keep: Path(keep).mkdir(parents=True, exist_ok=True); shutil.copy2(shot, Path(keep) / page.replace(".html", ".png").replace("/", "_"))


def _pages(site):
    "Every page of the site with its HTML, code blocks removed (their text may hold anything)."
    import re
    return {p: re.sub(r"<pre\b.*?</pre>", "", p.read_text(), flags=re.S) for p in site.rglob("*.html")}


def test_readme_and_site_links_resolve(site):
    """Every relative link of the README points at a file of the repository; every local link of every page resolves
    from where the page is (wherever the site and the repository live), and none goes to the public site or the remote."""
    import re
    from nbdev.config import get_config
    readme = (ROOT / "README.md").read_text()
    links = [l.split("#")[0] for l in re.findall(r"\]\(([^)\s]+)\)", readme) if not re.match(r"[a-z]+://", l) and not l.startswith("#")]
    assert links, "the README links the chapters"
    missing = [l for l in links if l and not (ROOT / l).exists()]
    assert not missing, f"README links to missing files: {missing[:5]}"
    assert "[[" not in readme, "a name linked twice"
    cfg = get_config()
    remote = tuple(u for u in (cfg.get("doc_host"), cfg.get("git_url")) if u)
    bad, away = [], []
    for page, text in _pages(site).items():
        for h in re.findall(r'href="([^"]+)"', text):
            if h.startswith(remote): away.append((page.name, h)); continue
            if re.match(r"[a-z]+:", h) or h.startswith("#"): continue
            if not (page.parent / h.split("#")[0]).exists(): bad.append((str(page.relative_to(site)), h))
    assert not bad, f"links that lead nowhere: {bad[:5]}"
    assert not away, f"links to the public site or the remote repository: {away[:5]}"
    home = (site / "index.html").read_text()
    assert 'href="routec/masks.html"' in home.split("<main>")[1], "the home page maps the chapters"


def test_symbols_link_within_their_chapter(site):
    "nbdev links every backticked name it knows; a name that is another chapter's symbol (`tokens`) must not link there."
    import re
    for chapter in ("bubbles", "denoiser", "drifting", "routec"):
        for page in (site / chapter).glob("*.html"):
            main = page.read_text().split("<main>")[1].split('<section class="chapter-reports">')[0]
            others = [h for h in re.findall(r'href="\.\./([a-z]+)/', main) if h != chapter and h != "reports"]
            assert not others, f"{page.name} links into chapter(s) {set(others)}"


def test_math_renders_and_no_tex_reaches_a_page(site):
    import html, re
    raw = []
    for page, text in _pages(site).items():
        body = text.split("<main>", 1)[1]
        words = html.unescape(re.sub(r"<code\b.*?</code>|<math\b.*?</math>|<[^>]+>", " ", body, flags=re.S))
        raw += [(page.name, m.group(0)) for m in re.finditer(r"\\frac|\\mathrm|\\sum|\$[^$\s][^$\n]{0,80}?[^\s$\\]\$|\$\$", words)]
        raw += [(page.name, "raw table") for _ in re.finditer(r"\|\s*:?-{2,}:?\s*\|", words)]
        raw += [(page.name, "backticks in subtitle") for _ in re.finditer(r'<p class="lead">[^<]*`', text)]
    assert not raw, f"TeX, tables or backticks left raw: {raw[:8]}"
    field = (site / "drifting" / "drift_field.html").read_text()
    assert field.count("<math") >= 50 and "<mfrac>" in field


def test_home_goals_and_report_pages(site):
    import re
    from drift_nb.docs import GOALS_PAGE
    home = (site / "index.html").read_text().split("<main>")[1]
    assert home.index("Two commands") < home.index("Goals at a glance"), "the introduction comes first"
    ids = re.findall(r'\bid="([^"]+)"', home)
    assert len(ids) == len(set(ids)), "no two headings share an id"
    assert f'href="{GOALS_PAGE}"' in home and (site / GOALS_PAGE).is_file()
    titles = {}
    for page in (site / "reports").glob("*.html"):
        t = re.search(r"<h1>(.*?)</h1>", page.read_text()).group(1)
        titles.setdefault(t, []).append(page.name)
    assert all(len(v) == 1 for v in titles.values()), f"reports sharing a title: {[v for v in titles.values() if len(v) > 1]}"
    if (ROOT / "papermill_runs" / "routec_mcmc_stripes" / "run.json").is_file():
        page = (site / "reports" / "routec_mcmc_stripes.html").read_text().split("<main>")[1]
        assert page.index("Findings:") < page.index('<div class="highlight') and "profile = " not in page.split("Findings:")[0]
    for chapter in ("routec", "bubbles"):
        assert 'href="../reports/' in (site / chapter / "masks.html" if chapter == "routec" else site / chapter / "plans.html").read_text()


@pytest.mark.skipif(not CHROMIUM and os.environ.get("DRIFT_NB_REQUIRE_CHROMIUM") != "1",
                    reason="headless Chromium not installed (Debian: apt-get install chromium)")
def test_chromium_draws_a_fraction(site, tmp_path):
    """Chromium lays the drift field's first fraction out as MathML: numerator above denominator, taller than a line.
    Drawn as raw text the two would sit side by side on one line."""
    assert CHROMIUM, "DRIFT_NB_REQUIRE_CHROMIUM=1 but no chromium on PATH"
    page = site / "drifting" / "drift_field.html"
    probe = page.with_name("probe.html")
    js = ("<script>window.addEventListener('load',()=>{const f=document.querySelector('mfrac');"
          "const [a,b]=[f.children[0].getBoundingClientRect(),f.children[1].getBoundingClientRect()];"
          "const line=parseFloat(getComputedStyle(document.body).fontSize);"
          "document.body.setAttribute('data-probe',[a.bottom<=b.top+1,f.getBoundingClientRect().height>1.2*line].join(','));});</script>")
    probe.write_text(page.read_text().replace("</body>", js + "</body>"))
    dom = _chromium(f"--user-data-dir={tmp_path / 'prof'}", "--virtual-time-budget=3000", "--dump-dom", probe.as_uri())
    probe.unlink()
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-probe="true,true"' in dom.stdout, "the fraction is not stacked: MathML did not render"
