"""Deployment: the site's and the repository's addresses are written in one place (mkdocs.yml,
overridable by MI_ATLAS_SITE_URL / MI_ATLAS_REPO_URL), every absolute link follows them, and
the Pages workflow builds after computing the run documents and deploys only from main."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from site_support import REPO, REPO_URL, SITE_URL, build_site

# The published addresses as they were first written (the grep of issue #18); spelt in pieces
# so that this file is not itself a match.
PLACEHOLDERS = re.compile("mi-atlas" + "/" + "mi-atlas|mi-atlas" + "." + "github" + "." + "io")
WORKFLOW = REPO / ".github" / "workflows" / "pages.yml"


def test_the_addresses_are_written_only_in_mkdocs_yml():
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    found = []
    for name in filter(None, tracked):
        path = REPO / name
        if not path.is_file() or path.suffix in {".png", ".safetensors", ".pt", ".bin"}:
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            continue
        found += [f"{name}:{n}" for n, line in enumerate(lines, 1) if PLACEHOLDERS.search(line)]
    setting = [f for f in found if f.startswith("mkdocs.yml:")]
    assert len(setting) == 2, found  # site_url and the plugin's repo_url
    assert found == setting, f"written outside mkdocs.yml: {sorted(set(found) - set(setting))}"


def test_every_absolute_link_follows_the_configured_addresses(site_data, tmp_path, monkeypatch):
    site_url, repo_url = "https://example.org/atlas/", "https://git.example.org/me/fork"
    monkeypatch.setenv("MI_ATLAS_SITE_URL", site_url)
    monkeypatch.setenv("MI_ATLAS_REPO_URL", repo_url)
    site = build_site(site_data.papers_dir, site_data.taxonomy_dir, tmp_path / "site")
    paper = site_data.papers[0]
    page = (site / "papers" / f"{paper.id}.html").read_text(encoding="utf-8")
    assert f'<link rel="canonical" href="{site_url}papers/{paper.id}.html">' in page
    assert f'href="{repo_url}/edit/main/papers/{paper.id}.yaml"' in page
    about = (site / "about.html").read_text(encoding="utf-8")
    assert f'href="{repo_url}/edit/main/docs/about.md"' in about  # Material's edit button
    feed = (site / "feeds" / "recent.xml").read_text(encoding="utf-8")
    assert f'href="{site_url}papers/' in feed
    sitemap = (site / "sitemap.xml").read_text(encoding="utf-8")
    assert f"<loc>{site_url}explorer.html</loc>" in sitemap
    everything = "".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))
    everything += "".join(p.read_text(encoding="utf-8") for p in site.rglob("*.xml"))
    assert SITE_URL not in everything and REPO_URL not in everything  # mkdocs.yml's own


def _steps(job: dict) -> list[dict]:
    return job["steps"]


def test_the_pages_workflow_computes_runs_builds_and_deploys_from_main():
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"] and "pull_request" in triggers
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    runs = [step.get("run", "") for step in _steps(build)]
    uses = [step.get("uses", "") for step in _steps(build)]
    compute = next(i for i, r in enumerate(runs) if "mi-atlas run --all" in r)
    make = next(i for i, r in enumerate(runs) if "mkdocs build --strict" in r)
    assert compute < make
    pages = next(s for s in _steps(build) if s.get("uses", "").startswith("actions/upload-pages"))
    preview = next(s for s in _steps(build) if s.get("uses", "").startswith("actions/upload-art"))
    assert pages["if"] == "github.event_name != 'pull_request'"
    assert preview["if"] == "github.event_name == 'pull_request'"
    assert any(u.startswith("actions/configure-pages") for u in uses)
    assert "MI_ATLAS_REPO_URL" in build["env"]
    assert [s["uses"].split("@")[0] for s in _steps(deploy)] == ["actions/deploy-pages"]
    assert "refs/heads/main" in deploy["if"] and deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}


def test_the_deployment_is_documented():
    text = Path(REPO, "docs", "deploying.md").read_text(encoding="utf-8")
    for word in ("MI_ATLAS_SITE_URL", "MI_ATLAS_REPO_URL", "pages.yml", "site-preview"):
        assert word in text
