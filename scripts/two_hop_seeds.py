"""The `two-hop` model retrained with 5 training seeds, the back-patching recipe run on each.

`mi-atlas run logic-reasoning-two-hop` varies the data (validation / test partition, probe
split, random control triples) on the one shipped model; this script varies the training too:
for each seed it trains the zoo recipe `two-hop` with that initialisation and data stream (the
zoo's own trainer, into a temporary folder), runs its direct check, and runs one seed of
`reference_impls.recipes.logic_reasoning_two_hop` (data seed = training seed). With
`--untied` the input and output embeddings are left untied: the first attempt, on which
back-patching did nothing (docs/recipes.md, logic-reasoning).

Usage: python scripts/two_hop_seeds.py [--seeds 0 1 2 3 4] [--untied]
(about 110 s per seed on one thread)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from reference_impls import zoo  # noqa: E402
from reference_impls.recipes import logic_reasoning_two_hop as recipe  # noqa: E402
from reference_impls.zoo import train as zoo_train  # noqa: E402
from reference_impls.zoo.tasks import two_hop  # noqa: E402
from reference_impls.zoo.tasks._planting import freeze_mlp_output  # noqa: E402


def untied_prepare(model) -> None:
    """The first attempt's preparation: the frozen MLPs, embeddings left untied."""
    freeze_mlp_output(model, two_hop.FROZEN_MLPS)


def one_seed(seed: int, out: Path) -> dict:
    name = f"two-hop-seed{seed}"
    zoo_train.RECIPES[name] = dataclasses.replace(zoo_train.RECIPES["two-hop"], seed=seed)
    card = zoo_train.train(name, out, log=lambda line: None)
    model = zoo.load(out / name)
    torch.set_num_threads(1)
    result = recipe.one_seed(model, two_hop, seed)
    for arm in result["arms"].values():
        arm.pop("candidates")
    return {"seed": seed, "checks": card["checks"], **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--untied", action="store_true", help="the first attempt (untied)")
    args = parser.parse_args(argv)
    if args.untied:
        two_hop.prepare = untied_prepare
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            results.append(one_seed(seed, Path(tmp)))
            print(json.dumps(results[-1], default=str), flush=True)

    def summary(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {sd:.3f}"

    print("direct check passed:", [r["checks"]["passed"] for r in results])
    for what in ("validation", "test", "trained", "one-hop"):
        print(f"before   {what:15s} {summary([r['before'][what] for r in results])}")
    for arm in ("located", "data", "random"):
        for what in ("validation", "test", "trained", "one-hop"):
            print(f"{arm:8s} {what:15s} {summary([r['arms'][arm][what] for r in results])}")
        print(f"{arm:8s} chosen          {[r['arms'][arm]['triple'] for r in results]}")
    print(
        f"mean-state test          {summary([r['arms']['located']['mean-state test'] for r in results])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
