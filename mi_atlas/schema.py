"""The paper entry: one `papers/<id>.yaml` file, validated by pydantic v2.

Constrained types are reusable `Annotated` aliases whose validators raise errors naming the bad
value. Tag and venue checks need the taxonomy, which is passed as validation context
(`Paper.model_validate(data, context={"taxonomy": tax})`), so the allow-list stays data, not
code. Checks across files (id equals file stem, duplicates) live in `mi_atlas.index`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from . import links
from .taxonomy import AXIS_NOUNS, Taxonomy

MIN_YEAR = 1950
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SCHEMA_PATH = "schema/paper.schema.json"


def _taxonomy(info: ValidationInfo) -> Taxonomy | None:
    return (info.context or {}).get("taxonomy")


def _slug(value: str) -> str:
    if not SLUG.match(value) or len(value) > 80:
        raise PydanticCustomError(
            "slug",
            "'{value}' is not a safe id: use lowercase letters, digits and single hyphens "
            "(at most 80 characters), e.g. '2024-arditi-refusal-direction'",
            {"value": value},
        )
    return value


_LATEST_YEAR = dt.date.today().year + 1


def _year(value: int) -> int:
    latest = _LATEST_YEAR
    if not MIN_YEAR <= value <= latest:
        raise PydanticCustomError(
            "year",
            "{value} is not a plausible year: use {low} to {high}",
            {"value": value, "low": MIN_YEAR, "high": latest},
        )
    return value


def _url(value: str) -> str:
    if not links.URL.match(value) or any(ch in value for ch in "<>\"' "):
        raise PydanticCustomError(
            "url",
            "'{value}' is not a web address: it must start with http:// or https://",
            {"value": value},
        )
    return value


def _arxiv(value: str) -> str:
    if not links.ARXIV_ID.match(value):
        hint = links.clean_arxiv(value)
        if hint != value and links.ARXIV_ID.match(hint):
            raise PydanticCustomError(
                "arxiv",
                "'{value}' is not a bare arXiv id; did you mean '{suggestion}'?",
                {"value": value, "suggestion": hint},
            )
        raise PydanticCustomError(
            "arxiv",
            "'{value}' is not an arXiv id: use the form 2401.12345 (no version, no URL)",
            {"value": value},
        )
    return value


def _doi(value: str) -> str:
    if not links.DOI.match(value):
        hint = links.clean_doi(value)
        if hint != value and links.DOI.match(hint):
            raise PydanticCustomError(
                "doi",
                "'{value}' is not a bare DOI; did you mean '{suggestion}'?",
                {"value": value, "suggestion": hint},
            )
        raise PydanticCustomError(
            "doi",
            "'{value}' is not a DOI: use the form 10.1234/abc (no https://doi.org/)",
            {"value": value},
        )
    return value


def _openreview(value: str) -> str:
    if not links.OPENREVIEW_ID.match(value):
        info = links.parse_link(value)
        extra = {"suggestion": info.openreview} if info.openreview else {}
        tail = (
            "; did you mean '{suggestion}'?"
            if info.openreview
            else ": use the forum id, e.g. pH3XAQME6c"
        )
        raise PydanticCustomError(
            "openreview", "'{value}' is not an OpenReview id" + tail, {"value": value, **extra}
        )
    return value


def _acl(value: str) -> str:
    if not links.ACL_ID.match(value):
        raise PydanticCustomError(
            "acl",
            "'{value}' is not an ACL Anthology id: use the form 2024.acl-long.483",
            {"value": value},
        )
    return value


ORCID = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")


def _orcid(value: str) -> str:
    bare = value.removeprefix("https://orcid.org/")
    if not ORCID.match(bare):
        raise PydanticCustomError(
            "orcid",
            "'{value}' is not an ORCID iD: use the form 0000-0002-1825-0097",
            {"value": value},
        )
    return bare


def _one_line(value: str) -> str:
    if "\n" in value or len(value) > 300:
        raise PydanticCustomError(
            "one_line",
            "a summary is one line of at most 300 characters in the entry's own words "
            "(put the paper's abstract in 'abstract')",
            {},
        )
    return value


def _tag_checker(axis: str):
    def check(values: list[str], info: ValidationInfo) -> list[str]:
        if not values:  # most imported entries: nothing to look up
            return values
        taxonomy = _taxonomy(info)
        if taxonomy is None:
            return values
        known = taxonomy[axis]
        seen: set[str] = set()
        for index, value in enumerate(values):
            if value in seen:
                raise PydanticCustomError(
                    "duplicate_tag", "'{value}' is listed twice", {"value": value, "index": index}
                )
            seen.add(value)
            if value not in known.nodes:
                suggestion = known.suggest(value)
                if suggestion:
                    raise PydanticCustomError(
                        "unknown_tag",
                        "'{value}' is not {noun}; did you mean '{suggestion}'?",
                        {
                            "value": value,
                            "noun": AXIS_NOUNS[axis],
                            "suggestion": suggestion,
                            "index": index,
                        },
                    )
                raise PydanticCustomError(
                    "unknown_tag",
                    "'{value}' is not {noun}; valid ids are: {valid}",
                    {
                        "value": value,
                        "noun": AXIS_NOUNS[axis],
                        "valid": ", ".join(known.ids),
                        "index": index,
                    },
                )
        return values

    return check


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Slug = Annotated[str, AfterValidator(_slug)]
Year = Annotated[int, AfterValidator(_year)]
Url = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_url)]
ArxivId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_arxiv)]
Doi = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_doi)]
OpenReviewId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_openreview)]
AclId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_acl)]
# Open: a venue missing from taxonomy/venues.yaml is kept as written; `check` warns about it.
VenueName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Orcid = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_orcid)]
OneLine = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_one_line)
]
BibField = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$")]


def _tags(axis: str, description: str):
    return Annotated[
        list[Text],
        AfterValidator(_tag_checker(axis)),
        Field(default_factory=list, description=description),
    ]


class Provenance(BaseModel):
    """Where an entry came from: a source list or file and the line of its row."""

    model_config = ConfigDict(extra="forbid")

    source: Text = Field(description="The list or file the entry was imported from.")
    line: int | None = Field(default=None, ge=1, description="1-based line in the source.")
    section: str | None = Field(default=None, description="The heading it was listed under.")


class Paper(BaseModel):
    """One paper of the index. Tag lists put the primary tag first; an empty list means
    the survey marks that axis "-" for this paper."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, title="mi-atlas paper entry"
    )

    id: Slug = Field(description="Equals the file name without .yaml; lowercase-hyphenated.")
    title: Text
    year: Year
    venue: VenueName | None = Field(
        default=None,
        description="A name from taxonomy/venues.yaml, e.g. NeurIPS, ICLR, arXiv; a venue the "
        "list lacks is kept as written (mi-atlas check warns). Required unless needs lists "
        "'venue'.",
    )
    url: Url | None = Field(
        default=None,
        description="The paper's main page (publisher, OpenReview, arXiv or blog); required "
        "unless needs lists 'link'.",
    )
    needs: list[Literal["link", "venue"]] = Field(
        default_factory=list,
        description="What the entry still lacks, for mi-atlas enrich or a curator: 'link' "
        "(no url yet), 'venue' (not known yet); the entry is identified by its title, year "
        "and authors or its link.",
    )
    arxiv: ArxivId | None = Field(default=None, description="arXiv id such as 2406.11717.")
    doi: Doi | None = Field(default=None, description="DOI such as 10.18653/v1/2024.acl-long.483.")
    openreview: OpenReviewId | None = Field(default=None, description="OpenReview forum id.")
    acl: AclId | None = Field(
        default=None, description="ACL Anthology id such as 2024.acl-long.483."
    )
    code: Url | None = Field(default=None, description="Code repository.")
    authors: list[Text] = Field(
        default_factory=list, description="'First Last' per author, in the paper's order."
    )
    orcids: dict[Text, Orcid] = Field(
        default_factory=dict,
        description="ORCID iDs of some authors, keyed by the name exactly as in `authors`.",
    )
    aka: list[Text] = Field(
        default_factory=list,
        description="Short names the paper introduces and readers search for (ROME, CAA, LAPE).",
    )
    abstract: Text | None = Field(default=None, description="The paper's abstract.")
    tldr: OneLine | None = Field(
        default=None, description="A one-line summary in the entry's own words."
    )
    objects: _tags("objects", "Interpretable objects (ids from taxonomy/objects.yaml).")
    locate: _tags("locate", "Locating methods (ids from taxonomy/locate.yaml).")
    steer: _tags("steer", "Steering methods (ids from taxonomy/steer.yaml).")
    goals: _tags("goals", "Improvement sub-goals (ids from taxonomy/goals.yaml).")
    bibtex: dict[BibField, Text] = Field(
        default_factory=dict, description="Extra BibTeX fields (pages, volume, publisher, ...)."
    )
    added: dt.date | None = Field(
        default=None,
        description="When the entry joined the index (the day its file was first committed).",
    )
    notes: Text | None = None
    provenance: list[Provenance] = Field(default_factory=list)

    @model_validator(mode="after")
    def _orcids_name_authors(self) -> Paper:
        for name in self.orcids:
            if name not in self.authors:
                raise PydanticCustomError(
                    "orcid_author",
                    "orcids names '{name}', who is not in authors; key each ORCID iD by the "
                    "name exactly as written there",
                    {"name": name},
                )
        return self

    @model_validator(mode="after")
    def _link_or_needs_link(self) -> Paper:
        for need, name, what in (("link", "url", "page"), ("venue", "venue", "venue")):
            if getattr(self, name) is None and need not in self.needs:
                raise PydanticCustomError(
                    f"{name}_missing",
                    "is required: give the paper's {what}, or write 'needs: [{need}]' for an "
                    "entry whose {what} is still to be found",
                    {"field": name, "what": what, "need": need},
                )
            if getattr(self, name) is not None and need in self.needs:
                raise PydanticCustomError(
                    "needs_met",
                    "lists '{need}' but the entry has a {name}: remove '{need}' from needs",
                    {"field": "needs", "need": need, "name": name},
                )
        return self

    @property
    def primary(self) -> dict[str, str | None]:
        return {
            axis: (getattr(self, axis) or [None])[0]
            for axis in ("objects", "locate", "steer", "goals")
        }


