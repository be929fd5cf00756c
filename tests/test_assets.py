import folium

from geoservice.web.assets import missing_assets


def test_every_local_asset_is_installed(app):
    assert missing_assets() == []


def test_folium_pages_reference_no_cdn(app):
    html = folium.Map(location=[33.78, 120.26], zoom_start=13, tiles=None).get_root().render()
    assert "https://" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "/vendor/leaflet/dist/leaflet.js" in html


def test_vendor_route_serves_only_declared_packages(client):
    assert client.get("/vendor/leaflet/dist/leaflet.js").status_code == 200
    assert client.get("/vendor/leaflet/dist/leaflet.css").status_code == 200
    assert client.get("/vendor/pbf/package.json").status_code == 404
    assert client.get("/vendor/leaflet/../../package.json").status_code == 404


def test_vendor_route_serves_only_the_allow_listed_asset_files(client):
    """`/vendor/<package>/../<other>` and a package's other files (sources, package.json,
    metadata) are not served; the assets our pages load and the images/fonts their CSS
    names are."""
    for path in (
        "/vendor/leaflet/../pbf/package.json",
        "/vendor/leaflet/../.package-lock.json",
        "/vendor/leaflet/dist/../package.json",
        "/vendor/leaflet/package.json",
        "/vendor/@fortawesome/fontawesome-free/metadata/icons.yml",
        "/vendor/echarts/package.json",
    ):
        assert client.get(path).status_code == 404, path
    for path in (
        "/vendor/leaflet/dist/leaflet.js",
        "/vendor/leaflet/dist/images/marker-icon.png",
        "/vendor/@fortawesome/fontawesome-free/css/all.min.css",
        "/vendor/@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2",
        "/vendor/echarts/dist/echarts.min.js",
    ):
        assert client.get(path).status_code == 200, path
