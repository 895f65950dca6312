"""Node pages show their reference implementation's result on the zoo; the scoreboard lists
every registered method; a build without the impls extra says where results would be.

Results are computed for real, once per module, by the code behind `mi-atlas run --json`
(`ResultStore` in compute mode), for a few cheap runnables: one steer method, one locate
method, one recipe. The site of `site_support` is then built reading that cache, so the other
pages show the "not computed yet" state. The test marked `slow` computes every registered
runnable into the repository's own cache (`.mi-atlas-cache/results`, shared with `mkdocs
build`) and checks every page.
"""

from __future__ import annotations

import functools
import html as html_module
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from site_support import REPO, REPO_URL, build_site

from mi_atlas.site import results as results_module
from mi_atlas.site.recovery import score_blocks
from mi_atlas.site.results import INSTALL_HINT, Hashes, ResultStore
from mi_atlas.taxonomy import load_taxonomy

pytestmark = pytest.mark.impls

# cheap runnables of each kind (seconds each on a free core), computed for real
SUBSET = ("vector-arithmetic", "vocab-projection", "causal-attribution", "safety-reliability")


def node_page(name: str, kind: str) -> str:
    """The node page (relative to the site) that shows runnable `name`: its own taxonomy id, or
    for a variant (`<id>-<suffix>`) the id it extends."""
    tax = load_taxonomy()
    axes = ("goals",) if kind == "recipe" else ("locate", "steer")
    base = name
    while True:
        for axis in axes:
            if base in tax[axis].nodes:
                return f"taxonomy/{axis}/{base}.html"
        if "-" not in base:
            raise AssertionError(f"{name} names no taxonomy node")
        base = base.rsplit("-", 1)[0]


# -- fixtures: results computed once, sites built from them ---------------------------------


@pytest.fixture(scope="module")
def computed(tmp_path_factory) -> tuple[Path, ResultStore]:
    cache = tmp_path_factory.mktemp("results-cache")
    store = ResultStore(REPO, cache, "compute")
    for name in SUBSET:
        out = store.outcome(name)
        assert out.ok, f"{name}: {out.status} {out.error}"
    return cache, store


@pytest.fixture(scope="module")
def results_site(site_data, computed, tmp_path_factory) -> Path:
    cache, _ = computed
    site = tmp_path_factory.mktemp("results-site") / "site"
    return build_site(
        site_data.papers_dir, site_data.taxonomy_dir, site, results="cache", results_cache=cache
    )


@pytest.fixture(scope="module")
def no_impls_site(site_data, tmp_path_factory) -> Path:
    """A build where the impls extra cannot be imported (a module of it is made unfindable)."""
    site = tmp_path_factory.mktemp("no-impls-site") / "site"
    cache = tmp_path_factory.mktemp("untouched-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(results_module, "IMPLS_MODULES", ("torch", "mi_atlas_no_such_module_xyz"))
        build_site(
            site_data.papers_dir,
            site_data.taxonomy_dir,
            site,
            results="compute",
            results_cache=cache,
        )
    assert not any(cache.iterdir()), "nothing may be computed or cached without the impls extra"
    return site


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def section(html: str) -> str:
    """The Reference implementation section of a node page."""
    start = html.index('id="reference-implementation"')
    end = html.find('id="papers"', start)
    return html[start : end if end > 0 else len(html)]


# -- the cache ----------------------------------------------------------------------------


def test_a_rebuild_reuses_every_result_and_runs_nothing(computed):
    cache, first = computed
    assert {o.name for o in first.computed} == set(SUBSET)
    again = ResultStore(REPO, cache, "compute")
    for name in SUBSET:
        out = again.outcome(name)
        assert out.cached and out.doc == first.outcome(name).doc
    assert again.computed == []


def test_the_cached_document_is_the_json_of_mi_atlas_run(computed):
    _, store = computed
    out = store.outcome("vector-arithmetic")
    doc = out.doc
    assert set(doc) == {"name", "kind", "method", "model", "result", "ground_truth", "recovered"}
    assert doc["model"] == out.model == store.runnable("vector-arithmetic").default_model
    json.dumps(doc, allow_nan=False)  # what --json prints: no NaN or Infinity


def test_a_key_changes_exactly_when_code_the_run_executes_or_its_model_changes(tmp_path):
    package = tmp_path / "reference_impls"
    shutil.copytree(REPO / "reference_impls", package, ignore=shutil.ignore_patterns("__pycache__"))
    method = package / "steer" / "vector_arithmetic.py"
    recipe = package / "recipes" / "safety_reliability.py"  # imports vector_arithmetic

    def keys() -> dict[str, str]:
        h = Hashes(package)
        return {
            "method": h.run_key("vector-arithmetic", "refusal", method),
            "recipe": h.run_key("safety-reliability", "refusal", recipe),
            "other model": h.run_key("vector-arithmetic", "induction", method),
            "listing": h.listing_key(),
        }

    def edit(path: Path) -> None:
        path.write_text(read(path) + "\n# an edit\n", encoding="utf-8")

    first = keys()
    assert keys() == first  # stable
    edit(package / "locate" / "circuit_discovery.py")  # neither run imports it
    second = keys()
    assert second["method"] == first["method"] and second["recipe"] == first["recipe"]
    assert second["listing"] != first["listing"]  # it could register something new
    edit(method)
    third = keys()
    assert third["method"] != second["method"] and third["recipe"] != second["recipe"]
    edit(package / "addressing.py")  # shared by every method
    fourth = keys()
    assert all(fourth[k] != third[k] for k in ("method", "recipe", "other model"))
    edit(package / "zoo" / "tasks" / "refusal.py")  # the refusal model's data
    fifth = keys()
    assert fifth["method"] != fourth["method"] and fifth["other model"] == fourth["other model"]
    weights = package / "zoo" / "models" / "refusal" / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b"\0")  # retrained
    sixth = keys()
    assert sixth["method"] != fifth["method"] and sixth["other model"] == fifth["other model"]


