/* The public 随手拍 page (templates/public/report.html): place the spot, see nearby reports of
   the same kind ("me too"), solve the proof-of-work, send. */
(function () {
  'use strict';
  const cfg = JSON.parse(document.getElementById('pub-settings').textContent);
  const $ = id => document.getElementById(id);
  const form = $('pub-form'), msg = $('pub-message'), submit = $('pub-submit');
  const csrf = document.querySelector('meta[name=csrf-token]').content;
  const gcj = cfg.basemap.shift === 'gcj02' && L.CRS.GCJ02;
  const map = L.map('pub-map', {maxZoom: 20, crs: gcj ? L.CRS.GCJ02 : L.CRS.EPSG3857,
                                attributionControl: cfg.basemap.choices.length > 0});
  if (cfg.basemap.choices.length) {
    const c = cfg.basemap.choices[0];
    L.layerGroup(c.sources.map(src => L.tileLayer(src.url, {subdomains: src.subdomains || 'abc',
      maxZoom: 20, maxNativeZoom: src.maxZoom, attribution: src.attribution}))).addTo(map);
  }
  if (cfg.area) {
    const outline = L.geoJSON(cfg.area, {style: {color: '#b71c1c', weight: 2, fill: false}, interactive: false}).addTo(map);
    map.fitBounds(outline.getBounds());
  } else {
    map.setView([35, 105], 4);
  }
  let marker = null;

  function show(text, bad) {
    msg.textContent = text;
    msg.className = 'notice ' + (bad ? 'error' : 'ok');
    msg.hidden = false;
  }

  function place(lat, lon, how) {
    $('pub-lon').value = lon.toFixed(7);
    $('pub-lat').value = lat.toFixed(7);
    if (marker) marker.setLatLng([lat, lon]);
    else marker = L.circleMarker([lat, lon], {radius: 9, color: '#fff', weight: 2, fillColor: '#c62828', fillOpacity: 1}).addTo(map);
    $('pub-where').textContent = how;
    checkNearby();
  }
  map.on('click', e => place(e.latlng.lat, e.latlng.lng, '已在地图上选定位置'));
  if (cfg.site) {
    place(cfg.site.lat, cfg.site.lon, '扫码位置：' + cfg.site.title + '「' + cfg.site.name + '」（可在地图上调整）');
    map.setView([cfg.site.lat, cfg.site.lon], 17);
  }
  $('pub-gps').addEventListener('click', () => {
    if (!navigator.geolocation) { show('此浏览器不支持定位，请在地图上点选位置', true); return; }
    $('pub-where').textContent = '正在定位…';
    navigator.geolocation.getCurrentPosition(pos => {
      place(pos.coords.latitude, pos.coords.longitude, 'GPS 定位（精度约 ' + Math.round(pos.coords.accuracy) + ' 米）');
      map.setView([pos.coords.latitude, pos.coords.longitude], 17);
    }, () => { $('pub-where').textContent = '定位失败，请在地图上点选位置'; },
    {enableHighAccuracy: true, timeout: 15000, maximumAge: 0});
  });

  async function solved() {
    const r = await fetch(cfg.urls.challenge, {headers: {Accept: 'application/json'}, credentials: 'same-origin'});
    if (!r.ok) throw new Error('challenge');
    const c = await r.json();
    return {challenge: c.challenge, solution: await window.gsPow.solve(c.challenge, c.difficulty)};
  }

  // --- nearby reports of the same kind, and "me too" ---------------------------------------
  let asked = 0;
  async function checkNearby() {
    const lon = $('pub-lon').value, lat = $('pub-lat').value, category = form.category.value;
    const box = $('pub-dupes');
    if (!lon || !category) { box.hidden = true; return; }
    const mine = ++asked;
    try {
      const q = new URLSearchParams({lon, lat, category});
      const r = await fetch(cfg.urls.nearby + '?' + q, {headers: {Accept: 'application/json'}, credentials: 'same-origin'});
      const body = await r.json();
      if (mine !== asked) return;
      if (!r.ok) {
        box.hidden = true;
        if (['geometry', 'lon', 'lat'].includes(body.field)) show(body.error, true);
        return;
      }
      msg.hidden = true;
      if (!body.count) { box.hidden = true; return; }
      $('pub-dupes-text').textContent = body.message;
      const list = $('pub-dupes-list');
      list.innerHTML = '';
      body.issues.forEach(i => {
        const li = document.createElement('li');
        const text = document.createElement('span');
        text.textContent = (i.distance_m === null ? '在附近' : '距此 ' + i.distance_m + ' 米') +
          ' · ' + i.reported_on + ' · ' + i.status_label +
          (i.metoo ? ' · ' + i.metoo + ' 人附议' : '');
        const b = document.createElement('button');
        b.type = 'button'; b.className = 'btn small'; b.textContent = '我也遇到';
        b.addEventListener('click', () => meToo(i.id, b));
        li.append(text, b);
        list.append(li);
      });
      box.hidden = false;
    } catch (e) { box.hidden = true; }
  }
  form.category.addEventListener('change', checkNearby);

  async function meToo(id, button) {
    button.disabled = true; button.textContent = '正在提交…';
    try {
      const proof = await solved();
      const r = await fetch(cfg.urls.metoo.replace('{id}', id), {
        method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': csrf},
        body: JSON.stringify(Object.assign({lon: $('pub-lon').value, lat: $('pub-lat').value}, proof)),
      });
      const body = await r.json();
      if (!r.ok) { show(body.error, true); button.disabled = false; button.textContent = '我也遇到'; return; }
      button.textContent = '已附议（' + body.metoo + ' 人）';
      show('已记录您的反映，感谢参与。无需再提交新的问题。', false);
    } catch (e) {
      show('网络错误，请稍后重试', true); button.disabled = false; button.textContent = '我也遇到';
    }
  }

  // --- photos --------------------------------------------------------------------------------
  const input = $('pub-photos');
  input.addEventListener('change', () => {
    const box = $('pub-previews');
    box.innerHTML = '';
    for (const file of input.files) {
      const fig = document.createElement('figure');
      if (/^image\/(jpeg|png)$/.test(file.type)) {
        const img = document.createElement('img');
        img.src = URL.createObjectURL(file);
        fig.appendChild(img);
      }
      const cap = document.createElement('figcaption');
      cap.textContent = (file.size / 1048576).toFixed(1) + ' MB';
      fig.appendChild(cap);
      box.appendChild(fig);
    }
    if (input.files.length > cfg.maxPhotos) show('最多 ' + cfg.maxPhotos + ' 张照片', true);
    else if ([...input.files].some(f => f.size > cfg.maxPhotoBytes)) show('单张照片不能超过 ' + Math.floor(cfg.maxPhotoBytes / 1048576) + ' MB', true);
    else msg.hidden = true;
  });

  // --- sending -------------------------------------------------------------------------------
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    if (!$('pub-lon').value) { show('请先定位或在地图上点选问题位置', true); return; }
    if (!form.category.value) { show('请选择问题类别', true); return; }
    if (input.files.length < cfg.minPhotos) { show('请至少拍摄或选择 ' + cfg.minPhotos + ' 张现场照片', true); return; }
    if (input.files.length > cfg.maxPhotos) { show('最多 ' + cfg.maxPhotos + ' 张照片', true); return; }
    if ([...input.files].some(f => f.size > cfg.maxPhotoBytes)) { show('单张照片不能超过 ' + Math.floor(cfg.maxPhotoBytes / 1048576) + ' MB', true); return; }
    submit.disabled = true; submit.textContent = '正在进行安全校验…';
    try {
      const proof = await solved();
      const data = new FormData(form);
      data.append('challenge', proof.challenge);
      data.append('solution', proof.solution);
      submit.textContent = '正在提交…';
      const r = await fetch(cfg.urls.reports, {method: 'POST', body: data, credentials: 'same-origin',
        headers: {Accept: 'application/json', 'X-CSRFToken': csrf}});
      const body = await r.json();
      if (!r.ok) { show(body.error, true); return; }
      $('pub-ticket').textContent = body.ticket;
      const link = $('pub-link');
      link.href = body.link;
      link.textContent = new URL(body.link, location.href).href;
      form.hidden = true;
      $('pub-result').hidden = false;
      window.scrollTo(0, 0);
    } catch (e) {
      show('网络错误，未能提交，请稍后重试', true);
    } finally {
      submit.disabled = false; submit.textContent = '提交';
    }
  });
  window.gsPublic = {map, place};
})();
