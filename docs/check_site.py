"""Open the built course website in headless Chromium, as a student would, with the network off.

    bash docs/build.sh site
    python docs/check_site.py site [--screenshots shots/]

It serves SITE on 127.0.0.1, opens every page (every notebook's included) and checks that:
  * the page loads, and no script or console reports an error;
  * every image draws (naturalWidth > 0) and every stored figure of the notebook is on its page;
  * MathJax typeset the maths on pages that have some (mjx-container elements, no TeX errors);
  * no request goes to any host but the local server: every request is intercepted, anything
    else is recorded and refused, and Chromium's own proxy points nowhere, so the page sees no network.
Exit status 0 when every page passes, 1 otherwise (one line per problem).

Needs Debian's Chromium (`apt-get install chromium`; the path can be given with --chromium or
$CHROMIUM) and Playwright for Python (`python -m pip install -r docs/requirements-browser.txt`).
Playwright only drives the browser here: it downloads no browser of its own.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from site_tools import notebooks, site_pages  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-default-apps",
                 "--disable-sync", "--metrics-recording-only",
                 # a proxy that answers nothing: whatever escaped the interception would fail too
                 "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"]
PAGE_TIMEOUT_MS = 30_000


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per request would bury the report
        pass


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    """Serve `folder` on a free port of 127.0.0.1 in a background thread; return the server and its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _stored_figures(notebook: Path) -> int:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return sum(any(k in o.get("data", {}) for k in ("image/png", "image/jpeg"))
               for c in cells for o in c.get("outputs", []))


# Runs in the page: waits for every image and for MathJax, then reports what it sees.
INSPECT_JS = """async () => {
  const imgs = Array.from(document.images);
  for (const img of imgs) { img.loading = 'eager'; img.scrollIntoView(); }
  await Promise.all(imgs.map(img => img.complete ? null :
      new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); })));
  window.scrollTo(0, 0);
  const hasMath = document.querySelector('.math, div.math, span.math') !== null;
  if (hasMath) {
    for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
      await new Promise(r => setTimeout(r, 50));
    if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
  }
  await document.fonts.ready;
  return {
    images: imgs.length,
    broken: imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src')),
    hasMath: hasMath,
    mathSources: document.querySelectorAll('.math').length,
    typeset: document.querySelectorAll('mjx-container').length,
    texErrors: document.querySelectorAll('mjx-merror').length,
    mathjax: !!(window.MathJax && MathJax.version) ? MathJax.version : null,
  };
}"""


def check_page(context, base: str, rel: str, figures: int | None, shot: Path | None) -> list[str]:
    """Open one page; return its problems (empty when it passes) and print a one-line summary."""
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"script error: {e}"))
    page.on("response", lambda r: errors.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} ({r.failure})"))
    response = page.goto(base + rel, wait_until="load", timeout=PAGE_TIMEOUT_MS)
    if response is None or response.status != 200:
        errors.append(f"the page itself answered {response.status if response else 'nothing'}")
    seen = page.evaluate(INSPECT_JS)
    page.wait_for_timeout(200)  # late console messages
    problems = [f"{rel}: {e}" for e in errors]
    problems += [f"{rel}: image {src} did not draw (naturalWidth 0)" for src in seen["broken"]]
    if figures is not None and seen["images"] < figures:
        problems.append(f"{rel}: {seen['images']} images on the page for {figures} stored figures")
    if seen["hasMath"] and (seen["typeset"] < 1 or seen["typeset"] < seen["mathSources"]):
        problems.append(f"{rel}: maths not typeset ({seen['typeset']} of {seen['mathSources']} formulas)")
    if seen["texErrors"]:
        problems.append(f"{rel}: {seen['texErrors']} TeX errors")
    if shot is not None:
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
    maths = f"{seen['typeset']} formulas typeset by MathJax {seen['mathjax']}" if seen["hasMath"] else "no maths"
    print(f"{'OK  ' if not problems else 'FAIL'} {rel}: {seen['images']} images, {maths}, "
          f"{len(errors)} console/network errors")
    page.close()
    return problems


def check_site_in_browser(site: Path, repo: Path, chromium: str, screenshots: Path | None) -> list[str]:
    """Every problem headless Chromium finds on the built site; empty when every page passes."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    outside: list[str] = []
    expected = {f"notebooks/{nb.stem}.html": _stored_figures(nb) for nb in notebooks(repo)}
    pages = [p.relative_to(site).as_posix() for p in site_pages(site)]
    problems += [f"{rel}: no such page in the site" for rel in expected if rel not in pages]
    server, base = serve(site)
    host = urlsplit(base).netloc

    def route(r) -> None:
        if urlsplit(r.request.url).netloc == host:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort("internetdisconnected")

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
            context.route("**/*", route)
            for rel in pages:
                shot = screenshots / (rel.replace("/", "_")[:-5] + ".png") if screenshots else None
                problems += check_page(context, base, rel, expected.get(rel), shot)
            browser.close()
    finally:
        server.shutdown()
    problems += [f"request to outside the site refused: {url}" for url in sorted(set(outside))]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("site", type=Path, help="the folder docs/build.sh wrote")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM") or shutil.which("chromium")
                        or "/usr/bin/chromium", help="the Chromium executable (default: Debian's)")
    parser.add_argument("--screenshots", type=Path, help="save a screenshot of every page in this folder")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        parser.error(f"{args.site}/index.html not found: build the site first with `bash docs/build.sh {args.site}`")
    if not Path(args.chromium).is_file():
        parser.error(f"no Chromium at {args.chromium}: install Debian's (`apt-get install chromium`) or pass --chromium")
    try:
        import playwright  # noqa: F401
    except ImportError:
        parser.error("Playwright is not installed: `python -m pip install -r docs/requirements-browser.txt`")
    repo = Path(__file__).resolve().parent.parent
    problems = check_site_in_browser(args.site.resolve(), repo, args.chromium, args.screenshots)
    for line in problems:
        print(f"browser check: {line}", file=sys.stderr)
    print(f"browser check: {'OK' if not problems else f'{len(problems)} problem(s)'} "
          f"(headless Chromium, network off, every request outside 127.0.0.1 refused)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