def test_auto_computes_on_build_and_only_reads_the_cache_while_serving(tmp_path):
    built = ResultStore.for_build(tmp_path, "auto", ".cache/results", serving=False)
    served = ResultStore.for_build(tmp_path, "auto", ".cache/results", serving=True)
    assert (built.mode, served.mode) == ("compute", "cache")
    assert built.cache_dir == tmp_path / ".cache" / "results"
    assert ResultStore.for_build(tmp_path, "off", "x", serving=False).state == "off"
    # YAML reads a bare `off` (also through !ENV) as false
    from mi_atlas.site.config import ResultsMode

    option = ResultsMode()
    assert [option.validate(v) for v in (False, True, "cache")] == ["off", "auto", "cache"]


# -- node pages, read as files ------------------------------------------------------------


def test_computed_pages_show_figure_numbers_command_and_source(results_site, computed):
    _, store = computed
    for name in SUBSET:
        runnable = store.runnable(name)
        html = section(read(results_site / node_page(name, runnable.kind)))
        assert f'data-method="{name}"' in html
        assert "<svg" in html and 'class="mi-figure' in html
        assert 'class="mi-table mi-result-table"' in html
        assert f"mi-atlas run {name} --model {runnable.default_model} --json" in html
        assert f'href="{REPO_URL}/blob/main/{runnable.path}"' in html
        assert '<div class="highlight"><pre>' in html  # the highlighted source
        # the JSON the page was made from is downloadable, byte for byte the cached document
        target = results_site / "results" / f"{name}--{runnable.default_model}.json"
        assert json.loads(read(target)) == store.outcome(name).doc


def test_planted_cells_are_the_ground_truths(results_site, computed):
    """The outlined cells are exactly the planted sites, each one the card names."""
    _, store = computed
    doc = store.outcome("causal-attribution").doc
    html = section(read(results_site / node_page("causal-attribution", "method")))
    labels = re.findall(r'<rect class="mi-planted" data-planted="[^"]+" aria-label="([^"]+)"', html)
    marked = [html_module.unescape(label).removeprefix("planted ").split(": ") for label in labels]
    planted = doc["result"]["planted"]  # the runner's planted sites for its prompts
    assert len(marked) == len(planted) > 0
    truth = doc["ground_truth"]
    heads = {tuple(p): "induction head" for p in truth["induction_heads"]}
    heads |= {tuple(p): "previous-token head" for p in truth["previous_token_heads"]}
    for what, cell in marked:  # cell is "L1 @13 H0": the row (layer, position), the column
        layer, head = re.fullmatch(r"L(\d+) @\d+ H(\d+)", cell).groups()
        assert heads[(int(layer), int(head))] == what
    # the numbers table names each planted site with its rank
    assert html.count('class="mi-planted-tag"') == len(planted)


def test_uncomputed_pages_say_so_plainly(results_site, computed):
    _, store = computed
    for runnable in store.listing().runnables.values():
        if runnable.name in SUBSET:
            continue
        html = section(read(results_site / node_page(runnable.name, runnable.kind)))
        run = html[html.index(f'data-method="{runnable.name}"') :]
        assert "Not computed yet." in run
        assert f"mi-atlas run {runnable.name} --model {runnable.default_model} --json" in html


