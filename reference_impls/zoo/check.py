"""`zoo-check`: re-measure a zoo model's accuracy and re-run its direct check against its card.

The direct check is the task's own, independent measurement of the planted mechanism
(attention scores, ablations, token swaps; see each task module), so this is what tells a user
that the shipped weights still do what their card says.
"""

from __future__ import annotations

from typing import Any

from reference_impls import zoo
from reference_impls.registry import register_check


@register_check("zoo-check", default_model="induction")
def zoo_check(model_name: str) -> dict[str, Any]:
    """Re-measure a zoo model's accuracy and its planted mechanism; compare with its card."""
    card = zoo.card(model_name)
    task = zoo.task(model_name)
    model = zoo.load(model_name)
    metrics = task.evaluate(model)
    check = task.direct_check(model)
    reached = metrics["accuracy"] >= card["metrics"]["accuracy"] - card["tolerance"]
    return {
        "metrics": metrics,
        "card_metrics": card["metrics"],
        "checks": check["checks"],
        "measured_ground_truth": check["ground_truth"],
        "accuracy_reached": reached,
        "recovered": bool(check["checks"]["passed"]) and reached,
    }
