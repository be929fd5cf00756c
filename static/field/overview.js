/* 巡查督查 page: the places not visited today on a Leaflet map (data from the page's JSON
 * block; names shown as text). */
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('unvisited-data').textContent);
  const map = L.map('unvisited-map');
  const layer = L.geoJSON(data, {
    style: f => ({ color: f.properties.overdue ? '#b71c1c' : '#ef6c00', weight: 3, fillOpacity: 0.2 }),
    pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 7 }),
    onEachFeature: (f, l) => {
      const div = document.createElement('div');
      div.textContent = `${f.properties.name}：${f.properties.leaders.join('、')}（未巡查 ${f.properties.open_tasks} 次）`;
      l.bindPopup(div);
    },
  }).addTo(map);
  if (data.features.length) map.fitBounds(layer.getBounds(), { maxZoom: 16 });
  else map.setView([35, 105], 4);
  window.gsFieldOverview = { map, count: data.features.length };
})();
