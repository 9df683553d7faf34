"""The built quick-edition site in headless Chromium (lintf_core/site_check.py), with the network off. Run after
`make book PROFILE=quick` (make test does); the checker itself is tested on pages made to fail."""

from pathlib import Path

import pytest

from lintf_core import site_check

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"


@pytest.fixture(scope="module")
def driver():
    browser = site_check.browser()
    yield browser
    browser.quit()


def _built_pages():
    if not (SITE / "book" / "intro.html").exists():
        pytest.fail(f"{SITE} has no built site: run 'make book PROFILE=quick' first (make test does)")
    return site_check.pages(SITE)


def test_no_page_loads_a_script_or_stylesheet_from_another_host():
    offenders = {p.relative_to(SITE).as_posix(): site_check.external_resources(p.read_text(errors="replace"))
                 for p in _built_pages()}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_external_resource_scan_finds_cdn_scripts_and_stylesheets():
    page = ('<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
            '<link rel="stylesheet" href="//fonts.example.org/a.css"><a href="https://arxiv.org/abs/2310.01082">x</a>'
            '<script src="_static/local.js"></script><link rel="canonical" href="https://example.org/">')
    assert site_check.external_resources(page) == [
        ("script", "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"),
        ("link", "//fonts.example.org/a.css")]


def test_every_page_renders_offline(driver):
    problems = {}
    with site_check.serve(SITE) as base:
        for page in _built_pages():
            found = site_check.check_page(driver, f"{base}/{page.relative_to(SITE).as_posix()}")
            if found:
                problems[page.relative_to(SITE).as_posix()] = found
        for name, path in (("intro", "book/intro.html"), ("scorecard", "book/scorecard.html"),
                           ("fig02", "notebooks/fig02_adam_vs_sgd.html")):
            site_check.screenshot(driver, f"{base}/{path}", SCREENSHOTS / f"{name}.png")
    assert not problems
    assert all((SCREENSHOTS / f"{n}.png").stat().st_size > 10_000 for n in ("intro", "scorecard", "fig02"))


def test_the_checker_fails_on_a_broken_page(driver, tmp_path):
    """A page with a missing image, unrendered math, a CDN script and a console error: each one is reported."""
    (tmp_path / "bad.html").write_text(
        '<html><body><p class="math notranslate">\\(x^2\\)</p><img src="missing.png">'
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
        '<script>console.error("boom")</script></body></html>')
    with site_check.serve(tmp_path) as base:
        problems = " | ".join(site_check.check_page(driver, f"{base}/bad.html"))
    for expected in ("image did not load", "math not rendered", "raw LaTeX", "console:", "another host"):
        assert expected in problems
