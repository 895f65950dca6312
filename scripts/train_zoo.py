"""Train the model zoo: python scripts/train_zoo.py [NAME ...] [--out DIR].

Each model is trained by its seeded, deterministic CPU recipe (`reference_impls.zoo.train`),
saved as a Hugging Face checkpoint, reloaded through `reference_impls.zoo.load`, evaluated and
checked, and its `card.json` written beside the weights. Without names, every model is trained.
Default output: reference_impls/zoo/models (the shipped zoo). Exit 1 if a direct check fails.

Example: python scripts/train_zoo.py induction --out /tmp/zoo
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reference_impls.zoo import MODELS_DIR  # noqa: E402
from reference_impls.zoo.train import RECIPES, train  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "names", nargs="*", help=f"models to train (default: all of {', '.join(RECIPES)})"
    )
    parser.add_argument(
        "--out", type=Path, default=MODELS_DIR, help="output folder (default: the shipped zoo)"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(RECIPES)}")
    failed = []
    for name in args.names or list(RECIPES):
        card = train(name, args.out, log=lambda line: print(line, flush=True))
        if not card["checks"].get("passed"):
            failed.append(name)
    if failed:
        print(f"direct check failed for: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
