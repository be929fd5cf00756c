/* Service worker of the field app (scope /field/). The app shell and Leaflet are cached at
 * install; today's tasks are fetched network-first and kept for offline use; map tiles are
 * kept as they are seen. Writes (POST) are never touched here: the page keeps unsent records
 * in IndexedDB and sends them itself when the network returns. */
const VERSION = 'gs-field-v1';
const SHELL = [
  '/field/',
  '/field/manifest.webmanifest',
  '/static/field/app.js',
  '/static/field/app.css',
  '/static/field/icon-192.png',
  '/vendor/leaflet/dist/leaflet.js',
  '/vendor/leaflet/dist/leaflet.css',
];

self.addEventListener('install', event => {
  event.waitUntil(caches.open(VERSION).then(cache => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', event => {
  event.waitUntil(
    caches.keys()
      .then(keys => Promise.all(keys.filter(k => k !== VERSION).map(k => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

async function networkFirst(request, key) {
  const cache = await caches.open(VERSION);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(key || request, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(key || request);
    if (cached) return cached;
    throw err;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(VERSION);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok || response.type === 'opaque') await cache.put(request, response.clone());
  return response;
}

self.addEventListener('fetch', event => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) {
    if (request.destination === 'image') event.respondWith(cacheFirst(request)); // map tiles
    return;
  }
  if (request.mode === 'navigate' && url.pathname.startsWith('/field/')) {
    event.respondWith(networkFirst(request, '/field/'));
  } else if (url.pathname === '/api/fieldwork/tasks/mine' || url.pathname === '/api/fieldwork/visits/mine') {
    event.respondWith(networkFirst(request));
  } else if (url.pathname.startsWith('/static/field/') || url.pathname.startsWith('/vendor/leaflet/')) {
    event.respondWith(cacheFirst(request));
  }
});
