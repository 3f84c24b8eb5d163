/**
 * The page's side of the service worker: answers `/p2p/<id>` Range requests
 * with bytes from the P2P engine, pulled one piece at a time (the <video>
 * element paces the reads). Range semantics are the gateway's own
 * (src/util/range.ts); a request P2P cannot serve is sent back to the worker
 * as a fallback to the HTTP gateway.
 */
import { parseRange } from '../util/range.ts'
import type { P2PEngine } from './engine.ts'

interface ReadRequest { type: 'dsm-read', id: string, range: string | null }

export function bridgeServiceWorker (engine: P2PEngine, onFallback: (id: string, err: Error) => void): void {
  navigator.serviceWorker.addEventListener('message', (event) => {
    const data = event.data as ReadRequest | undefined
    const port = event.ports[0]
    if (data?.type !== 'dsm-read' || port == null) return
    void serve(engine, data, port).catch((err: unknown) => { onFallback(data.id, err instanceof Error ? err : new Error(String(err))) })
  })
}

async function serve (engine: P2PEngine, req: ReadRequest, port: MessagePort): Promise<void> {
  let manifest
  try {
    manifest = await engine.manifest(req.id, { signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    port.postMessage({ fallback: true })
    throw err
  }
  const { size, mime } = manifest
  const decision = parseRange(req.range ?? undefined, size)
  const base = { 'content-type': mime, 'accept-ranges': 'bytes', etag: `"${req.id}"` }
  if (decision.kind === 'unsatisfiable') {
    port.postMessage({ status: 416, headers: { ...base, 'content-range': `bytes */${size}` } })
    return
  }
  // A player asks for one range at a time; of several, the first is served.
  const r = decision.kind === 'partial' ? decision.ranges[0] : undefined
  const start = r?.start ?? 0
  const end = r?.end ?? size - 1
  const headers = { ...base, 'content-length': String(end - start + 1), ...(r != null ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}) }
  port.postMessage({ status: r != null ? 206 : 200, headers })
  const controller = new AbortController()
  const pieces = engine.read(req.id, start, end - start + 1, { signal: controller.signal })[Symbol.asyncIterator]()
  port.onmessage = (m: MessageEvent<{ pull?: boolean, cancel?: boolean }>) => {
    if (m.data.cancel === true) { controller.abort(); void pieces.return?.(); return }
    if (m.data.pull !== true) return
    pieces.next().then(({ done, value }) => {
      if (done === true) { port.postMessage({ done: true }); return }
      const copy = value.slice()
      port.postMessage({ chunk: copy.buffer }, [copy.buffer])
    }, (err: unknown) => { port.postMessage({ error: err instanceof Error ? err.message : String(err) }) })
  }
}
