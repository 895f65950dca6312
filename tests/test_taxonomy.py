"""The taxonomy files: slug ids defined once, unambiguous aliases, resolvable labels."""

from __future__ import annotations

import re

import pytest
from helpers import REPO

AXES = ("objects", "locate", "steer", "goals")
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.mark.parametrize("axis", AXES)
def test_ids_are_stable_slugs_defined_once(taxonomy, axis):
    # the ids themselves live in taxonomy/*.yaml alone; a test copying them would be one more
    # place to edit when a node is added
    ids = taxonomy[axis].ids
    assert ids and all(SLUG.match(i) for i in ids), ids
    others = {i for other in AXES if other != axis for i in taxonomy[other].ids}
    assert not set(ids) & others  # an id names one node of one axis


def test_goal_hierarchy(taxonomy):
    assert taxonomy.goal_of("fairness-bias") == "alignment"
    assert taxonomy.goal_of("efficient-inference") == "efficiency"
    assert taxonomy.goal_of("alignment") is None


@pytest.mark.parametrize("axis", AXES)
def test_no_alias_points_at_two_nodes(taxonomy, axis):
    from mi_atlas.taxonomy import label_key

    owners: dict[str, set[str]] = {}
    for node in taxonomy[axis].nodes.values():
        for label in (node.id, node.name, *node.aliases):
            owners.setdefault(label_key(label), set()).add(node.id)
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}


@pytest.mark.parametrize(
    ("axis", "label", "ids", "unknown"),
    [
        ("locate", "Magitude Analysis", ["magnitude-analysis"], []),
        ("objects", "MHA & FFN", ["attention-head", "ffn"], []),
        ("objects", "MHA<br>Neuron", ["attention-head", "neuron"], []),
        ("goals", "Safety & Reliability", ["safety-reliability"], []),
        ("steer", "-", [], []),
        ("objects", "Residual Stream, Widgets", ["residual-stream"], ["Widgets"]),
    ],
)
def test_resolve_labels(taxonomy, axis, label, ids, unknown):
    assert taxonomy.resolve_labels(axis, label) == (ids, unknown)


@pytest.mark.parametrize(
    ("label", "venue"),
    [
        ("Arxiv", "arXiv"),
        ("ArXiv", "arXiv"),
        ("TLMR", "TMLR"),
        ("ACLWS", "ACL Workshop"),
        ("NeurIPS 2024", "NeurIPS"),
        ("Findings of EMNLP", "EMNLP"),
    ],
)
def test_venue_aliases(taxonomy, label, venue):
    assert taxonomy.venues.resolve(label) == venue


# Leaf nodes without a reference implementation, each for a documented reason (docs/recipes.md);
# none is left since logic-reasoning got its recipe (reference_impls/recipes/logic_reasoning.py).
WITHOUT_IMPL: set[str] = set()


def test_every_node_has_a_description_and_an_existing_impl(taxonomy):
    missing = set()
    for axis in AXES:
        for node in taxonomy[axis].nodes.values():
            assert node.description.strip(), node.id
            if not node.children and not node.impls:
                missing.add(node.id)
            for path in node.impls:
                assert path.startswith("reference_impls/") and (REPO / path).is_file(), (
                    axis,
                    node.id,
                    path,
                )
    assert missing == WITHOUT_IMPL


def test_package_reads_the_checkout_taxonomy(taxonomy):
    assert (taxonomy.root / "objects.yaml").resolve() == (
        REPO / "taxonomy" / "objects.yaml"
    ).resolve()
