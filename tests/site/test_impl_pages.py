"""Node pages and the scoreboard render run documents, and only run documents.

The session's site (conftest `built_site`) is built from a runs folder that tests/run_docs.py
writes from the typed contract: a method that finds its planted heads, a circuit method that
misses, one whose cells are mostly planted, a steer method against a random direction, a
recipe over three seeds and a failed run. Other builds here: none with no runs folder, one
with a document that does not validate, and one in a process where torch cannot be imported.
"""

from __future__ import annotations

import ast
import html as html_module
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mkdocs.exceptions import Abort
from run_docs import FAILED, heads_run, write_runs
from site_support import REPO, REPO_URL, build_site

from mi_atlas.runs import Run

SITE_PACKAGE = REPO / "mi_atlas" / "site"


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def section(page: str) -> str:
    """The Reference implementation section of a node page."""
    start = page.index('id="reference-implementation"')
    end = page.find('id="papers"', start)
    return page[start : end if end > 0 else len(page)]


def node(site: Path, axis: str, name: str) -> str:
    return section(read(site / "taxonomy" / axis / f"{name}.html"))


def run_block(page: str, name: str) -> str:
    """The part of a node page that shows runnable `name` (up to the next runnable)."""
    start = page.index(f'data-method="{name}"')
    end = page.find('<div class="mi-run"', start)
    return page[start : end if end > 0 else None]


@pytest.fixture(scope="module")
def runs(site_data) -> dict[str, Run]:
    return {name: Run.model_validate_json(read(site_data.root / "runs" / f"{name}.json"))
            for name in ("causal-attribution", "circuit-discovery", "magnitude-analysis",
                         "vector-arithmetic", "safety-reliability")}  # fmt: skip


# -- what a node page shows ----------------------------------------------------------------


def test_pages_show_figure_numbers_command_source_and_the_document(built_site, runs):
    for name, run in runs.items():
        axis = "goals" if run.kind == "recipe" else "steer" if "vector" in name else "locate"
        page = node(built_site, axis, name)
        assert f'data-method="{name}"' in page
        assert "<svg" in page and 'class="mi-table mi-result-table"' in page
        assert html_module.unescape(page).count(run.command) >= 1
        assert f'href="{REPO_URL}/blob/main/{run.source}"' in page
        assert '<div class="highlight"><pre>' in page  # the highlighted source
        # the document the page was made from is downloadable and is the same run
        assert Run.model_validate_json(read(built_site / "results" / f"{name}.json")) == run


def test_outlined_cells_are_exactly_the_planted_labels(built_site, runs):
    run = runs["causal-attribution"]
    page = run_block(node(built_site, "locate", "causal-attribution"), "causal-attribution")
    marks = re.findall(
        r'<rect class="mi-planted" data-planted="([^"]+)" aria-label="([^"]+)"', page
    )
    shown = {html_module.unescape(label).split(": ")[1]: role for role, label in marks}
    # a cell is labelled "<row> <column>": "L1 @6 H2" is the site L1H2@6
    as_sites = {
        re.sub(r"L(\d+) @(\d+) H(\d+)", r"L\1H\3@\2", cell): role for cell, role in shown.items()
    }
    # the planted targets the producer scored against, each with its role in the truth
    expected = {
        s.target.label: run.truth.role_for(s.target)
        for s in run.result.scores
        if s.target.label in run.result.recovery.ranks
    }
    assert as_sites == expected == {"L1H2@6": "induction head", "L0H1@6": "previous-token head"}
    assert page.count('class="mi-planted-tag"') == len(expected)
    assert "the heads read at position 6" in html_module.unescape(page)  # the run's notes


def test_a_variant_is_shown_on_the_page_of_its_method(built_site):
    page = node(built_site, "locate", "causal-attribution")
    first, variant = (
        page.index(f'data-method="{n}"') for n in ("causal-attribution", "causal-attribution-heads")
    )
    assert first < variant  # the method itself first, then its variants
    assert "variant method" in page


def test_outlines_stay_inside_their_cells(built_site):
    """Each planted outline, stroke included, lies within the cell it marks."""
    page = node(built_site, "locate", "circuit-discovery")
    cells = [tuple(map(float, m)) for m in re.findall(
        r'<rect class="mi-cell" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', page)]  # fmt: skip
    outlines = re.findall(
        r'class="mi-planted"[^>]*x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"'
        r'[^>]*stroke-width="([\d.]+)"',
        page,
    )
    assert len(outlines) == 2
    for ox, oy, ow, oh, sw in (tuple(map(float, o)) for o in outlines):
        cx, cy, cw, ch = next(
            c for c in cells if c[0] <= ox < c[0] + c[2] and c[1] <= oy < c[1] + c[3]
        )
        assert ox - sw / 2 >= cx and ox + ow + sw / 2 <= cx + cw
        assert oy - sw / 2 >= cy and oy + oh + sw / 2 <= cy + ch


