"""The matrices: object × locate, locate × steer, steer × goal and method (locate and steer) ×
sub-goal exist, every cell counts the papers tagged with both its row and its column, and every
non-empty cell links to an explorer view that lists exactly those papers.

A cell's papers are computed here from the entries (a goal stands for itself and its
sub-goals); what the explorer lists for a link is computed from the link's query by the
explorer's documented rule (every axis in the query must match, a goal matching its
sub-goals), and checked in the browser for a sample of cells.
"""

from __future__ import annotations

from html import unescape
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from mi_atlas.site.catalog import newest_first

MATRICES = {  # table id -> (row axes, column axes, column nodes: leaves or top-level goals)
    "matrix-objects-locate": (["objects"], ["locate"], "leaves"),
    "matrix-locate-steer": (["locate"], ["steer"], "leaves"),
    "matrix-steer-goals": (["steer"], ["goals"], "roots"),
    "matrix-methods-goals": (["locate", "steer"], ["goals"], "leaves"),
}


class Cells(HTMLParser):
    """Every matrix cell: table id -> list of (row axis, row, col axis, col, count, href)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list]] = {}
        self.table = None
        self.cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "mi-matrix" in (attrs.get("class") or ""):
            self.table = self.tables.setdefault(attrs["id"], [])
        elif tag == "td" and self.table is not None and "data-row" in attrs:
            self.cell = [
                attrs[k] for k in ("data-row-axis", "data-row", "data-col-axis", "data-col")
            ]
            self.cell += ["", None]
            self.table.append(self.cell)
        elif tag == "a" and self.cell is not None:
            self.cell[5] = unescape(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[4] += data.strip()


@pytest.fixture(scope="module")
def cells(built_site):
    parser = Cells()
    parser.feed((built_site / "matrix.html").read_text(encoding="utf-8"))
    return parser.tables


def tags_with_parents(site_data, paper, axis: str) -> set[str]:
    parent = site_data.taxonomy[axis].parent
    tags = set(getattr(paper, axis))
    return tags | {parent[t] for t in tags if t in parent}


def cell_papers(site_data, row_axis, row, col_axis, col) -> list[str]:
    """The papers a cell stands for: tagged with its row node and with its column node."""
    return [
        p.id
        for p in newest_first(site_data.papers)
        if row in tags_with_parents(site_data, p, row_axis)
        and col in tags_with_parents(site_data, p, col_axis)
    ]


def explorer_lists(site_data, query: dict[str, list[str]]) -> list[str]:
    """What the explorer lists for a query of axis filters: every axis must match one value."""
    return [
        p.id
        for p in newest_first(site_data.papers)
        if all(
            set(values) & tags_with_parents(site_data, p, axis) for axis, values in query.items()
        )
    ]


def test_the_four_matrices_cover_their_axes(cells, site_data):
    tax = site_data.taxonomy
    for table, (row_axes, col_axes, columns) in MATRICES.items():
        assert table in cells, table
        want = set()
        for row_axis in row_axes:
            for col_axis in col_axes:
                col_ids = (
                    tax[col_axis].leaf_ids
                    if columns == "leaves"
                    else [n.id for n in tax[col_axis].roots]
                )
                want |= {
                    (row_axis, r, col_axis, c) for r in tax[row_axis].leaf_ids for c in col_ids
                }
        got = [tuple(cell[:4]) for cell in cells[table]]
        assert len(got) == len(set(got)) and set(got) == want, table


def test_every_cell_counts_its_papers_and_links_to_exactly_them(cells, site_data):
    checked = 0
    for table in MATRICES:
        for row_axis, row, col_axis, col, count, href in cells[table]:
            papers = cell_papers(site_data, row_axis, row, col_axis, col)
            assert int(count) == len(papers), (table, row, col)
            if not papers:
                assert href is None, (table, row, col)  # an empty cell links nowhere
                continue
            url = urlsplit(href)
            assert url.path == "explorer.html", href
            query = parse_qs(url.query)
            assert query == {row_axis: [row], col_axis: [col]}, href
            assert explorer_lists(site_data, query) == papers, href
            checked += 1
    assert checked > 40


def test_runnable_methods_link_to_their_implementation(built_site, site_data):
    from site_support import REPO

    html = (built_site / "matrix.html").read_text(encoding="utf-8")
    for axis in ("locate", "steer"):
        for node in site_data.taxonomy[axis].nodes.values():
            runnable = any((REPO / path).is_file() for path in node.impls)
            link = f'href="taxonomy/{axis}/{node.id}.html#reference-implementation"'
            assert (link in html) == runnable, node.id


# -- in the browser -------------------------------------------------------------------------


@pytest.mark.browser
def test_a_sample_of_cells_open_the_explorer_on_exactly_their_papers(page, site_url, site_data):
    for table in MATRICES:
        page.goto(f"{site_url}matrix.html")
        links = page.locator(f"#{table} td.mi-cell a")
        n = links.count()
        counts = [int(c) for c in links.all_inner_texts()]
        sample = sorted({0, n - 1, counts.index(max(counts))})
        for k in sample:
            page.goto(f"{site_url}matrix.html")
            cell = page.locator(f"#{table} td.mi-cell").filter(has=page.locator("a")).nth(k)
            where = [
                cell.get_attribute(a)
                for a in ("data-row-axis", "data-row", "data-col-axis", "data-col")
            ]
            count = int(cell.inner_text())
            cell.locator("a").click()
            page.wait_for_selector("#mi-explorer[data-ready='true']")
            shown = page.eval_on_selector_all(
                "#mi-results li.mi-result[data-id]", "els => els.map(e => e.dataset.id)"
            )
            assert page.get_attribute("#mi-count", "data-count") == str(count)
            assert shown == cell_papers(site_data, *where), (table, where)
            assert page.is_checked(f"#mi-f-{where[0]}-{where[1]}")
            assert page.is_checked(f"#mi-f-{where[2]}-{where[3]}")
