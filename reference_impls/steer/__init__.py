"""Steer methods: change a located object, reversibly, to change behaviour.

One module per steering method of the survey's taxonomy (`taxonomy/steer.yaml`):
`amplitude_manipulation` (zero / mean / resample ablation, scaling heads, neurons and SAE
features), `targeted_optimization` (ROME rank-one edits, fine-tuning only located weights),
`vector_arithmetic` (difference-in-means vectors, activation addition, directional ablation,
SAE feature clamping); `sae` trains the small sparse autoencoders the feature methods use.
Hooks are context managers that remove themselves; weight edits return an undoable
`interventions.WeightEdit`.
"""
