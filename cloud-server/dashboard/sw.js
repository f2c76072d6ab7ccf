// The dashboard's service worker: keeps the page's shell (its own files) so that the page
// opens without a network and says "no connection"; never the flat's state, which comes over
// the WebSocket only (a WebSocket never passes through a service worker). Network first:
// a page online is always the server's current one; the cache only answers when the
// network does not.

const CACHE = 'flatlink-shell-v4';
const SHELL = [
  './',
  'index.html',
  'style.css',
  'app.js',
  'audio.js',
  'chart.js',
  'connection.js',
  'controls.js',
  'device_card.js',
  'dom.js',
  'events.js',
  'flat_state.js',
  'history.js',
  'i18n.js',
  'icons.js',
  'notifications.js',
  'favicon.svg',
  'manifest.json',
  'icon-192.png',
  'icon-512.png',
  'icon-maskable-512.png',
];
const SHELL_PATHS = new Set(SHELL.map((file) => new URL(file, self.registration.scope).pathname));

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  const navigation = request.mode === 'navigate';
  if (!navigation && !SHELL_PATHS.has(url.pathname)) return; // not the shell: the network alone
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(navigation ? './' : request, copy));
        }
        return response;
      })
      .catch(async () => {
        const cached = await caches.match(navigation ? './' : request, { ignoreSearch: true });
        return cached || Response.error();
      }),
  );
});
