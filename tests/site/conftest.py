"""Fixtures for the site tests: the small index of `site_support`, built once per session
into a temporary folder, served on 127.0.0.1, and a headless Chromium (Debian's)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
from run_docs import write_runs
from site_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    SITE_PATH,
    SiteData,
    build_site,
    hostile_papers,
    hostile_taxonomy,
    real_looking,
    watch,
)

from mi_atlas.site.synthetic import synthetic_papers, write_papers
from mi_atlas.taxonomy import load_taxonomy


@pytest.fixture(scope="session")
def site_data(tmp_path_factory) -> SiteData:
    root = tmp_path_factory.mktemp("site")
    taxonomy_dir = hostile_taxonomy(root / "taxonomy")
    taxonomy = load_taxonomy(taxonomy_dir)
    hostile = hostile_papers(taxonomy)
    papers = real_looking(taxonomy) + synthetic_papers(24, seed=7, taxonomy=taxonomy) + hostile
    write_papers(papers, root / "papers")
    return SiteData(root, root / "papers", taxonomy_dir, taxonomy, papers, hostile)


@pytest.fixture(scope="session")
def built_site(site_data: SiteData) -> Path:
    runs = write_runs(site_data.root / "runs")  # run documents made from the typed contract
    assert runs
    return build_site(
        site_data.papers_dir,
        site_data.taxonomy_dir,
        site_data.root / "site",
        runs_dir=site_data.root / "runs",
    )


@pytest.fixture(scope="session")
def real_site(tmp_path_factory) -> Path:
    """The repository's own papers/ and taxonomy/, built (no run documents)."""
    return build_site(REPO / "papers", REPO / "taxonomy", tmp_path_factory.mktemp("real") / "site")


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the built site under the path of its site_url, as it is published."""

    def translate_path(self, path: str) -> str:
        if not path.startswith(SITE_PATH):
            return str(Path(self.directory) / "no such file")
        return super().translate_path("/" + path[len(SITE_PATH) :])

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="session")
def site_url(built_site: Path):
    handler = functools.partial(_SiteHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}{SITE_PATH}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
            "(run `bash scripts/ensure-chromium.sh`, or apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.problems = watch(page)
    return page
