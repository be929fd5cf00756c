/* Tooltips and popups of the small folium maps (geoservice/web/featuremap.py).
 *
 * folium draws the geometries only; what a tooltip or popup shows (place names, codes …)
 * comes as JSON data in <script type="application/json" id="gs-features-…"> and is put into
 * the page as text, never as HTML or script: user text stays out of the nonce'd scripts.
 */
(function () {
  'use strict';

  var cache = {};

  function data(id) {
    if (!Object.prototype.hasOwnProperty.call(cache, id)) {
      var el = document.getElementById(id);
      cache[id] = el ? JSON.parse(el.textContent) : null;
    }
    return cache[id];
  }

  function tooltip(d, values) {
    var table = document.createElement('table');
    table.className = 'gs-tooltip';
    d.fields.forEach(function (name, i) {
      if (values[i] === null || values[i] === undefined) { return; }
      var tr = document.createElement('tr');
      var th = document.createElement('th');
      var td = document.createElement('td');
      th.textContent = d.aliases[i] || name;
      td.textContent = values[i];
      tr.appendChild(th);
      tr.appendChild(td);
      table.appendChild(tr);
    });
    return table;
  }

  function popup(href, text) {
    var a = document.createElement('a');
    a.href = href;
    a.target = '_top';
    a.textContent = text;
    return a;
  }

  window.GeoFeatures = {
    // folium's onEachFeature for the layer whose labels are in the element `id`.
    bind: function (id) {
      return function (feature, layer) {
        var d = data(id);
        var values = d && d.values[feature.id];
        if (!values) { return; }
        if (d.fields.length) { layer.bindTooltip(tooltip(d, values), { sticky: true }); }
        var place = d.places ? d.places[feature.id] : null;
        if (d.href && d.link && place !== null && place !== undefined) {
          // The address is the server's template; the place id is a number.
          layer.bindPopup(popup(d.href.split('{place_id}').join(String(Number(place))), d.link));
        }
      };
    }
  };
})();