FIELD_ORDER = list(Paper.model_fields)


def to_yaml_data(paper: Paper) -> dict[str, Any]:
    """The entry as plain data in the canonical key order, empty optional fields left out."""
    data = paper.model_dump(mode="json", exclude_none=True)
    required_lists = {"objects", "locate", "steer", "goals"}
    return {
        key: data[key]
        for key in FIELD_ORDER
        if key in data and (data[key] not in ([], {}) or key in required_lists)
    }


def json_schema(taxonomy: Taxonomy) -> dict[str, Any]:
    """JSON Schema for editors, with the taxonomy's ids and venues as enums."""
    schema = Paper.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mi-atlas.dev/schema/paper.schema.json"
    props = schema["properties"]
    for axis in ("objects", "locate", "steer", "goals"):
        props[axis]["items"] = {"type": "string", "enum": taxonomy[axis].ids}
    # The controlled list as suggestions, not an enum: an unknown venue is a warning only.
    props["venue"] = {**props["venue"], "examples": sorted(taxonomy.venues.by_name)}
    props["id"]["pattern"] = SLUG.pattern
    props["arxiv"]["anyOf"][0]["pattern"] = links.ARXIV_ID.pattern
    props["doi"]["anyOf"][0]["pattern"] = links.DOI.pattern
    props["openreview"]["anyOf"][0]["pattern"] = links.OPENREVIEW_ID.pattern
    props["year"]["minimum"] = MIN_YEAR
    props["orcids"]["additionalProperties"]["pattern"] = ORCID.pattern
    props["tldr"]["anyOf"][0]["maxLength"] = 300
    return schema
