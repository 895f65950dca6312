"""`mi-atlas enrich`: bring facts about papers (authors, identifiers, code) into their entries.

Facts come from a metadata file (`facts.load_facts`) or from online sources (`online`); both
become `Fact` records and go through the same `apply.enrich`, which merges each into its
entry with the importers' merge (the curated entry wins), reports conflicts, and holds
uncertain facts back for a curator.
"""
