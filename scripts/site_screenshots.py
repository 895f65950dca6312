"""Screenshots of the real site for the docs: build it from `papers/` and the run documents in
`.mi-atlas-cache/runs` (run `mi-atlas run --all` first), open five pages in headless Chromium
(Debian's /usr/bin/chromium), one of them in the dark scheme, and save them to
docs/assets/screenshots/.

Usage: .venv/bin/mi-atlas run --all && .venv/bin/python scripts/site_screenshots.py [NAME ...]
(names from PAGES below: only those are taken; all of them without names)
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
DESKTOP, PHONE = (1280, 860), (390, 844)
# name -> (page, colour scheme, element scrolled to the top or None, window size, what to click
# before the screenshot or None)
PAGES = {
    "home": ("index.html", "light", None, DESKTOP, None),
    "explorer": ("explorer.html?search=refusal", "light", None, DESKTOP, None),
    "node": ("taxonomy/locate/causal-attribution.html", "light", None, DESKTOP, None),
    "node-dark": (
        "taxonomy/locate/causal-attribution.html",
        "dark",
        "#reference-implementation",
        DESKTOP,
        None,
    ),
    "paper": (
        "papers/2022-locating-editing-factual-associations-gpt.html",
        "light",
        None,
        DESKTOP,
        None,
    ),
    "matrix": ("matrix.html", "light", "#methods-goals", DESKTOP, None),
    "explorer-phone": ("explorer.html?goals=safety-reliability", "light", None, PHONE, None),
    "explorer-phone-filters": (
        "explorer.html?goals=safety-reliability",
        "light",
        None,
        PHONE,
        "#mi-filters-open",
    ),
}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(PAGES))
    if unknown:
        sys.exit(f"unknown screenshot name(s) {', '.join(unknown)}; known: {', '.join(PAGES)}")
    wanted = {name: PAGES[name] for name in names} if names else PAGES
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        # The build reads the run documents of `mi-atlas run --all`: a screenshot runs no model.
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
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
            for name, (path, scheme, anchor, (width, height), click) in wanted.items():
                page = browser.new_page(
                    viewport={"width": width, "height": height},
                    color_scheme=scheme,
                    is_mobile=width < 600,
                )
                page.goto(base + path + (anchor or ""))
                page.wait_for_load_state("load")
                if click:
                    page.click(click)
                page.wait_for_timeout(400)  # let Material settle (sidebars, copy buttons, drawer)
                page.screenshot(path=str(OUT / f"{name}.png"))
                page.close()
                print(OUT / f"{name}.png")
            browser.close()
        server.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