def test_scoreboard_lists_every_registered_method_and_recipe(results_site, computed):
    from reference_impls import registry

    html = read(results_site / "scoreboard.html")
    rows = set(re.findall(r'<tr data-method="([^"]+)"', html))
    registered = {e.name for kind in ("method", "recipe") for e in registry.entries(kind)}
    assert rows == registered
    for name in SUBSET:
        row = re.search(rf'<tr data-method="{name}">(.*?)</tr>', html, re.S)[1]
        assert re.search(r'data-recovered="(true|false|none)"', row)
    # the taxonomy's sub-goals with no recipe are listed, with the reason on their pages
    assert "Not runnable yet" in html


def test_without_the_impls_extra_every_page_says_where_results_would_be(no_impls_site, site_data):
    tax = site_data.taxonomy
    checked = 0
    for axis in ("locate", "steer", "goals"):
        for node in tax[axis].nodes.values():
            if axis == "goals" and node.children:
                continue
            html = section(read(no_impls_site / "taxonomy" / axis / f"{node.id}.html"))
            if not any((REPO / p).is_file() for p in node.impls):
                assert "Reference implementation: not yet implemented." in html
                continue
            shown = html_module.unescape(html)
            assert "Results need the reference implementations" in shown
            assert INSTALL_HINT in shown and f"mi-atlas run {node.id} --json" in shown
            checked += 1
    assert checked >= 6
    html = read(no_impls_site / "scoreboard.html")
    assert "Results need the reference implementations" in html


# -- in the browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def results_url(results_site):
    handler = functools.partial(_Quiet, directory=str(results_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.mark.browser
def test_method_pages_show_their_figure_numbers_and_planted_marks(page, results_url, computed):
    _, store = computed
    for name in SUBSET:
        page.goto(results_url + node_page(name, store.runnable(name).kind))
        run = page.locator(f'.mi-run[data-method="{name}"]')
        figure = run.locator("svg.mi-figure").first
        assert figure.is_visible()
        box = figure.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 40
        numbers = run.locator(".mi-result-table td.mi-num")
        assert numbers.count() > 0
        assert re.fullmatch(r"-?[\d.e+-]+|n/a", numbers.first.inner_text().strip())
        planted = run.locator("svg .mi-planted")
        assert planted.count() > 0, f"{name}: no planted component marked"
        label = planted.first.get_attribute("aria-label")
        assert label and label.startswith("planted ")
        assert page.problems.all() == []


@pytest.mark.browser
def test_scoreboard_page_shows_every_method_with_its_verdict(page, results_url, computed):
    _, store = computed
    page.goto(f"{results_url}scoreboard.html")
    rows = page.locator("table.mi-scoreboard tbody tr")
    names = {rows.nth(k).get_attribute("data-method") for k in range(rows.count())}
    assert names == set(store.listing().runnables)
    for name in SUBSET:
        cell = page.locator(f'tr[data-method="{name}"] td[data-recovered]')
        assert cell.count() == 1 and cell.locator(".mi-verdict").is_visible()
    assert page.problems.all() == []


# -- every registered runnable (slow: computes what the repository's cache lacks) -------------


@pytest.mark.slow
def test_every_method_and_recipe_page_shows_its_result(site_data, tmp_path):
    cache = REPO / ".mi-atlas-cache" / "results"  # the cache `mkdocs build` uses
    site = build_site(
        site_data.papers_dir, site_data.taxonomy_dir, tmp_path / "site", results="compute",
        results_cache=cache,
    )  # fmt: skip
    store = ResultStore(REPO, cache, "cache")
    runnables = list(store.listing().runnables.values())
    assert runnables
    for runnable in runnables:
        out = store.outcome(runnable.name)
        assert out.ok, f"{runnable.name}: {out.status} {out.error}"
        html = section(read(site / node_page(runnable.name, runnable.kind)))
        run = html[html.index(f'data-method="{runnable.name}"') :]
        assert "<svg" in run and "mi-result-table" in run, runnable.name
        truth = out.doc["ground_truth"]
        if any(
            b.planted(i, truth)
            for b in score_blocks(out.doc["result"])
            for i in range(len(b.sites))
        ):
            assert 'class="mi-planted"' in run, f"{runnable.name}: planted sites not marked"
    # a rebuild with every result cached runs nothing and imports neither torch nor a method
    script = (
        "import json, sys\n"
        "from mkdocs.commands.build import build\n"
        "from mkdocs.config import load_config\n"
        f"build(load_config({str(REPO / 'mkdocs.yml')!r}, site_dir={str(tmp_path / 'again')!r}))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'transformer_lens', 'reference_impls'))))\n"
    )
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "MI_ATLAS_PAPERS": str(site_data.papers_dir),
        "MI_ATLAS_TAXONOMY_DIR": str(site_data.taxonomy_dir),
        "MI_ATLAS_RESULTS": "compute",
        "MI_ATLAS_RESULTS_CACHE": str(cache),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert "mi-atlas: ran" not in done.stderr
    assert len(list((tmp_path / "again" / "results").glob("*.json"))) == len(runnables)
