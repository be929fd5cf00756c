"""Layer declarations and the registry that discovers them.

Each module of the layers package (`layers/` by default) declares one `LAYER = LayerSpec(...)`
next to its model. The registry imports them once at start-up and validates them, so a typo
fails at boot, not on the first request. The API, maps, imports, attribution and the tests
iterate the registry; none of them names a layer type.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from geoalchemy2 import Geometry
from sqlalchemy import String

from geoservice.models import Place

GEOJSON_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
POLYGONAL = {"Polygon", "MultiPolygon"}
ATTRIBUTE_TYPES = (str, int, float, bool)
_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")

# The layer whose features form the base tiling (面上有网); issues record their grid.
BASE_LAYER = "grid"
# A code in a local scheme, accepted beside the standard formats (admin areas and features).
LOCAL_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.\-]{0,14}")


@dataclass(frozen=True)
class AreaLink:
    """A layer column referencing admin_areas, exposed as `<prefix>_code` / `<prefix>_name`."""

    column: str
    prefix: str
    alias: str


class LayerSpecError(ValueError):
    """A layer declaration is inconsistent; raised at start-up."""


@dataclass(frozen=True)
class Attribute:
    """A property of a layer's features beyond code and name."""

    name: str
    title: str
    type: type = str
    required: bool = False
    choices: tuple[Any, ...] | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class Claim:
    """How a layer's features claim an issue location.

    `contains`: a polygon claims the points inside it (its boundary included).
    `within`: a feature claims points within `tolerance_m` metres; `tolerance_by` gives
    per-value tolerances keyed by an attribute (e.g. road grade).
    """

    mode: Literal["contains", "within"]
    tolerance_m: float = 0.0
    tolerance_by: tuple[str, Mapping[str, float]] | None = None

    def tolerance_for(self, attrs: Mapping[str, Any]) -> float:
        if self.tolerance_by is not None:
            key, table = self.tolerance_by
            return float(table.get(attrs.get(key), self.tolerance_m))
        return self.tolerance_m

    @property
    def max_tolerance_m(self) -> float:
        values = [self.tolerance_m]
        if self.tolerance_by is not None:
            values.extend(self.tolerance_by[1].values())
        return max(values)


@dataclass(frozen=True)
class LayerSpec:
    """Everything the service needs to know about one layer type."""

    name: str  # singular slug, also the places.layer value: "grid"
    collection: str  # plural slug for URLs: "grids"
    title: str  # Chinese title shown to users: "网格"
    model: type[Place]
    geometry_types: tuple[str, ...]  # GeoJSON types accepted on input
    claim: Claim
    precedence: int  # higher wins when several layers claim the same point
    attributes: tuple[Attribute, ...] = ()
    code_pattern: str | None = None  # regex a code must match in full
    code_hint: str = ""  # Chinese explanation of the code format
    roles: tuple[str, ...] = ()  # typical 包保 roles for this layer, first is the default
    style: Mapping[str, Any] = field(default_factory=dict)  # Leaflet path options
    style_by: tuple[str, Mapping[Any, Mapping[str, Any]]] | None = None
    # Text drawn on the map at high zoom: "code", "name" or an attribute (None: no labels).
    label: str | None = None
    label_min_zoom: int = 16
    description: str = ""

    @property
    def table(self) -> str:
        return self.model.__tablename__

    @property
    def geometry_column(self) -> Geometry:
        return self.model.__table__.c.geom.type

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    def code_is_valid(self, code: str) -> bool:
        return self.code_pattern is None or re.fullmatch(self.code_pattern, code) is not None

    def area_links(self) -> tuple[AreaLink, ...]:
        """Columns of the layer table that reference admin_areas (e.g. a grid's community)."""
        links = []
        for column in self.model.__table__.c:
            targets = {fk.target_fullname for fk in column.foreign_keys}
            if "admin_areas.id" in targets and column.name.endswith("_id"):
                prefix = column.name[: -len("_id")]
                links.append(AreaLink(column.name, prefix, f"area_{prefix}"))
        return tuple(links)

    def column_max_length(self, name: str) -> int | None:
        """The length limit of a text column of the layer table (None: unlimited or not text)."""
        column = self.model.__table__.c.get(name)
        if column is not None and isinstance(column.type, String):
            return column.type.length
        return None


