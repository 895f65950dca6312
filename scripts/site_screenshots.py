"""Screenshots of the real site for the docs: build it from `papers/`, open four pages in
headless Chromium (Debian's /usr/bin/chromium) and save them to docs/assets/screenshots/.

Usage: .venv/bin/python scripts/site_screenshots.py
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "assets" / "screenshots"
PAGES = {
    "home": "index.html",
    "explorer": "explorer.html?search=refusal",
    "node": "taxonomy/locate/causal-attribution.html",
    "paper": "papers/2022-locating-editing-factual-associations-gpt.html",
}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        # Zoo results from the cache only (`mkdocs build` fills it): a screenshot runs no model.
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MI_ATLAS_RESULTS": "cache"}
        subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(site)],
            check=True,
            cwd=REPO,
            env=env,
        )
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site))
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update",
                      "--disable-sync"],
            )  # fmt: skip
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            for name, path in PAGES.items():
                page.goto(base + path)
                page.wait_for_load_state("load")
                page.wait_for_timeout(300)  # let Material settle (sidebars, copy buttons)
                page.screenshot(path=str(OUT / f"{name}.png"))
                print(OUT / f"{name}.png")
            browser.close()
        server.shutdown()


if __name__ == "__main__":
    main()
