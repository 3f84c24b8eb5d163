/**
 * The service worker of the P2P player. The <video> element asks for
 * `/p2p/<id>` with HTTP Range requests; this worker hands each request to
 * the page (whose P2P engine holds the libp2p node: workers cannot open
 * WebRTC connections) over a MessageChannel and streams the bytes back as
 * the element pulls them. When the page says P2P cannot serve, it answers
 * from the HTTP gateway (`/files/<id>`) instead.
 */
/// <reference lib="webworker" />
export {}
declare const self: ServiceWorkerGlobalScope

const P2P_PATH = /^\/p2p\/([a-z0-9]+)$/
const HEAD_TIMEOUT_MS = 15_000

/** The Static Routing API (Chrome 123+): not yet in TypeScript's lib. */
interface RouterInstallEvent extends ExtendableEvent { addRoutes?: (rules: unknown[]) => Promise<void> }

self.addEventListener('install', (event: RouterInstallEvent) => {
  void self.skipWaiting()
  // Only /p2p/ needs this worker: every other request of the page (playlists, HLS segments, the API)
  // goes straight to the network, without waking the worker and a fetch event on the way.
  if (typeof event.addRoutes === 'function') {
    event.waitUntil(event.addRoutes([{ condition: { not: { urlPattern: new URLPattern({ pathname: '/p2p/*' }) } }, source: 'network' }]).catch(() => {}))
  }
})
self.addEventListener('activate', (event) => { event.waitUntil(self.clients.claim()) })

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url)
  const match = P2P_PATH.exec(url.pathname)
  if (url.origin !== self.location.origin || match?.[1] == null) return
  event.respondWith(answer(event, match[1]))
})

function gateway (id: string, range: string | null): Promise<Response> {
  return fetch(`/files/${id}`, { headers: range != null ? { range } : {} })
}

async function answer (event: FetchEvent, id: string): Promise<Response> {
  const range = event.request.headers.get('range')
  const client = await self.clients.get(event.clientId) ?? (await self.clients.matchAll({ type: 'window' }))[0]
  if (client == null) return gateway(id, range)
  const channel = new MessageChannel()
  const port = channel.port1
  const next = (): Promise<Record<string, unknown>> => new Promise((resolve) => { port.onmessage = (m) => { resolve(m.data as Record<string, unknown>) } })
  const first = next()
  client.postMessage({ type: 'dsm-read', id, range }, [channel.port2])
  const head = await Promise.race([first, new Promise<Record<string, unknown>>(resolve => setTimeout(() => { resolve({ fallback: true }) }, HEAD_TIMEOUT_MS))])
  if (head.fallback === true || head.status == null) {
    port.close()
    return gateway(id, range)
  }
  const body = new ReadableStream<Uint8Array>({
    async pull (controller) {
      const reply = next()
      port.postMessage({ pull: true })
      const m = await reply
      if (m.chunk instanceof ArrayBuffer) controller.enqueue(new Uint8Array(m.chunk))
      else if (m.done === true) { controller.close(); port.close() } else { controller.error(new Error(String(m.error ?? 'p2p read failed'))); port.close() }
    },
    cancel () { port.postMessage({ cancel: true }); port.close() }
  }, { highWaterMark: 0 })
  return new Response(head.status === 304 || head.status === 416 ? null : body, { status: head.status as number, headers: head.headers as Record<string, string> })
}
