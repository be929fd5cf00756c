"""Basemaps (config `BASEMAP`): none, 天地图, 高德, OpenStreetMap or a custom XYZ/WMTS URL.

No basemap is the default: government intranets have no internet, and the maps draw on a
plain background. A basemap is a list of choices (vector, imagery…), each one or more XYZ
tile layers drawn together (imagery + labels). `crs` says in which datum the tiles are drawn:
"wgs84" (天地图 uses CGCS2000, which is WGS-84 to within centimetres; OpenStreetMap) or
"gcj02" (高德, and custom servers that say so with `BASEMAP_CRS=gcj02`): our WGS-84 data is
then shifted to GCJ-02 for display (static/js/gcj02.js and the tiles' `shift=gcj02`).

Plain values, no Flask: `basemap_from_config(config)` is validated at start-up, so a typo in
`BASEMAP` or a missing `TIANDITU_KEY` fails at boot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

KINDS = ("none", "tianditu", "amap", "osm", "custom")
CRS_NAMES = ("wgs84", "gcj02")

_TIANDITU = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)
_AMAP = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
_AMAP_IMAGE = "https://webst0{s}.is.autonavi.com/appmaptile?style=6&x={x}&y={y}&z={z}"
_AMAP_LABELS = "https://webst0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}"
_OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


class BasemapError(ValueError):
    """The basemap settings are inconsistent; raised at start-up."""


@dataclass(frozen=True)
class TileSource:
    url: str  # Leaflet URL template ({z}/{x}/{y}, optional {s})
    subdomains: str = ""
    max_zoom: int = 18
    attribution: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "subdomains": self.subdomains,
            "maxZoom": self.max_zoom,
            "attribution": self.attribution,
        }


@dataclass(frozen=True)
class Choice:
    """One entry of the basemap switcher: tile layers drawn together."""

    id: str
    title: str
    sources: tuple[TileSource, ...]


@dataclass(frozen=True)
class Basemap:
    kind: str
    crs: str = "wgs84"
    choices: tuple[Choice, ...] = field(default_factory=tuple)

    @property
    def shift(self) -> str | None:
        """How our WGS-84 data must be shifted to line up with the tiles (None: not at all)."""
        return "gcj02" if self.crs == "gcj02" else None

    def origins(self) -> list[str]:
        """Origins the browser loads tile images from (for the CSP's img-src)."""
        out: list[str] = []
        for choice in self.choices:
            for source in choice.sources:
                origin = _origin(source.url)
                if origin and origin not in out:
                    out.append(origin)
        return out


def _origin(url: str) -> str | None:
    """`https://t{s}.host/…` → `https://*.host`; relative URLs (same origin) → None."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    labels = parts.netloc.split(".")
    with_s = [i for i, label in enumerate(labels) if "{s}" in label]
    host = "*." + ".".join(labels[with_s[-1] + 1 :]) if with_s else parts.netloc
    return f"{parts.scheme}://{host}"


def _tianditu(key: str) -> tuple[Choice, ...]:
    def source(layer: str) -> TileSource:
        return TileSource(
            _TIANDITU.format(layer=layer, key=quote(key, safe=""), s="{s}"),
            subdomains="01234567",
            max_zoom=18,
            attribution="天地图",
        )

    return (
        Choice("tianditu_vec", "天地图矢量", (source("vec"), source("cva"))),
        Choice("tianditu_img", "天地图影像", (source("img"), source("cia"))),
    )


def _amap() -> tuple[Choice, ...]:
    attribution = "高德地图"
    return (
        Choice("amap_vec", "高德矢量", (TileSource(_AMAP, "1234", 18, attribution),)),
        Choice(
            "amap_img",
            "高德影像",
            (
                TileSource(_AMAP_IMAGE, "1234", 18, attribution),
                TileSource(_AMAP_LABELS, "1234", 18, attribution),
            ),
        ),
    )


def basemap_from_config(config: Mapping[str, Any]) -> Basemap:
    kind = (config.get("BASEMAP") or "none").strip().lower()
    if kind not in KINDS:
        raise BasemapError(f"BASEMAP={kind!r}: use one of {', '.join(KINDS)}")
    if kind == "none":
        return Basemap("none")
    if kind == "tianditu":
        key = config.get("TIANDITU_KEY")
        if not key:
            raise BasemapError("BASEMAP=tianditu needs TIANDITU_KEY (a 天地图 browser key)")
        return Basemap("tianditu", "wgs84", _tianditu(key))
    if kind == "amap":
        return Basemap("amap", "gcj02", _amap())
    if kind == "osm":
        osm = TileSource(_OSM, "", 19, "© OpenStreetMap contributors")
        return Basemap("osm", "wgs84", (Choice("osm", "OpenStreetMap", (osm,)),))
    url = config.get("BASEMAP_URL")
    if not url or not all(part in url for part in ("{z}", "{x}", "{y}")):
        raise BasemapError(
            "BASEMAP=custom needs BASEMAP_URL with {z}, {x} and {y} "
            "(a WMTS KVP URL works with TILEMATRIX={z}&TILEROW={y}&TILECOL={x})"
        )
    crs = (config.get("BASEMAP_CRS") or "wgs84").strip().lower()
    if crs not in CRS_NAMES:
        raise BasemapError(f"BASEMAP_CRS={crs!r}: use wgs84 or gcj02")
    source = TileSource(
        url,
        subdomains=config.get("BASEMAP_SUBDOMAINS") or "",
        max_zoom=int(config.get("BASEMAP_MAX_ZOOM") or 18),
        attribution=config.get("BASEMAP_ATTRIBUTION") or "",
    )
    return Basemap(
        "custom", crs, (Choice("custom", config.get("BASEMAP_TITLE") or "底图", (source,)),)
    )
