/**
 * HTTP connection limits: slow headers, idle sockets, stalled bodies and idle
 * keep-alive connections are closed by the node; connections are capped per
 * client address. Each check waits for the server to close the socket (an
 * event), never for a fixed time.
 */
import { connect } from 'node:net'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimCluster } from '../sim/cluster.ts'
import type { SimCluster } from '../sim/cluster.ts'
import type { Socket } from 'node:net'

const LIMITS = {
  httpHeadersTimeoutMs: 1_000,
  httpBodyIdleTimeoutMs: 1_000,
  httpKeepAliveTimeoutMs: 1_000,
  httpMaxConnectionsPerClient: 20
}

const openedAt = new WeakMap<Socket, number>()

async function open (port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1')
  await once(s, 'connect')
  openedAt.set(s, performance.now())
  s.on('error', () => {})
  return s
}

/** Resolves with what the server sent once it closed the connection. */
async function closedByServer (s: Socket): Promise<string> {
  return (await closedAfter(s)).got
}

/** What the server sent once it closed the connection, and how long after it was opened it closed (ms). */
async function closedAfter (s: Socket): Promise<{ got: string, ms: number }> {
  const started = openedAt.get(s) ?? performance.now()
  let got = ''
  s.on('data', (d: Buffer) => { got += d.toString() })
  if (!s.destroyed && s.readyState !== 'closed') await once(s, 'close')
  return { got, ms: performance.now() - started }
}

describe('HTTP limits', () => {
  let c: SimCluster
  let port: number
  beforeAll(async () => {
    c = await createSimCluster({ nodes: 1, http: true, configure: () => ({ group: 'g1', ...LIMITS }) })
    await c.ready()
    port = c.node(0).http?.address.port ?? 0
  })
  afterAll(async () => { await c?.close() })

  it('slowloris: headers sent a byte at a time are cut off at the headers deadline', async () => {
    // Half of what one address may hold (the next test's sockets must not meet the cap while these close).
    const sockets = await Promise.all(Array.from({ length: LIMITS.httpMaxConnectionsPerClient / 2 }, async () => open(port)))
    const request = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200)
    const timers = sockets.map(s => {
      let i = 0
      const t = setInterval(() => { if (!s.destroyed) s.write(request[i++ % request.length] ?? 'a') }, 100)
      s.once('close', () => { clearInterval(t) })
      return t
    })
    const answers = await Promise.all(sockets.map(closedAfter))
    for (const t of timers) clearInterval(t)
    for (const a of answers) {
      expect(a.got).toMatch(/^HTTP\/1\.1 408 .*ERR_REQUEST_TIMEOUT/s)
      // The headers deadline closed it: not before (a lower bound holds on a loaded machine too).
      expect(a.ms).toBeGreaterThanOrEqual(LIMITS.httpHeadersTimeoutMs - 50)
    }
  })

  it('idle sockets that never send a request are closed', async () => {
    const sockets = await Promise.all(Array.from({ length: 10 }, async () => open(port)))
    const closed = await Promise.all(sockets.map(closedAfter))
    for (const c of closed) {
      // Closed by the server's headers deadline (we never end them): silently or with a 408, and not before it.
      expect(c.got === '' || /^HTTP\/1\.1 408/.test(c.got), c.got).toBe(true)
      expect(c.ms).toBeGreaterThanOrEqual(LIMITS.httpHeadersTimeoutMs - 50)
    }
    expect(sockets.every(s => s.destroyed)).toBe(true)
  })

  it('an upload that declares 1 GB and sends 10 bytes gets 408 and is dropped; nothing is stored, nothing held', async () => {
    const s = await open(port)
    s.write('POST /files?name=stalled.bin HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000000\r\n\r\n0123456789')
    const answer = await closedByServer(s)
    expect(answer).toMatch(/^HTTP\/1\.1 408/)
    expect(answer).toMatch(/ERR_REQUEST_TIMEOUT/)
    const node = c.node(0)
    expect(node.store.index.stats().present.files).toBe(0)
    await c.waitFor(() => node.status.load === 0, { message: 'the stalled upload let go of its transfer slot' })
  })

  it('an idle keep-alive connection is closed after its request', async () => {
    const s = await open(port)
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    const answer = await closedByServer(s)
    expect(answer).toMatch(/^HTTP\/1\.1 200/)
  })

  it('one client address cannot hold more than its share of connections', async () => {
    const sockets = await Promise.all(Array.from({ length: LIMITS.httpMaxConnectionsPerClient }, async () => open(port)))
    const extra = await open(port)
    // The extra connection is dropped at once, before any request.
    expect(await closedByServer(extra)).toBe('')
    for (const s of sockets) s.destroy()
  })
})