def test_mostly_planted_scores_are_a_ranked_strip(built_site, runs):
    page = node(built_site, "locate", "magnitude-analysis")
    assert 'class="mi-figure mi-strip"' in page and "mi-heatmap" not in page
    planted = len(runs["magnitude-analysis"].truth.planted)
    assert page.count('<rect class="mi-planted"') == planted


def test_captions_say_what_the_control_was(built_site, runs):
    steer = html_module.unescape(node(built_site, "steer", "vector-arithmetic"))
    assert "a random direction of the same norm" in steer
    assert runs["vector-arithmetic"].result.control.description in steer
    assert "random control (red)" not in steer and "blue: chosen" not in steer
    recipe = html_module.unescape(node(built_site, "goals", "safety-reliability"))
    assert "the same number of random sites" in recipe and "mean ± std over 3 seeds" in recipe
    assert "0.8 ± 0.02" in recipe  # before, as mean ± std
    # a recipe's locate step is drawn as a locate method's ranking is
    assert "The locate step: causal-attribution" in recipe
    assert recipe.count('class="mi-figure mi-heatmap"') == 1


def test_the_mark_follows_the_runs_scores(built_site):
    good = node(built_site, "locate", "causal-attribution")
    bad = node(built_site, "locate", "circuit-discovery")
    assert re.search(r'mi-verdict--good"[^>]*>✓', good) and "AUROC 1" in good
    assert re.search(r'mi-verdict--bad"[^>]*>✗', bad) and "AUROC 0" in bad
    assert "worst planted rank 16 of 16" in bad


def test_failed_and_missing_runs_say_which_command_makes_them(built_site, site_data):
    failed = html_module.unescape(node(built_site, "steer", FAILED))
    assert "The run failed:" in failed and "RuntimeError: the hook did not fire" in failed
    assert f"mi-atlas run {FAILED} --json" in failed
    # implemented in the repository but not in this runs folder
    missing = html_module.unescape(node(built_site, "locate", "probing"))
    assert "Not computed yet" in missing
    assert "mi-atlas run probing --json" in missing and "mi-atlas run --all --out" in missing


def test_without_a_runs_folder_every_page_names_the_command(site_data, tmp_path):
    site = build_site(site_data.papers_dir, site_data.taxonomy_dir, tmp_path / "site",
                      runs_dir=tmp_path / "absent")  # fmt: skip
    checked = 0
    for axis in ("locate", "steer", "goals"):
        for n in site_data.taxonomy[axis].nodes.values():
            if axis == "goals" and n.children:
                continue
            page = html_module.unescape(node(site, axis, n.id))
            if any((REPO / p).is_file() for p in n.impls):
                assert "No results in this build" in page and "mi-atlas run --all --out" in page
                checked += 1
    assert checked >= 6
    assert "No results in this build" in read(site / "scoreboard.html")


