/* 创文巡查 field app. Reads today's tasks from /api/fieldwork/tasks/mine (cached for offline use
 * in IndexedDB and by the service worker), records visits into an IndexedDB outbox — photos as
 * Blobs — and sends each record with its own idempotency key when the network is there,
 * retrying with back-off. The server answers a repeated key with the first visit, so a record
 * sent twice (a lost answer) is stored once. Test hooks: window.gsField. */
(function () {
  'use strict';
  const cfg = JSON.parse(document.getElementById('field-config').textContent);
  const $ = id => document.getElementById(id);
  const state = { tasks: [], current: null, photos: [], checkin: null, syncing: false,
                  sent: 0, errors: [], ready: false, map: null, layer: null };
  const DB_NAME = 'gs-field';

  // --- IndexedDB ------------------------------------------------------------------------------
  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        db.createObjectStore('outbox', { keyPath: 'key' });
        db.createObjectStore('cache', { keyPath: 'name' });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  const dbp = openDb();
  async function tx(store, mode, fn) {
    const db = await dbp;
    return new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      const result = fn(t.objectStore(store));
      t.oncomplete = () => resolve(result && 'result' in result ? result.result : result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  }
  // A phone may be shared: each record carries the account that made it, and is shown and sent
  // only while that account is signed in (sent under another, it would be theirs).
  const everyRecord = () => tx('outbox', 'readonly', s => s.getAll());
  const mine = r => r.account === undefined || r.account === cfg.account;
  const outboxAll = async () => (await everyRecord()).filter(mine);
  const outboxPut = rec => tx('outbox', 'readwrite', s => s.put(rec));
  const outboxDelete = key => tx('outbox', 'readwrite', s => s.delete(key));
  const cachePut = (name, value) => tx('cache', 'readwrite', s => s.put({ name, value }));
  const cacheGet = name => tx('cache', 'readonly', s => s.get(name));

  // --- helpers --------------------------------------------------------------------------------
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
  }
  function localDate(d) {
    const z = n => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())}`;
  }
  function isoWithOffset(d) {
    const z = n => String(Math.floor(Math.abs(n))).padStart(2, '0');
    const off = -d.getTimezoneOffset();
    const sign = off >= 0 ? '+' : '-';
    return `${localDate(d)}T${z(d.getHours())}:${z(d.getMinutes())}:${z(d.getSeconds())}` +
      `${sign}${z(off / 60)}:${z(off % 60)}`;
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === 'class') node.className = v; else if (k.startsWith('data-')) node.setAttribute(k, v);
      else node[k] = v;
    });
    children.flat().forEach(c => node.append(c instanceof Node ? c : document.createTextNode(c ?? '')));
    return node;
  }
  // Times as the county reads them (the service's TIMEZONE), whatever offset the API wrote
  // (it answers in UTC) and whatever the phone's own zone.
  const clock = new Intl.DateTimeFormat('zh-CN', {
    timeZone: cfg.timezone || 'Asia/Shanghai', hourCycle: 'h23', year: 'numeric',
    month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
  function localParts(iso) {
    const d = iso ? new Date(iso) : null;
    if (!d || isNaN(d)) return null;
    return Object.fromEntries(clock.formatToParts(d).map(p => [p.type, p.value]));
  }
  const hhmm = iso => { const p = localParts(iso); return p ? `${p.hour}:${p.minute}` : ''; };
  const dayTime = iso => {
    const p = localParts(iso);
    return p ? `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}` : '';
  };
  function csrf() { return document.querySelector('meta[name="csrf-token"]').content; }
  async function refreshCsrf() {
    const page = await fetch('/field/', { cache: 'no-store', credentials: 'same-origin' });
    const m = /name="csrf-token" content="([^"]+)"/.exec(await page.text());
    if (m) document.querySelector('meta[name="csrf-token"]').content = m[1];
  }

  // --- tasks ----------------------------------------------------------------------------------
  async function loadTasks() {
    // Today is the service's day (its time zone, TIMEZONE), not the phone's: a phone set to
    // another zone, or the hours after midnight in Beijing that are still yesterday in UTC,
    // would otherwise ask for another day's tasks.
    let body = null;
    try {
      const r = await fetch('/api/fieldwork/tasks/mine', { credentials: 'same-origin' });
      if (r.ok) {
        body = await r.json();
        // The service worker may answer offline with another account's cached list (a shared
        // phone): only this account's tasks are shown or kept.
        if (body.account !== cfg.account) body = null;
        else await cachePut(`tasks:${cfg.account}`, body);
      }
      else if (r.status === 401) { location.href = '/login?next=/field/'; return; }
      else { const e = await r.json().catch(() => ({})); $('tasks-note').textContent = e.error || '读取任务失败'; }
    } catch (err) { /* offline: below */ }
    if (!body) {
      const cached = await cacheGet(`tasks:${cfg.account}`);
      if (cached) { body = cached.value; $('tasks-note').textContent = '离线：显示上次读取的任务'; }
    }
    if (body) {
      state.tasks = body.tasks;
      if (!$('tasks-note').textContent.startsWith('离线')) {
        $('tasks-note').textContent = body.tasks.length ? `${body.date} 共 ${body.tasks.length} 项任务` : '今天没有巡查任务';
      }
    } else if (!navigator.onLine) {
      $('tasks-note').textContent = '离线且没有已缓存的任务';
    }
    await render();
  }

  async function render() {
    const queued = await outboxAll();
    // A record the server refused is no longer waiting: its task may be visited again.
    const waiting = queued.filter(r => !r.error);
    const queuedTasks = new Set(waiting.filter(r => r.kind === 'visit').map(r => r.fields.task_id));
    const refusedTasks = new Set(queued.filter(r => r.error && r.kind === 'visit').map(r => r.fields.task_id));
    const list = $('task-list');
    list.replaceChildren();
    state.tasks.forEach(t => {
      let tag = el('span', { class: 'tag' }, '待巡查');
      if (t.done) tag = el('span', { class: 'tag done' }, `已巡查 ${hhmm(t.visited_at)}`);
      else if (queuedTasks.has(String(t.id))) tag = el('span', { class: 'tag queued' }, '已记录，待上传');
      else if (refusedTasks.has(String(t.id))) tag = el('span', { class: 'tag failed' }, '上传被拒绝，见“我的巡查”');
      else if (t.overdue) tag = el('span', { class: 'tag overdue' }, '逾期');
      const button = el('button', { type: 'button', 'data-task': String(t.id) }, '打卡');
      button.disabled = t.done || queuedTasks.has(String(t.id));
      button.addEventListener('click', () => openVisit(t));
      const slot = t.times > 1 ? `（第 ${t.slot}/${t.times} 次）` : '';
      list.append(el('li', { 'data-task-id': String(t.id) },
        el('div', { class: 'row' }, el('span', { class: 'title' }, t.place.name || t.place.code), tag),
        el('div', { class: 'meta' }, `${t.place.layer_title} · ${t.schedule}${slot}`),
        el('div', { class: 'row' }, el('span', { class: 'meta' }, t.place.street || ''), button)));
    });
    const outbox = $('outbox-list');
    outbox.replaceChildren();
    queued.forEach(r => {
      const status = r.error ? el('span', { class: 'tag failed' }, r.error) : el('span', { class: 'tag queued' }, '待上传');
      const li = el('li', {}, el('div', { class: 'row' }, el('span', { class: 'title' }, r.title), status),
        el('div', { class: 'meta' }, `${dayTime(r.fields.visited_at || r.fields.recorded_at)} · 照片 ${r.photos.length} 张` +
          (r.attempts ? ` · 已尝试 ${r.attempts} 次` : '')));
      if (r.error) {
        const drop = el('button', { type: 'button', class: 'light' }, '删除此条');
        drop.addEventListener('click', async () => { if (confirm('删除后无法恢复，确定？')) { await outboxDelete(r.key); render(); } });
        li.append(drop);
      }
      outbox.append(li);
    });
    const n = waiting.length;
    const refused = queued.length - n;
    $('pending').hidden = n === 0 && refused === 0;
    $('pending').textContent = refused ? `待上传 ${n} 条，被拒绝 ${refused} 条` : `待上传 ${n} 条`;
    const others = (await everyRecord()).length - n;
    $('others-pending').hidden = others === 0;
    $('others-pending').textContent = `本机另有 ${others} 条其他账号的记录，该账号登录后自动上传`;
    drawMap();
  }

  // --- map ------------------------------------------------------------------------------------
  function drawMap() {
    if (!state.map || !window.L) return;
    if (state.layer) state.layer.remove();
    const features = state.tasks.filter(t => t.geometry).map(t => ({
      type: 'Feature', geometry: t.geometry, properties: { id: t.id, name: t.place.name, done: t.done } }));
    state.layer = L.geoJSON({ type: 'FeatureCollection', features }, {
      style: f => ({ color: f.properties.done ? '#2e7d32' : '#b71c1c', weight: 3, fillOpacity: 0.15 }),
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 8 }),
      onEachFeature: (f, layer) => {
        const div = document.createElement('div');
        div.textContent = f.properties.name + (f.properties.done ? '（已巡查）' : '');
        layer.bindPopup(div);
      },
    }).addTo(state.map);
    if (features.length) state.map.fitBounds(state.layer.getBounds(), { maxZoom: 17, padding: [20, 20] });
  }
  function initMap() {
    if (state.map || !window.L) return;
    state.map = L.map('map', { zoomControl: true });
    state.map.setView([cfg.center[1], cfg.center[0]], 13);
    (cfg.tiles || []).forEach(s => L.tileLayer(s.url, { subdomains: s.subdomains || 'abc', maxZoom: s.maxZoom || 18,
      attribution: s.attribution || '' }).addTo(state.map));
    drawMap();
  }

  // --- a visit --------------------------------------------------------------------------------
  function locate() {
    state.checkin = null;
    $('checkin').textContent = '正在定位…';
    if (!navigator.geolocation) { $('checkin').textContent = '无法定位：将不带签到位置保存'; return; }
    navigator.geolocation.getCurrentPosition(pos => {
      state.checkin = { lon: pos.coords.longitude, lat: pos.coords.latitude, accuracy: pos.coords.accuracy };
      $('checkin').textContent = `已签到：${state.checkin.lon.toFixed(6)}, ${state.checkin.lat.toFixed(6)}（精度约 ${Math.round(pos.coords.accuracy)} 米）`;
    }, () => { $('checkin').textContent = '定位失败：将不带签到位置保存（会被标记）'; },
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  }
  function openVisit(task) {
    state.current = task;
    state.photos = [];
    $('visit-form').reset();
    $('thumbs').replaceChildren();
    $('visit-error').hidden = true;
    $('visit-title').textContent = `巡查打卡：${task.place.name || task.place.code}`;
    const list = $('checklist');
    list.replaceChildren();
    (task.standards || []).forEach(s => list.append(el('div', { class: 'checkrow' }, el('span', {}, `${s.code} ${s.text}`),
      el('select', { name: `std-${s.id}` }, el('option', { value: 'ok' }, '合格'), el('option', { value: 'problem' }, '有问题')))));
    locate();
    if ($('visit').showModal) $('visit').showModal(); else $('visit').setAttribute('open', '');
  }
  function addPhoto(file, capture) {
    state.photos.push({ blob: file, name: file.name || `photo${state.photos.length + 1}.jpg`, type: file.type || 'image/jpeg', capture });
    const img = el('img', { alt: '照片' });
    img.src = URL.createObjectURL(file);
    $('thumbs').append(img);
  }
  $('camera').addEventListener('change', e => { [...e.target.files].forEach(f => addPhoto(f, 'camera')); e.target.value = ''; });
  $('gallery').addEventListener('change', e => { [...e.target.files].forEach(f => addPhoto(f, 'gallery')); e.target.value = ''; });
  $('visit-cancel').addEventListener('click', () => $('visit').close());

  async function saveVisit() {
    const task = state.current;
    const form = $('visit-form');
    const data = new FormData(form);
    const fields = {
      task_id: String(task.id),
      visited_at: isoWithOffset(new Date()),
      outcome: data.get('outcome') || 'ok',
      note: data.get('note') || '',
    };
    const checklist = (task.standards || []).map(s => ({ standard_id: s.id, outcome: data.get(`std-${s.id}`) || 'ok' }));
    if (checklist.length) { fields.checklist = JSON.stringify(checklist); delete fields.outcome; }
    if (state.checkin) { fields.lon = String(state.checkin.lon); fields.lat = String(state.checkin.lat); }
    if ($('raise').open && (data.get('description') || '').trim()) {
      fields.issues = JSON.stringify([{ category: data.get('category'), description: data.get('description').trim() }]);
      if (fields.outcome) fields.outcome = 'problem';
    }
    if (state.photos.length) fields.captures = state.photos.map(p => p.capture).join(',');
    const record = { key: uuid(), kind: 'visit', account: cfg.account,
                     title: task.place.name || task.place.code, fields,
                     photos: state.photos.map(p => ({ blob: p.blob, name: p.name, type: p.type })),
                     created: Date.now(), attempts: 0, next: 0, error: null };
    record.fields.idempotency_key = record.key;
    await outboxPut(record);
    $('visit').close();
    await render();
    sync();
    return record.key;
  }
  $('visit-form').addEventListener('submit', e => { e.preventDefault(); saveVisit(); });

  // --- a report (outside a visit) ------------------------------------------------------------
  const rep = { photos: [], where: null };
  function openReport() {
    rep.photos = []; rep.where = null;
    $('report-form').reset(); $('report-thumbs').replaceChildren(); $('report-error').hidden = true;
    $('report-where').textContent = '正在定位…';
    if (navigator.geolocation) {
      navigator.geolocation.getCurrentPosition(pos => {
        rep.where = { lon: pos.coords.longitude, lat: pos.coords.latitude };
        $('report-where').textContent = `位置：${rep.where.lon.toFixed(6)}, ${rep.where.lat.toFixed(6)}`;
      }, () => { $('report-where').textContent = '定位失败：请到室外或打开定位后重试'; },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    }
    if ($('report').showModal) $('report').showModal(); else $('report').setAttribute('open', '');
  }
  function addReportPhoto(file, capture) {
    rep.photos.push({ blob: file, name: file.name || `photo${rep.photos.length + 1}.jpg`, type: file.type || 'image/jpeg', capture });
    const img = el('img', { alt: '照片' });
    img.src = URL.createObjectURL(file);
    $('report-thumbs').append(img);
  }
  async function saveReport() {
    const data = new FormData($('report-form'));
    const error = msg => { $('report-error').textContent = msg; $('report-error').hidden = false; };
    if (!rep.where) return error('还没有定位，无法确定问题位置');
    if (!rep.photos.length && cfg.min_photos > 0) return error(`请至少拍 ${cfg.min_photos} 张照片`);
    const key = uuid();
    const fields = { idempotency_key: key, category: data.get('category'),
                     description: (data.get('description') || '').trim(),
                     lon: String(rep.where.lon), lat: String(rep.where.lat),
                     recorded_at: isoWithOffset(new Date()) };
    await outboxPut({ key, kind: 'report', account: cfg.account, title: `上报：${fields.category}`, fields,
                      photos: rep.photos.map(p => ({ blob: p.blob, name: p.name, type: p.type })),
                      created: Date.now(), attempts: 0, next: 0, error: null });
    $('report').close();
    await render();
    sync();
    return key;
  }
  $('report-open').addEventListener('click', openReport);
  $('report-cancel').addEventListener('click', () => $('report').close());
  $('report-camera').addEventListener('change', e => { [...e.target.files].forEach(f => addReportPhoto(f, 'camera')); e.target.value = ''; });
  $('report-gallery').addEventListener('change', e => { [...e.target.files].forEach(f => addReportPhoto(f, 'gallery')); e.target.value = ''; });
  $('report-form').addEventListener('submit', e => { e.preventDefault(); saveReport(); });

  // --- sending --------------------------------------------------------------------------------
  async function send(record) {
    const body = new FormData();
    Object.entries(record.fields).forEach(([k, v]) => body.append(k, v));
    record.photos.forEach(p => body.append('photos', p.blob, p.name));
    const url = record.kind === 'report' ? '/api/fieldwork/reports' : '/api/fieldwork/visits';
    const post = () => fetch(url, {
      method: 'POST', body, credentials: 'same-origin',
      headers: { 'X-CSRFToken': csrf(), 'Idempotency-Key': record.key, Accept: 'application/json' } });
    let r = await post();
    if (r.status === 400) {
      const e = await r.clone().json().catch(() => ({}));
      if (/CSRF/i.test(e.error || '') || /CSRF/i.test(JSON.stringify(e))) { await refreshCsrf(); r = await post(); }
    }
    return r;
  }
  async function sync() {
    if (state.syncing || !navigator.onLine) return;
    state.syncing = true;
    try {
      const records = (await outboxAll()).sort((a, b) => a.created - b.created);
      for (const record of records) {
        if (record.error || record.next > Date.now()) continue;
        let response;
        try { response = await send(record); } catch (err) { response = null; }
        if (response && (response.status === 200 || response.status === 201)) {
          await outboxDelete(record.key);
          state.sent += 1;
        } else if (response && response.status >= 400 && response.status < 500 && ![401, 408, 429].includes(response.status)) {
          const e = await response.json().catch(() => ({}));
          record.error = e.error || `上传被拒绝（${response.status}）`;
          state.errors.push(record.error);
          await outboxPut(record);
        } else {
          record.attempts += 1;
          record.next = Date.now() + Math.min(300000, 2000 * 2 ** record.attempts);
          await outboxPut(record);
          if (response && response.status === 401) break;
        }
      }
    } finally {
      state.syncing = false;
    }
    await render();
    if (state.sent) loadTasks();
  }

  // --- my visits ------------------------------------------------------------------------------
  async function loadVisits() {
    try {
      const r = await fetch('/api/fieldwork/visits/mine', { credentials: 'same-origin' });
      if (!r.ok) return;
      const body = await r.json();
      const list = $('visit-list');
      list.replaceChildren();
      body.visits.forEach(v => {
        const flags = v.flags.includes('far') ? el('span', { class: 'tag overdue' }, `距点位 ${Math.round(v.distance_m)} 米`) : el('span', { class: 'tag done' }, v.outcome_title);
        list.append(el('li', {}, el('div', { class: 'row' }, el('span', { class: 'title' }, v.place.name || ''), flags),
          el('div', { class: 'meta' }, `${dayTime(v.visited_at)} · 照片 ${v.photos.length} 张` +
            (v.issue_ids.length ? ` · 上报问题 ${v.issue_ids.length} 个` : ''))));
      });
    } catch (err) { /* offline */ }
  }

  // --- start ----------------------------------------------------------------------------------
  function setNet() {
    $('net').textContent = navigator.onLine ? '在线' : '离线';
    $('net').classList.toggle('off', !navigator.onLine);
  }
  window.addEventListener('online', () => { setNet(); sync(); });
  window.addEventListener('offline', setNet);
  $('pending').addEventListener('click', () => sync());
  document.querySelectorAll('.tabs button').forEach(b => b.addEventListener('click', () => {
    document.querySelectorAll('.tabs button').forEach(x => x.classList.toggle('on', x === b));
    ['tasks', 'map', 'visits'].forEach(t => { $(`tab-${t}`).hidden = t !== b.dataset.tab; });
    if (b.dataset.tab === 'map') { initMap(); setTimeout(() => state.map && state.map.invalidateSize(), 50); }
    if (b.dataset.tab === 'visits') loadVisits();
  }));
  cfg.categories.forEach(c => {
    $('category').append(el('option', { value: c }, c));
    $('report-category').append(el('option', { value: c }, c));
  });
  $('who').textContent = cfg.user;
  setNet();
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/field/sw.js', { scope: '/field/' }).catch(() => {});
  }
  setInterval(sync, 30000);
  loadTasks().then(() => { state.ready = true; sync(); });

  window.gsField = {
    state, addPhoto, saveVisit, sync, openVisit, render, openReport, addReportPhoto, saveReport, rep,
    pending: async () => (await outboxAll()).length,
    outbox: outboxAll,
  };
})();
