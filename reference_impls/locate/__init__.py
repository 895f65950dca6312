"""Locate methods: where in a model is the behaviour? Each returns scores over sites.

One module per locating method of the survey's taxonomy (`taxonomy/locate.yaml`):
`magnitude_analysis`, `causal_attribution`, `gradient_detection`, `probing`, `vocab_projection`
and `circuit_discovery`. Every method speaks in `reference_impls.addressing` sites and returns a
`scores.Scores` (a score per site, what it means, and metadata); sweeps over many sites run
batched (`_batched_patch`). `metrics` holds the logit-based metrics the methods optimise for.
"""
