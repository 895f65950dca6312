"""The deeper zoo (4 layers): every planted component confirmed alone, decoys and backups included.

The direct checks of tests/impls/test_zoo.py re-run every task's whole check; here the
properties that make these models worth having are asserted one by one, on the shipped weights,
from numbers the checks measure by ablation (never by a locate method): a component matters
alone, a decoy does not, a backup takes over, a negative head pushes the other way.
"""

from __future__ import annotations

import functools

import pytest
import torch

from mi_atlas import runs
from reference_impls import zoo

pytestmark = pytest.mark.impls

DEEP = ["induction-deep", "ioi", "facts-deep", "refusal-deep"]


@functools.cache
def _checked(name):
    model = zoo.load(name)
    return model, zoo.task(name).direct_check(model)["checks"]


def test_at_least_four_zoo_models_have_four_layers():
    deep = [n for n in zoo.names() if zoo.card(n)["training"]["n_layers"] >= 4]
    assert set(DEEP) <= set(deep) and len(deep) >= 4


@pytest.mark.parametrize("name", DEEP)
def test_each_deep_card_states_its_truth_as_a_run_document_with_confirmations(name):
    truth = zoo.task(name).ground_truth(zoo.card(name))
    assert isinstance(truth, runs.GroundTruth) and truth.planted
    for planted in truth.planted:
        assert planted.role and planted.confirmed_by.startswith(("zero-ablating", "projecting"))
    runs.GroundTruth.model_validate_json(truth.model_dump_json())


def test_induction_deep_measured_circuit_and_its_look_alikes():
    _, c = _checked("induction-deep")
    truth = zoo.card("induction-deep")["ground_truth"]
    base, alone = c["accuracy"], c["ablate_alone_accuracy"]
    assert base > 0.95 and truth["previous_token_heads"] and truth["induction_heads"]
    for layer, h in truth["previous_token_heads"] + truth["induction_heads"]:
        assert alone[f"L{layer}H{h}"] < base - 0.05  # each on the path, alone
    for label in truth["decoys"]:  # scored like circuit heads, not needed alone
        assert alone[label] >= base - 0.05
    assert c["ablate_group_accuracy"]["induction"] < 0.5
    # the circuit sits in layers 0-1; layers 2-3 (half the model) are not needed
    assert all(alone[f"L{layer}H{h}"] > base - 0.01 for layer in (2, 3) for h in range(4))


def test_induction_deep_edges_each_cost_less_than_their_heads_and_the_look_alikes_nothing():
    _, c = _checked("induction-deep")
    base, alone, edge = c["accuracy"], c["ablate_alone_accuracy"], c["ablate_edge_accuracy"]
    # the previous-token head into the stronger induction head's key: measured 1.00 -> 0.84;
    # into L1H1's key 0.97, less than either head alone (part goes through MLP 0)
    assert edge["L0H3 -> L1H2 key"] < base - 0.1
    assert alone["L1H1"] < edge["L0H3 -> L1H1 key"] < base
    # the induction heads' direct writes into the unembedding matter a little (0.98, 0.96): the
    # rest of their effect goes through later layers
    for h in ("L1H1", "L1H2"):
        assert alone[h] < edge[f"{h} -> unembedding"] < base
    # the look-alikes' edges, zero-ablated alone, cost nothing
    for h in ("L1H0", "L1H3"):
        assert edge[f"L0H3 -> {h} key"] > base - 0.01 and edge[f"{h} -> unembedding"] > base - 0.01
    # the task module states the four planted edges, each with its own ablation
    truth = zoo.truth("induction-deep")
    edges = [p for p in truth.planted if isinstance(p.target, runs.Edge)]
    assert sorted(p.target.label for p in edges) == [
        "head_out L0 H3 -> k L1 H1",
        "head_out L0 H3 -> k L1 H2",
        "head_out L1 H1 -> resid_post L3",
        "head_out L1 H2 -> resid_post L3",
    ]
    assert all(p.confirmed_by.startswith("zero-ablating the edge") for p in edges)


