"""Runnable reference implementations of the survey's methods, proven on planted structure.

`reference_impls.addressing` names the interpretable objects (sites) and maps them to
TransformerLens hook names; `reference_impls.interventions` changes a model reversibly (hooks
that always remove themselves, weight edits that restore bit for bit); `reference_impls.zoo`
loads the tiny models whose mechanisms are known; `reference_impls.registry` is what
`mi-atlas list/run/bench` call. Locate methods live in `reference_impls.locate`, steer methods in
`reference_impls.steer`, improve recipes in `reference_impls.recipes`.

Everything here needs the `impls` extra: `pip install -c constraints.txt '.[impls]'`.
"""
