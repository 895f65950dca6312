"""`zoo-check`: re-measure a zoo model's accuracy and re-run its direct check against its card.

The direct check is the task's own, independent measurement of the planted mechanism
(attention scores, ablations, token swaps; see each task module), so this is what tells a user
that the shipped weights still do what their card says.
"""

from __future__ import annotations

from typing import Any

from mi_atlas import runs
from reference_impls import zoo
from reference_impls.registry import Outcome, register_check


@register_check("zoo-check", default_model="induction")
def zoo_check(model_name: str) -> Outcome:
    """Re-measure a zoo model's accuracy and its planted mechanism; compare with its card."""
    card = zoo.card(model_name)
    task = zoo.task(model_name)
    model = zoo.load(model_name)
    metrics = task.evaluate(model)
    check = task.direct_check(model)
    floor = card["metrics"]["accuracy"] - card["tolerance"]
    reached = metrics["accuracy"] >= floor
    passed = bool(check["checks"]["passed"])
    numbers = {f"measured {k}": v for k, v in _numbers(metrics).items()}
    numbers |= {f"card {k}": v for k, v in _numbers(card["metrics"]).items()}
    numbers |= _numbers({k: v for k, v in check["checks"].items() if k != "passed"})
    result = runs.CheckResult(
        checks=[
            runs.Check(
                name="accuracy reached the card's",
                passed=reached,
                value=metrics["accuracy"],
                detail=f"card {card['metrics']['accuracy']:.3f}, tolerance {card['tolerance']}",
            ),
            runs.Check(
                name="direct check of the planted mechanism",
                passed=passed,
                detail=(task.direct_check.__doc__ or "").strip().splitlines()[0],
            ),
        ],
        numbers={k: runs.Estimate.of(v) for k, v in numbers.items()},
    )
    return Outcome(result, recovered=passed and reached)


def _numbers(values: Any, prefix: str = "") -> dict[str, float]:
    """The numbers of a nested dict/list of measurements, by path ("a / b / 0")."""
    if isinstance(values, bool):
        return {prefix: float(values)}
    if isinstance(values, int | float):
        return {prefix: float(values)}
    items = values.items() if isinstance(values, dict) else enumerate(values)
    if not isinstance(values, dict | list | tuple):
        return {}
    out: dict[str, float] = {}
    for key, value in items:
        out |= _numbers(value, f"{prefix} / {key}" if prefix else str(key))
    return out
