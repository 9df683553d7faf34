"""The built site, checked as a reader sees it: in headless Chromium (Debian's chromium and chromium-driver, driven
by Selenium), served on localhost with every other host unreachable. tests/site/ runs it after the book build.

Per page: every image loaded (naturalWidth > 0); where the page has math, MathJax rendered it (mjx-container
elements) and no raw \\( or $$ is left in the visible text; no code block wider than the page; no console error
and no failed request. Separately, a static scan: no <script src> or stylesheet <link> from another host.
"""

import contextlib
import functools
import http.server
import json
import re
import shutil
import threading
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INSTALL_HINT = "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; make setup does)"
# Flags for a closed machine (the tool library's notes): no background traffic, and every host but localhost
# resolves to nothing, so a resource from another host shows up as a failed request.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--window-size=1280,1600")

_EXTERNAL = re.compile(r"""<(script|link)\b[^>]*?\b(src|href)=["']((?:https?:)?//[^"']+)["'][^>]*>""", re.I)


def external_resources(html):
    """Scripts and stylesheets the page loads from another host: [(tag, url)]. Plain hyperlinks (<a>) and
    <link rel="canonical"> etc. are fine; only <script src> and <link rel="stylesheet"|"preload"> count."""
    found = []
    for match in _EXTERNAL.finditer(html):
        tag, url = match.group(1).lower(), match.group(3)
        if tag == "link" and not re.search(r"""rel=["'](stylesheet|preload|modulepreload)["']""", match.group(0), re.I):
            continue
        found.append((tag, url))
    return found


def pages(site):
    """Every HTML page of a built site (not its assets)."""
    site = Path(site)
    return sorted(p for p in site.rglob("*.html") if not {"_static", "_sources", "_images"} & set(p.parts))


@contextlib.contextmanager
def serve(directory):
    """The directory over HTTP on 127.0.0.1 (a free port), in a background thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def browser():
    """Headless Debian Chromium under Selenium, logging the console and the network."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists() and not shutil.which(Path(p).name)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found: {INSTALL_HINT}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


# Run in the page once it has loaded: wait for MathJax (if the page loads it) to finish typesetting.
_WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const started = Date.now();
(function poll() {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) { mj.startup.promise.then(() => done(true), () => done(false)); return; }
  if (!document.querySelector('script[src*="mathjax"]') || Date.now() - started > 15000) { done(!mj); return; }
  setTimeout(poll, 100);
})();
"""

_INSPECT = """
const images = Array.from(document.images);
return {
  images: images.length,
  broken_images: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
  has_math: document.querySelector('.math, .MathJax, mjx-container, [class*="math notranslate"]') !== null,
  rendered_math: document.querySelectorAll('mjx-container').length,
  cut_code: Array.from(document.querySelectorAll('div.highlight pre')).filter(p => p.scrollWidth > p.clientWidth + 1).length,
  text: document.body.innerText,
};
"""


def check_page(driver, url):
    """Problems a reader would meet on the page at `url` (a list of one-line strings; empty if none)."""
    driver.get_log("browser"), driver.get_log("performance")  # drop what earlier pages logged
    driver.get(url)
    driver.set_script_timeout(30)
    mathjax_ok = driver.execute_async_script(_WAIT_FOR_MATHJAX)
    seen = driver.execute_script(_INSPECT)
    problems = [f"image did not load: {src}" for src in seen["broken_images"]]
    raw = [m for m in ("\\(", "\\)", "\\[", "$$") if m in seen["text"]]
    if seen["has_math"] and (not mathjax_ok or not seen["rendered_math"]):
        problems.append("math not rendered (no MathJax output)")
    if raw:
        problems.append(f"raw LaTeX left in the visible text: {' '.join(raw)}")
    if seen["cut_code"]:
        problems.append(f"{seen['cut_code']} code block(s) wider than the page (lines cut off)")
    problems += [f"console: {e['message'][:200]}" for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.loadingFailed" and not message["params"].get("canceled"):
            problems.append(f"request failed: {message['params'].get('errorText')}")
        if message["method"] == "Network.requestWillBeSent":
            request_url = message["params"]["request"]["url"]
            if re.match(r"https?://", request_url) and not request_url.startswith("http://127.0.0.1"):
                problems.append(f"request to another host: {request_url[:120]}")
    return problems


def screenshot(driver, url, path):
    """A full-page PNG of `url` at the window's width."""
    driver.get(url)
    driver.execute_async_script(_WAIT_FOR_MATHJAX)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(height, 800), 6000))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1600)
