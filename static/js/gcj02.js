/* WGS-84 ⇄ GCJ-02 (the offset of 高德/腾讯 basemaps) in the browser, and a Leaflet CRS that
 * applies it, so that our WGS-84 data lines up on a GCJ-02 basemap.
 *
 * The same published algorithm as geoservice/coords.py (tests/test_map_gcj02.py runs this file
 * in node and compares it with the Python module and with reference pairs, within 1 m).
 *
 * L.CRS.GCJ02 projects a WGS-84 latlng by shifting it to GCJ-02 first and then applying Web
 * Mercator; unprojecting inverts both. Every latlng in the page (markers, popups, bounds,
 * clicks) therefore stays WGS-84, while pixels — and tile x/y/z — live in the GCJ-02 plane
 * of the basemap. Vector tiles for that plane are requested with `shift=gcj02`.
 */
(function (root) {
  'use strict';

  var A = 6378245.0;
  var EE = 0.00669342162296594323;
  var PI = Math.PI;

  function outOfChina(lon, lat) {
    return !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
  }

  function transformLat(x, y) {
    var ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    ret += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    ret += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    ret += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    return ret;
  }

  function transformLon(x, y) {
    var ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    ret += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    ret += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    ret += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    return ret;
  }

  /* WGS-84 [lon, lat] → GCJ-02 [lon, lat]. */
  function wgs84ToGcj02(lon, lat) {
    if (outOfChina(lon, lat)) { return [lon, lat]; }
    var dLat = transformLat(lon - 105.0, lat - 35.0);
    var dLon = transformLon(lon - 105.0, lat - 35.0);
    var radLat = lat / 180.0 * PI;
    var magic = 1 - EE * Math.sin(radLat) * Math.sin(radLat);
    var sqrtMagic = Math.sqrt(magic);
    dLat = (dLat * 180.0) / ((A * (1 - EE)) / (magic * sqrtMagic) * PI);
    dLon = (dLon * 180.0) / (A / sqrtMagic * Math.cos(radLat) * PI);
    return [lon + dLon, lat + dLat];
  }

  /* GCJ-02 [lon, lat] → WGS-84 [lon, lat], by fixed-point iteration to ~0.1 mm. */
  function gcj02ToWgs84(lon, lat) {
    if (outOfChina(lon, lat)) { return [lon, lat]; }
    var wLon = lon, wLat = lat;
    for (var i = 0; i < 30; i++) {
      var g = wgs84ToGcj02(wLon, wLat);
      var dLon = g[0] - lon, dLat = g[1] - lat;
      if (Math.abs(dLon) < 1e-9 && Math.abs(dLat) < 1e-9) { break; }
      wLon -= dLon;
      wLat -= dLat;
    }
    return [wLon, wLat];
  }

  var api = { outOfChina: outOfChina, wgs84ToGcj02: wgs84ToGcj02, gcj02ToWgs84: gcj02ToWgs84 };

  if (typeof module !== 'undefined' && module.exports) { module.exports = api; }
  root.GCJ02 = api;

  var L = root.L;
  if (L && L.CRS && L.Projection) {
    var mercator = L.Projection.SphericalMercator;
    var projection = {
      R: mercator.R,
      MAX_LATITUDE: mercator.MAX_LATITUDE,
      bounds: mercator.bounds,
      project: function (latlng) {
        var g = wgs84ToGcj02(latlng.lng, latlng.lat);
        return mercator.project(L.latLng(g[1], g[0]));
      },
      unproject: function (point) {
        var g = mercator.unproject(point);
        var w = gcj02ToWgs84(g.lng, g.lat);
        return L.latLng(w[1], w[0]);
      }
    };
    L.CRS.GCJ02 = L.extend({}, L.CRS.EPSG3857, { code: 'GCJ02', projection: projection });
  }
})(typeof window !== 'undefined' ? window : globalThis);