def test_ioi_components_each_do_their_part():
    _, c = _checked("ioi")
    base = c["logit_diff"]
    alone = c["ablate_alone_logit_diff"]
    assert c["ablate_alone_accuracy"]["L1H0"] < 0.7  # S-inhibition
    assert alone["L2H0"] < base and alone["L2H1"] < base  # name movers
    assert alone["L3H1"] > base + 0.1  # the negative name mover pushes against the answer
    # the backup carries the answer without the name movers; without both, accuracy falls
    assert c["ablate_name_movers_accuracy"] >= c["accuracy"] - 0.02
    assert c["ablate_name_movers_and_backup_accuracy"] < c["accuracy"] - 0.2
    # redundancy: no single mover matters much (what one-at-a-time methods miss)
    assert all(abs(alone[h] - base) < 0.1 * abs(base) for h in ("L2H0", "L2H1", "L3H0"))


def test_facts_deep_store_is_in_the_middle_mlps_and_the_mover_has_a_backup():
    _, c = _checked("facts-deep")
    grid = torch.tensor(c["mlp_ablation_recall"])
    # the store: MLP1 and MLP2 at the last subject token (a third of the facts survive through
    # an additive path from the name embeddings, stated on the card)
    assert c["ablate_store_recall"] < 0.5 and grid[1, 4] < 0.8
    off = grid.clone()
    off[1:3, 4] = 1.0
    assert off.min() > 0.85  # no single MLP elsewhere matters much
    assert min(c["ablate_alone_recall"]["L3H0"], c["ablate_alone_recall"]["L3H1"]) > 0.8
    assert c["ablate_both_movers_recall"] < 0.3


def test_refusal_deep_direction_is_causal_and_its_equal_norm_decoys_are_not():
    _, c = _checked("refusal-deep")
    removed, added = (
        c["refusal_rate_trigger_with_direction_removed"],
        c["refusal_rate_benign_with_direction_added"],
    )
    assert removed[0] < 0.05 and added[0] > 0.95
    assert all(r > c["refusal_rate_trigger"] - 0.05 for r in removed[1:])
    assert all(a < c["refusal_rate_benign"] + 0.05 for a in added[1:])
    gaps = c["class_projection_gap"]
    assert max(gaps) / min(gaps) < 1.5  # the decoys are as large as the refusal direction


def test_refusal_deep_directions_are_orthonormal_and_centred():
    from reference_impls.zoo.tasks import refusal_deep

    dirs = refusal_deep.directions()
    assert torch.allclose(dirs @ dirs.T, torch.eye(4), atol=1e-5)
    assert dirs.mean(-1).abs().max() < 1e-6


def test_planting_roles_point_where_their_docstrings_say():
    from reference_impls.zoo.tasks import _planting as P

    tokens = torch.tensor([[1, 5, 6, 5, 7, 6]])
    assert P.previous(tokens).tolist() == [[0, 0, 1, 2, 3, 4]]
    assert P.earlier_occurrence(tokens).tolist() == [[0, 0, 0, 1, 0, 2]]
    assert P.earlier_occurrence(tokens, shift=1).tolist() == [[0, 0, 0, 2, 0, 3]]
    assert P.resting(tokens).tolist() == [[0] * 6] and P.itself(tokens).tolist() == [list(range(6))]


@pytest.mark.slow
def test_retraining_refusal_deep_reproduces_its_card(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [
            sys.executable,
            str(repo / "scripts" / "train_zoo.py"),
            "refusal-deep",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    retrained = json.loads((tmp_path / "refusal-deep" / "card.json").read_text())
    card = zoo.card("refusal-deep")
    assert retrained["checks"]["passed"]
    assert retrained["metrics"]["accuracy"] >= card["metrics"]["accuracy"] - card["tolerance"]
