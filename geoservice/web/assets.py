"""Front-end assets served by this server (government intranets have no internet).

npm installs the pinned packages of package.json into node_modules/; `/vendor/<package>/<file>`
serves them. folium keeps its CDN URLs in class attributes; `patch_folium` points every one
we use at our own URLs, once, at start-up.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import folium
import folium.plugins
from flask import Blueprint, Flask, abort, send_from_directory

from geoservice.config import PROJECT_ROOT

NODE_MODULES = PROJECT_ROOT / "node_modules"
FOLIUM_TEMPLATES = Path(folium.__file__).parent / "templates"

# The npm packages that may be served, and nothing else from node_modules.
SERVED_PACKAGES = (
    "leaflet",
    "jquery",
    "bootstrap",
    "@fortawesome/fontawesome-free",
    "leaflet.awesome-markers",
    "leaflet.markercluster",
    "leaflet.vectorgrid",
    "echarts",
)

V = "/vendor"
# folium resource name → our URL.
FOLIUM_JS = {
    "leaflet": f"{V}/leaflet/dist/leaflet.js",
    "jquery": f"{V}/jquery/dist/jquery.min.js",
    "bootstrap": f"{V}/bootstrap/dist/js/bootstrap.bundle.min.js",
    "awesome_markers": f"{V}/leaflet.awesome-markers/dist/leaflet.awesome-markers.min.js",
    "markerclusterjs": f"{V}/leaflet.markercluster/dist/leaflet.markercluster.js",
    "leaflet-heat.js": "/vendor-folium/leaflet_heat.min.js",
}
FOLIUM_CSS = {
    "leaflet_css": f"{V}/leaflet/dist/leaflet.css",
    "bootstrap_css": f"{V}/bootstrap/dist/css/bootstrap.min.css",
    "awesome_markers_font_css": f"{V}/@fortawesome/fontawesome-free/css/all.min.css",
    "awesome_markers_css": f"{V}/leaflet.awesome-markers/dist/leaflet.awesome-markers.css",
    "awesome_rotate_css": "/static/css/leaflet.awesome.rotate.css",
    "markerclustercss": f"{V}/leaflet.markercluster/dist/MarkerCluster.css",
    "markerclusterdefaultcss": f"{V}/leaflet.markercluster/dist/MarkerCluster.Default.css",
}
# Assets our own pages load (templates use these names through the `asset_url` global).
PAGE_ASSETS = {
    "echarts": f"{V}/echarts/dist/echarts.min.js",
    "vectorgrid": f"{V}/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js",
}
# Resources we drop: glyphicons (we use Font Awesome icons only).
FOLIUM_DROPPED = {"glyphicons_css"}

bp = Blueprint("assets", __name__)


# What /vendor serves: the files above, and the images and fonts their CSS names (files
# of the same folder and below, and Font Awesome's webfonts) — never a package's other files
# (sources, package.json, metadata) nor another package reached through `..`.
VENDOR_SUFFIXES = frozenset(
    {".js", ".css", ".png", ".svg", ".gif", ".woff", ".woff2", ".ttf", ".eot"}
)
VENDOR_EXTRA_DIRS = ("@fortawesome/fontawesome-free/webfonts",)


def _vendor_dirs() -> tuple[str, ...]:
    urls = [*FOLIUM_JS.values(), *FOLIUM_CSS.values(), *PAGE_ASSETS.values()]
    dirs = {u[len(V) + 1 :].rsplit("/", 1)[0] for u in urls if u.startswith(V + "/")}
    return tuple(sorted(dirs | set(VENDOR_EXTRA_DIRS)))


def vendor_file_allowed(filename: str) -> bool:
    parts = filename.split("/")
    if any(part in ("", ".", "..") or "\\" in part for part in parts):
        return False
    if PurePosixPath(filename).suffix.lower() not in VENDOR_SUFFIXES:
        return False
    return any(filename.startswith(d + "/") for d in _vendor_dirs())


@bp.get("/vendor/<path:filename>")
def vendor(filename: str):
    package = next(
        (p for p in SERVED_PACKAGES if filename == p or filename.startswith(p + "/")), None
    )
    if package is None or not vendor_file_allowed(filename):
        abort(404)
    return send_from_directory(NODE_MODULES, filename, max_age=86400)


@bp.get("/vendor-folium/<path:filename>")
def vendor_folium(filename: str):
    if f"/vendor-folium/{filename}" not in FOLIUM_JS.values():
        abort(404)
    return send_from_directory(FOLIUM_TEMPLATES, filename, max_age=86400)


def _relink(resources: list[tuple[str, str]], urls: dict[str, str]) -> list[tuple[str, str]]:
    out = []
    for name, url in resources:
        if name in FOLIUM_DROPPED:
            continue
        if name not in urls and url.startswith(("http://", "https://")):
            raise RuntimeError(f"folium resource {name!r} ({url}) has no local copy")
        out.append((name, urls.get(name, url)))
    return out


def folium_classes() -> list[type]:
    """The folium element classes whose resources we serve locally."""
    return [
        folium.Map,
        folium.plugins.MarkerCluster,
        folium.plugins.FastMarkerCluster,
        folium.plugins.HeatMap,
    ]


def patch_folium() -> None:
    for cls in folium_classes():
        for attr, urls in (("default_js", FOLIUM_JS), ("default_css", FOLIUM_CSS)):
            resources = cls.__dict__.get(attr)
            if resources:
                setattr(cls, attr, _relink(resources, urls))


def missing_assets() -> list[str]:
    """Local files behind the URLs above that are not installed (empty when all is well)."""
    missing = []
    for url in [*FOLIUM_JS.values(), *FOLIUM_CSS.values(), *PAGE_ASSETS.values()]:
        if url.startswith(V + "/"):
            path = NODE_MODULES / url[len(V) + 1 :]
        elif url.startswith("/vendor-folium/"):
            path = FOLIUM_TEMPLATES / url[len("/vendor-folium/") :]
        else:
            path = PROJECT_ROOT / url.lstrip("/")
        if not path.is_file():
            missing.append(url)
    return missing


def init_app(app: Flask) -> None:
    patch_folium()
    app.register_blueprint(bp)
    app.jinja_env.globals["asset_url"] = PAGE_ASSETS.__getitem__
