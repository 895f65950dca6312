"""The survey's taxonomy and venue list, loaded from `taxonomy/*.yaml`.

The taxonomy is an allow-list: a paper's tags must be node ids from it. Aliases record the
spellings that real paper lists use ("Magitude Analysis", "MHA"), so importers can map them and
the validator can suggest the id a contributor meant.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rapidfuzz import fuzz, process

from .paths import taxonomy_dir
from .yamlio import load_text, read_text

AXES = ("objects", "locate", "steer", "goals")
AXIS_NOUNS = {
    "objects": "an interpretable object",
    "locate": "a locating method",
    "steer": "a steering method",
    "goals": "an improvement goal",
}
_SPLIT = re.compile(r"\s*(?:<br\s*/?>|&|\+|/|;|,|\band\b)\s*", re.IGNORECASE)


class TaxonomyError(ValueError):
    """The taxonomy files themselves are broken (a maintainer's mistake, not a contributor's)."""


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    name: str
    description: str
    notation: str = ""
    aliases: tuple[str, ...] = ()
    impls: tuple[str, ...] = ()
    children: tuple[Node, ...] = ()


class AxisFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    axis: str
    title: str
    nodes: tuple[Node, ...]


class Venue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    full: str
    kind: str = Field(pattern=r"^(conference|journal|workshop|preprint|blog|other)$")
    aliases: tuple[str, ...] = ()


class VenueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    venues: tuple[Venue, ...]


def label_key(text: str) -> str:
    """Normalise a label for alias lookup: case, accents, punctuation and spacing ignored."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"\*|`|_", "", text)
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@dataclass(frozen=True)
class Axis:
    """One axis of the taxonomy: its nodes (flattened, parents before children) and lookups."""

    name: str
    title: str
    roots: tuple[Node, ...]
    nodes: dict[str, Node] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, file: AxisFile) -> Axis:
        axis = cls(file.axis, file.title, file.nodes)
        for node, parent in _walk(file.nodes, None):
            if node.id in axis.nodes:
                raise TaxonomyError(f"taxonomy/{file.axis}.yaml: id '{node.id}' is defined twice")
            axis.nodes[node.id] = node
            if parent is not None:
                axis.parent[node.id] = parent.id
            for label in (node.id, node.name, *node.aliases):
                axis._aliases.setdefault(label_key(label), node.id)
        return axis

    @property
    def ids(self) -> list[str]:
        return list(self.nodes)

    @property
    def leaf_ids(self) -> list[str]:
        return [node_id for node_id, node in self.nodes.items() if not node.children]

    def resolve(self, label: str) -> str | None:
        """The node id a single label means (id, name or alias), or None."""
        return self._aliases.get(label_key(label))

    def suggest(self, value: str) -> str | None:
        """The closest id or alias to `value`, as an id, if it is close enough to be a typo."""
        key = label_key(value)
        if not key:
            return None
        match = process.extractOne(key, list(self._aliases), scorer=fuzz.ratio, score_cutoff=70)
        return self._aliases[match[0]] if match else None


def _walk(nodes: Iterable[Node], parent: Node | None) -> Iterator[tuple[Node, Node | None]]:
    for node in nodes:
        yield node, parent
        yield from _walk(node.children, node)


@dataclass(frozen=True)
class Venues:
    by_name: dict[str, Venue]
    _aliases: dict[str, str]

    @classmethod
    def build(cls, file: VenueFile) -> Venues:
        by_name = {venue.name: venue for venue in file.venues}
        aliases: dict[str, str] = {}
        for venue in file.venues:
            for label in (venue.name, venue.full, *venue.aliases):
                aliases.setdefault(label_key(label), venue.name)
        return cls(by_name, aliases)

    def resolve(self, label: str) -> str | None:
        """The canonical venue for a label, ignoring case, punctuation and a trailing year."""
        key = label_key(label)
        key = re.sub(r"\s*(?:19|20)\d\d$", "", key)
        key = re.sub(r"^(?:19|20)\d\d\s*", "", key)
        return self._aliases.get(key)

    def suggest(self, label: str) -> str | None:
        key = label_key(label)
        if not key:
            return None
        match = process.extractOne(key, list(self._aliases), scorer=fuzz.ratio, score_cutoff=60)
        return self._aliases[match[0]] if match else None

    def note(self, value: str, closest: str | None = None) -> tuple[str, str | None] | None:
        """Why a venue as written is not one of the list, and the name to use (or the closest
        one: `closest` when the caller found a better one), or None when it is a name of the
        list. Venues are open: this is a warning."""
        if value in self.by_name:
            return None
        if name := self.resolve(value):
            return (
                f"'{value}' is written '{name}' in taxonomy/venues.yaml: use that name so the "
                "entry joins its venue in the explorer",
                name,
            )
        closest = self.suggest(value) or closest
        hint = f"; closest: '{closest}'" if closest else ""
        return (
            f"'{value}' is not in taxonomy/venues.yaml{hint}: kept as written (add it there, "
            "with its aliases, if readers should filter by it)",
            closest,
        )


@dataclass(frozen=True)
class Taxonomy:
    axes: dict[str, Axis]
    venues: Venues
    root: Path

    def __getitem__(self, axis: str) -> Axis:
        return self.axes[axis]

    def resolve_labels(self, axis: str, text: str) -> tuple[list[str], list[str]]:
        """Map a cell such as "MHA & FFN" or "Magitude Analysis" to ids.

        Returns (ids, unknown parts). The whole label is tried first, so an alias that
        contains a separator ("Safety & Reliability") wins over splitting it.
        """
        text = text.strip()
        if text in {"", "-", "–", "—", "N/A", "n/a", "None"}:
            return [], []
        whole = self.axes[axis].resolve(text)
        if whole:
            return [whole], []
        ids: list[str] = []
        unknown: list[str] = []
        for part in filter(None, (p.strip() for p in _SPLIT.split(text))):
            node_id = self.axes[axis].resolve(part)
            if node_id is None:
                unknown.append(part)
            elif node_id not in ids:
                ids.append(node_id)
        return ids, unknown

    def goal_of(self, sub_goal: str) -> str | None:
        return self.axes["goals"].parent.get(sub_goal)


def _load_model(path: Path, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(load_text(read_text(path)))
    except FileNotFoundError:
        raise TaxonomyError(f"{path}: the taxonomy file is missing") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TaxonomyError(f"{path}: {where}: {first['msg']}") from None
    except ValueError as exc:
        raise TaxonomyError(f"{path}: {exc}") from None


def load_taxonomy(root: Path | None = None, *, reload: bool = False) -> Taxonomy:
    """Load `objects`, `locate`, `steer`, `goals` and `venues` from a taxonomy folder.

    Loads are cached by folder; `reload=True` reads the files again (a rebuild under
    `mkdocs serve` must see an edited taxonomy)."""
    root = Path(root) if root else taxonomy_dir()
    if reload:
        _load_cached.cache_clear()
    return _load_cached(root)


@cache
def _load_cached(root: Path) -> Taxonomy:
    axes = {}
    for name in AXES:
        file = _load_model(root / f"{name}.yaml", AxisFile)
        if file.axis != name:
            raise TaxonomyError(
                f"{root / f'{name}.yaml'}: axis is '{file.axis}', expected '{name}'"
            )
        axes[name] = Axis.build(file)
    venues = Venues.build(_load_model(root / "venues.yaml", VenueFile))
    return Taxonomy(axes, venues, root)