class LayerRegistry:
    """The registered layers, ordered by precedence (highest first)."""

    def __init__(self, specs: list[LayerSpec]) -> None:
        for spec in specs:
            validate_spec(spec)
        for attr in ("name", "collection", "precedence"):
            values = [getattr(s, attr) for s in specs]
            dupes = sorted({v for v in values if values.count(v) > 1}, key=str)
            if dupes:
                raise LayerSpecError(f"two layers share the same {attr}: {dupes}")
        self._specs = sorted(specs, key=lambda s: -s.precedence)
        self._by_name = {s.name: s for s in specs}
        self._by_collection = {s.collection: s for s in specs}

    @classmethod
    def discover(cls, package: str = "layers") -> LayerRegistry:
        """Imports every module of `package` and collects its `LAYER`."""
        pkg = importlib.import_module(package)
        specs = []
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package}.{info.name}")
            spec = getattr(module, "LAYER", None)
            if not isinstance(spec, LayerSpec):
                raise LayerSpecError(f"{package}.{info.name} declares no LAYER = LayerSpec(...)")
            specs.append(spec)
        if not specs:
            raise LayerSpecError(f"no layers declared in package {package!r}")
        return cls(specs)

    def __iter__(self) -> Iterator[LayerSpec]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> LayerSpec:
        """By singular name ("grid"); KeyError if unknown."""
        return self._by_name[name]

    def by_collection(self, collection: str) -> LayerSpec | None:
        return self._by_collection.get(collection)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._specs]


def _has_gist_index_on_geom(table: Any) -> bool:
    return any(
        index.dialect_options["postgresql"].get("using") == "gist"
        and [c.name for c in index.columns] == ["geom"]
        for index in table.indexes
    )


def validate_spec(spec: LayerSpec) -> None:
    where = f"layer {spec.name!r}"
    if not _SLUG.match(spec.name) or not _SLUG.match(spec.collection):
        raise LayerSpecError(f"{where}: name and collection must be lower-case slugs")
    if not isinstance(spec.model, type) or not issubclass(spec.model, Place):
        raise LayerSpecError(f"{where}: model must be a subclass of geoservice.models.Place")
    identity = spec.model.__mapper_args__.get("polymorphic_identity")
    if identity != spec.name:
        raise LayerSpecError(f"{where}: model polymorphic_identity is {identity!r}")
    columns = spec.model.__table__.c
    if "geom" not in columns or not isinstance(columns.geom.type, Geometry):
        raise LayerSpecError(f"{where}: model needs a `geom` Geometry column")
    geom_type = columns.geom.type
    if geom_type.srid != 4326:
        raise LayerSpecError(f"{where}: geometry SRID must be 4326, not {geom_type.srid}")
    if not _has_gist_index_on_geom(spec.model.__table__):
        raise LayerSpecError(f"{where}: geometry column needs a GiST index (spatial_index=True)")
    unknown = [t for t in spec.geometry_types if t not in GEOJSON_TYPES]
    if not spec.geometry_types or unknown:
        raise LayerSpecError(f"{where}: bad geometry_types {spec.geometry_types}")
    if spec.claim.mode == "contains" and not set(spec.geometry_types) <= POLYGONAL:
        raise LayerSpecError(f"{where}: only polygon layers can claim by containment")
    if spec.claim.mode == "within" and spec.claim.max_tolerance_m <= 0:
        raise LayerSpecError(f"{where}: a `within` claim needs a positive tolerance")
    for attr in spec.attributes:
        if attr.name not in columns:
            raise LayerSpecError(f"{where}: attribute {attr.name!r} has no column on the model")
        if attr.type not in ATTRIBUTE_TYPES:
            raise LayerSpecError(f"{where}: attribute {attr.name!r} has unsupported type")
        if attr.choices is not None and not attr.choices:
            raise LayerSpecError(f"{where}: attribute {attr.name!r} has an empty choice list")
    if spec.claim.tolerance_by is not None:
        key, _ = spec.claim.tolerance_by
        if spec.attribute(key) is None:
            raise LayerSpecError(f"{where}: claim tolerance_by names unknown attribute {key!r}")
    if spec.style_by is not None and spec.attribute(spec.style_by[0]) is None:
        raise LayerSpecError(f"{where}: style_by names unknown attribute {spec.style_by[0]!r}")
    if spec.label not in (None, "code", "name") and spec.attribute(spec.label) is None:
        raise LayerSpecError(f"{where}: label names unknown attribute {spec.label!r}")
    if spec.code_pattern is not None:
        try:
            re.compile(spec.code_pattern)
        except re.error as exc:
            raise LayerSpecError(f"{where}: bad code_pattern: {exc}") from exc


def init_app(app: Any) -> LayerRegistry:
    registry = LayerRegistry.discover(app.config["LAYERS_PACKAGE"])
    app.extensions["geoservice.layers"] = registry
    return registry


def layers(app: Any = None) -> LayerRegistry:
    from flask import current_app

    return (app or current_app).extensions["geoservice.layers"]