def test_an_invalid_document_stops_the_build_naming_file_and_field(site_data, tmp_path, caplog):
    folder = tmp_path / "runs"
    write_runs(folder)
    doc = json.loads(read(folder / "causal-attribution.json"))
    doc["result"]["scores"][0]["rank"] = 0  # ranks start at 1
    (folder / "causal-attribution.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(Abort):  # mkdocs logs the plugin's error and aborts
        build_site(site_data.papers_dir, site_data.taxonomy_dir, tmp_path / "site", runs_dir=folder)
    message = caplog.text
    assert str(folder / "causal-attribution.json") in message
    assert "result.locate.scores.0.rank" in message


# -- the scoreboard ------------------------------------------------------------------------


def test_scoreboard_shows_scores_and_where_a_method_does_badly(built_site, runs):
    page = read(built_site / "scoreboard.html")
    rows = set(re.findall(r'<tr data-method="([^"]+)"', page))
    assert rows == {*runs, FAILED, "causal-attribution-heads"}
    row = re.search(r'<tr data-method="circuit-discovery">(.*?)</tr>', page, re.S)[1]
    assert 'data-verdict="bad"' in row and "AUROC 0" in row
    assert re.search(r'<tr data-method="causal-attribution">.*?data-verdict="good"', page, re.S)
    bad = page[page.index('id="does-badly"') :]
    assert "circuit-discovery" in bad[: bad.index("</ul>")]
    assert "gain +0.7 vs the control's +0.0133" in html_module.unescape(page)  # a recipe's gain


# -- the build reads the folder only -------------------------------------------------------


def test_the_site_package_imports_no_method_and_no_command():
    """No module of mi_atlas/site imports reference_impls, torch or mi_atlas.commands."""
    for path in SITE_PACKAGE.glob("*.py"):
        tree = ast.parse(read(path))
        for item in ast.walk(tree):
            if isinstance(item, ast.Import):
                names = [a.name for a in item.names]
            elif isinstance(item, ast.ImportFrom):
                names = [("." * item.level) + (item.module or "")]
            else:
                continue
            for name in names:
                assert not re.match(r"(reference_impls|torch|transformer_lens)\b", name), path
                assert "commands" not in name, f"{path.name} imports {name}"
    found = subprocess.run(["grep", "-rn", r"reference_impls\|commands\.", str(SITE_PACKAGE)],
                           capture_output=True, text=True)  # fmt: skip
    assert found.stdout == ""


def test_a_build_where_torch_cannot_be_imported(site_data, tmp_path):
    """mkdocs builds from the runs folder in a process where importing torch, transformers,
    transformer_lens or reference_impls raises (a meta-path blocker on PYTHONPATH)."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "BLOCKED = ('torch', 'transformers', 'transformer_lens', 'reference_impls')\n"
        "class Blocker:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Blocker())\n",
        encoding="utf-8",
    )
    runs_dir = tmp_path / "runs"
    write_runs(runs_dir)
    site = tmp_path / "site"
    script = (
        "import sys\n"
        "try:\n    import torch\nexcept ImportError:\n    pass\nelse:\n    sys.exit('not blocked')\n"
        "from mkdocs.commands.build import build\n"
        "from mkdocs.config import load_config\n"
        f"build(load_config({str(REPO / 'mkdocs.yml')!r}, site_dir={str(site)!r}))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(blocker),
        "NO_MKDOCS_2_WARNING": "1",
        "MI_ATLAS_PAPERS": str(site_data.papers_dir),
        "MI_ATLAS_TAXONOMY_DIR": str(site_data.taxonomy_dir),
        "MI_ATLAS_RUNS": str(runs_dir),
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "mi-figure" in read(site / "taxonomy" / "locate" / "causal-attribution.html")


# -- the real run documents (slow: `mi-atlas run --all` reruns what its cache lacks) ---------


@pytest.mark.slow
@pytest.mark.impls
def test_every_document_of_run_all_renders(site_data, tmp_path):
    from mi_atlas.runs import LocateResult, RunIndex

    runs_dir = REPO / ".mi-atlas-cache" / "runs"  # the folder `mkdocs build` reads
    command = [
        str(Path(sys.executable).parent / "mi-atlas"),
        "run",
        "--all",
        "--out",
        str(runs_dir),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    index = RunIndex.model_validate_json(read(runs_dir / "index.json"))
    site = build_site(
        site_data.papers_dir, site_data.taxonomy_dir, tmp_path / "site", runs_dir=runs_dir
    )
    pages = {"method": ("locate", "steer"), "recipe": ("goals",)}
    shown = 0
    for entry in index.runs:
        if entry.kind not in pages:
            continue
        axis = next(a for a in pages[entry.kind] if entry.method in site_data.taxonomy[a].nodes)
        page = node(site, axis, entry.method)
        run_html = run_block(page, entry.name)
        assert entry.error is None, f"{entry.name}: {entry.error}"
        run = Run.model_validate_json(read(runs_dir / entry.file))
        assert "<svg" in run_html and "mi-result-table" in run_html, entry.name
        assert "mi-verdict--" in run_html, entry.name
        result = run.result
        if isinstance(result, LocateResult) and result.recovery is not None:
            assert run_html.count('class="mi-planted"') >= len(result.recovery.ranks), entry.name
        for svg in re.findall(r'<svg class="mi-figure mi-heatmap".*?</svg>', run_html, re.S):
            assert 'class="mi-colourbar"' in svg, entry.name
            assert not re.search(r'font-size="(\d|1[01])"', svg), entry.name
        shown += 1
    assert shown >= 10


def test_results_with_nothing_in_them_render_and_say_so():
    """A steer with no measure, a locate with no score, a check with no check: no crash."""
    from mi_atlas.runs import CheckResult, Control, LocateResult, SteerResult
    from mi_atlas.site import result_view

    base = heads_run()
    empty = {
        "steer": SteerResult(
            setting="s",
            control=Control(kind="none", description="none"),
            measures=[],
            restored=True,
        ),  # fmt: skip
        "locate": LocateResult(setting="s", metric="m", meaning="a score", scores=[]),
        "check": CheckResult(checks=[]),
    }
    for kind, result in empty.items():
        run = base.model_copy(update={"result": result})
        figs, table = result_view.render(run, f"fig-{kind}")
        assert isinstance(figs, str) and isinstance(table, str)
        assert result_view.verdict(run).mark == "?"  # nothing to judge by
