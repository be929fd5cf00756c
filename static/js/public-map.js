/* The public map and list of issues (templates/public/issues.html): one cached JSON. */
(function () {
  'use strict';
  const cfg = JSON.parse(document.getElementById('pub-settings').textContent);
  const COLORS = {accepted: '#6a1b9a', dispatched: '#ef6c00', in_progress: '#f9a825', fixed: '#2e7d32', closed: '#455a64'};
  const gcj = cfg.basemap.shift === 'gcj02' && L.CRS.GCJ02;
  const map = L.map('pub-issue-map', {maxZoom: 19, crs: gcj ? L.CRS.GCJ02 : L.CRS.EPSG3857,
                                      attributionControl: cfg.basemap.choices.length > 0});
  if (cfg.basemap.choices.length) {
    const c = cfg.basemap.choices[0];
    L.layerGroup(c.sources.map(src => L.tileLayer(src.url, {subdomains: src.subdomains || 'abc',
      maxZoom: 19, maxNativeZoom: src.maxZoom, attribution: src.attribution}))).addTo(map);
  }
  if (cfg.area) map.fitBounds(L.geoJSON(cfg.area).getBounds());
  else map.setView([35, 105], 4);
  if (cfg.area) L.geoJSON(cfg.area, {style: {color: '#b71c1c', weight: 2, fill: false}, interactive: false}).addTo(map);
  const dots = L.layerGroup().addTo(map);
  const list = document.getElementById('pub-issue-list');
  const filter = document.getElementById('pub-filter');
  let status = '';

  function line(p) {
    return p.category + ' · ' + p.status_label + ' · ' + p.reported_on + (p.unit ? ' · ' + p.unit : '') +
      (p.metoo ? ' · ' + p.metoo + ' 人附议' : '') + (p.approximate ? ' · 大致位置' : '');
  }
  async function load() {
    const r = await fetch(cfg.issues + (status ? '?status=' + status : ''), {headers: {Accept: 'application/json'}});
    const body = await r.json();
    dots.clearLayers();
    list.innerHTML = '';
    body.features.forEach(f => {
      const [lon, lat] = f.geometry.coordinates, p = f.properties;
      const dot = L.circleMarker([lat, lon], {radius: 6, color: '#fff', weight: 1, fillOpacity: 0.9,
                                              fillColor: COLORS[p.status] || '#333'});
      dot.bindTooltip(document.createTextNode(line(p)));  // text, never HTML
      dots.addLayer(dot);
      const li = document.createElement('li');
      li.textContent = line(p);
      list.append(li);
    });
    filter.innerHTML = '';
    [['', '全部']].concat(Object.entries(body.labels)).forEach(([s, label]) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'chip' + (s === status ? ' on' : '');
      const n = s ? body.counts[s] : Object.values(body.counts).reduce((a, x) => a + x, 0);
      b.textContent = label + ' ' + n;
      b.addEventListener('click', () => { status = s; load(); });
      filter.append(b);
    });
    window.gsPublicMap = {map, count: body.features.length};
  }
  load();
})();
