"""Improve recipes: Locate -> Steer -> a measured improvement, one module per sub-goal.

Each module (named for its sub-goal in `taxonomy/goals.yaml`) chains one locate method, one
steer method and a metric measured before steering, after steering the located sites, and
under a control that steers randomly chosen sites (or a random direction) of the same size;
`common` holds that comparison and the result every recipe returns. Each is registered with
`reference_impls.registry`, so `mi-atlas run <sub-goal id> --json` runs it. Results and the
reasons behind each design are in docs/recipes.md.
"""
