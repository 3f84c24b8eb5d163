import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimCluster } from '../sim/cluster.ts'
import { download, randomBytes, sha256hex, upload } from '../helpers/data.ts'
import type { SimCluster } from '../sim/cluster.ts'

const url = (c: SimCluster, i: number): string => c.node(i).http?.url ?? ''

/** g1 = nodes 0-2 hold the files; node 3 (g2) holds none of them. */
async function cluster (): Promise<SimCluster> {
  const c = await createSimCluster({ nodes: 4, http: true, configure: (i) => ({ group: i < 3 ? 'g1' : 'g2', readSources: 3 }) })
  await c.ready()
  await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.members().filter(m => m.state === 'ACTIVE').length === 4), { message: 'all ACTIVE' })
  return c
}

describe('the Range gateway', () => {
  let c: SimCluster
  const data = randomBytes(3 * 1024 * 1024 + 12_345, 101)
  const size = data.byteLength
  let id = ''
  beforeAll(async () => {
    c = await cluster()
    const res = await upload(url(c, 0), data, 'movie.mp4', { group: 'g1' })
    id = res.body.id as string
  })
  afterAll(async () => { await c.close() })

  const slice = (a: number, b: number): string => sha256hex(data.subarray(a, b + 1))

  for (const [label, node] of [['a node holding the file', 1], ['a node that does not hold it', 3]] as const) {
    describe(`from ${label}`, () => {
      it.each([
        ['first bytes', 'bytes=0-99', 0, 99],
        ['first byte', 'bytes=0-0', 0, 0],
        ['the middle, across a chunk boundary', 'bytes=1048000-1049999', 1048000, 1049999],
        ['the last byte', `bytes=${size - 1}-${size - 1}`, size - 1, size - 1],
        ['a suffix', 'bytes=-500', size - 500, size - 1],
        ['a suffix longer than the file', `bytes=-${size + 10}`, 0, size - 1],
        ['an open range', 'bytes=3000000-', 3000000, size - 1],
        ['a last-pos past the end (clipped)', `bytes=${size - 10}-${size + 1000}`, size - 10, size - 1]
      ])('%s → 206 with exact bytes', async (_label, range, start, end) => {
        const res = await fetch(`${url(c, node)}/files/${id}`, { headers: { range } })
        expect(res.status).toBe(206)
        expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${size}`)
        expect(Number(res.headers.get('content-length'))).toBe(end - start + 1)
        expect(res.headers.get('accept-ranges')).toBe('bytes')
        expect(sha256hex(new Uint8Array(await res.arrayBuffer()))).toBe(slice(start, end))
      })

      it('the whole file → 200 with headers for players and caches', async () => {
        const res = await fetch(`${url(c, node)}/files/${id}`)
        expect(res.status).toBe(200)
        expect(res.headers.get('content-type')).toBe('video/mp4')
        expect(res.headers.get('etag')).toBe(`"${id}"`)
        expect(res.headers.get('last-modified')).toMatch(/GMT$/)
        expect(Number(res.headers.get('content-length'))).toBe(size)
        expect(sha256hex(new Uint8Array(await res.arrayBuffer()))).toBe(sha256hex(data))
      })

      it('past the end → 416 with Content-Range: bytes */size', async () => {
        for (const range of [`bytes=${size}-`, `bytes=${size + 5}-${size + 10}`, 'bytes=-0']) {
          const res = await fetch(`${url(c, node)}/files/${id}`, { headers: { range } })
          expect({ range, status: res.status }).toEqual({ range, status: 416 })
          expect(res.headers.get('content-range')).toBe(`bytes */${size}`)
          expect(await res.json()).toMatchObject({ code: 'ERR_RANGE_NOT_SATISFIABLE' })
        }
      })

      it('a malformed Range is ignored (RFC 9110): 200 with the whole file', async () => {
        for (const range of ['bytes=abc', 'bytes=10-5', 'items=0-10', 'bytes=', '0-10']) {
          const res = await fetch(`${url(c, node)}/files/${id}`, { headers: { range } })
          expect({ range, status: res.status }).toEqual({ range, status: 200 })
          expect(sha256hex(new Uint8Array(await res.arrayBuffer()))).toBe(sha256hex(data))
        }
      })

      it('several ranges → multipart/byteranges, each part exact', async () => {
        const res = await fetch(`${url(c, node)}/files/${id}`, { headers: { range: 'bytes=0-9, 2000000-2000099, -5' } })
        expect(res.status).toBe(206)
        const type = res.headers.get('content-type') ?? ''
        expect(type).toMatch(/^multipart\/byteranges; boundary=/)
        const body = Buffer.from(await res.arrayBuffer())
        expect(body.byteLength).toBe(Number(res.headers.get('content-length')))
        const boundary = type.split('boundary=')[1] ?? ''
        const parts = body.toString('latin1').split(`--${boundary}`).slice(1, -1)
        const expected = [[0, 9], [2000000, 2000099], [size - 5, size - 1]] as const
        expect(parts).toHaveLength(3)
        parts.forEach((part, i) => {
          const [head, ...rest] = part.split('\r\n\r\n')
          const [a, b] = expected[i] ?? [0, 0]
          expect(head).toContain(`Content-Range: bytes ${a}-${b}/${size}`)
          expect(head).toContain('Content-Type: video/mp4')
          expect(sha256hex(Buffer.from(rest.join('\r\n\r\n').slice(0, -2), 'latin1'))).toBe(slice(a, b))
        })
      })

      it('HEAD → the headers of GET, no body', async () => {
        const res = await fetch(`${url(c, node)}/files/${id}`, { method: 'HEAD' })
        expect(res.status).toBe(200)
        expect(Number(res.headers.get('content-length'))).toBe(size)
        expect(res.headers.get('etag')).toBe(`"${id}"`)
        expect((await res.arrayBuffer()).byteLength).toBe(0)
        const ranged = await fetch(`${url(c, node)}/files/${id}`, { method: 'HEAD', headers: { range: 'bytes=10-19' } })
        expect(ranged.status).toBe(206)
        expect(ranged.headers.get('content-range')).toBe(`bytes 10-19/${size}`)
      })

      it('If-None-Match → 304; If-Range that does not match → 200; that matches → 206', async () => {
        const etag = `"${id}"`
        expect((await fetch(`${url(c, node)}/files/${id}`, { headers: { 'if-none-match': etag } })).status).toBe(304)
        expect((await fetch(`${url(c, node)}/files/${id}`, { headers: { 'if-none-match': `W/${etag}, "other"` } })).status).toBe(304)
        expect((await fetch(`${url(c, node)}/files/${id}`, { headers: { 'if-none-match': '"other"' } })).status).toBe(200)
        const lastModified = (await fetch(`${url(c, node)}/files/${id}`, { method: 'HEAD' })).headers.get('last-modified') ?? ''
        expect((await fetch(`${url(c, node)}/files/${id}`, { headers: { 'if-modified-since': lastModified } })).status).toBe(304)
        const stale = await fetch(`${url(c, node)}/files/${id}`, { headers: { range: 'bytes=0-9', 'if-range': '"something-else"' } })
        expect(stale.status).toBe(200)
        expect(sha256hex(new Uint8Array(await stale.arrayBuffer()))).toBe(sha256hex(data))
        const fresh = await fetch(`${url(c, node)}/files/${id}`, { headers: { range: 'bytes=0-9', 'if-range': etag } })
        expect(fresh.status).toBe(206)
        expect(sha256hex(new Uint8Array(await fresh.arrayBuffer()))).toBe(slice(0, 9))
      })

      it('?download=1 names the file in Content-Disposition', async () => {
        const res = await fetch(`${url(c, node)}/files/${id}?download=1`, { method: 'HEAD' })
        expect(res.headers.get('content-disposition')).toBe('attachment; filename=movie.mp4')
      })
    })
  }
})

describe('streaming from replicas', () => {
  it('the serving replica is killed during a 64 MiB download from a third node: the download completes byte-identical, no error', async () => {
    const c = await cluster()
    try {
      const data = randomBytes(64 * 1024 * 1024, 202)
      const { body } = await upload(url(c, 0), data, 'long.mp4', { group: 'g1' })
      const id = body.id as string
      const res = await fetch(`${url(c, 3)}/files/${id}`)
      expect(res.status).toBe(200)
      const reader = res.body?.getReader()
      if (reader == null) throw new Error('no body')
      const hash = (await import('node:crypto')).createHash('sha256')
      let received = 0
      let killed = -1
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        hash.update(value)
        received += value.byteLength
        if (killed === -1 && received > 8 * 1024 * 1024) {
          // Kill the replica that served the most so far: it is serving right now.
          const served = [0, 1, 2].map(i => c.node(i).replica.counters.servedBytes)
          killed = served.indexOf(Math.max(...served))
          await c.kill(killed)
        }
      }
      expect(killed).toBeGreaterThanOrEqual(0)
      expect(received).toBe(data.byteLength)
      expect(hash.digest('hex')).toBe(sha256hex(data))
    } finally {
      await c.close()
    }
  })

  it('a replica that sends chunks failing verification is caught, scored down and not asked again; the client gets the right bytes', async () => {
    const c = await cluster()
    try {
      // 16 chunks: segments of 4 go to the three replicas in turn, so the liar serves some.
      const data = randomBytes(16 * 1024 * 1024, 303)
      const { body } = await upload(url(c, 0), data, 'lie.bin', { group: 'g1' })
      const id = body.id as string
      // Node 1 turns liar: its get server sends altered bytes with the true leaf hashes, skipping its own
      // check (as a broken or malicious node would).
      const liar = c.node(1)
      const store = liar.store
      const honest = Object.getPrototypeOf(store) as typeof store
      store.readChunk = async (digest, range) => {
        const bytes = await honest.readChunk.call(store, digest, range)
        const altered = Uint8Array.from(bytes.data)
        altered[0] = (altered[0] ?? 0) ^ 0xff
        return { ...bytes, data: altered }
      }
      const reader = c.node(3)
      // The first read asks all three replicas in parallel: the liar's chunks fail verification and are refetched.
      const first = await download(url(c, 3), id)
      expect(first.status).toBe(200)
      expect(sha256hex(first.bytes)).toBe(sha256hex(data))
      expect(liar.replica.counters.servedBytes, 'the liar was asked').toBeGreaterThan(0)
      expect(reader.replica.reader.counters.peerCorruptChunks, 'its chunks were caught').toBeGreaterThan(0)
      expect(reader.replica.reader.scores.avoided(liar.peerId), 'and it is scored down').toBe(true)
      // Later reads avoid it: not one more byte is asked of the liar, and every byte is right.
      const servedByLiar = liar.replica.counters.servedBytes
      for (let k = 0; k < 2; k++) {
        reader.replica.reader.cache.clear()
        const d = await download(url(c, 3), id)
        expect(d.status).toBe(200)
        expect(sha256hex(d.bytes)).toBe(sha256hex(data))
      }
      expect(liar.replica.counters.servedBytes, 'the scored-down liar is not asked again').toBe(servedByLiar)
    } finally {
      await c.close()
    }
  })

  it('a seek moves only the leaves it needs: 1 KiB from a non-replica node costs the replicas one 64 KiB leaf, not a 1 MiB chunk', async () => {
    const c = await cluster()
    try {
      const data = randomBytes(3 * 1024 * 1024, 606)
      const { body } = await upload(url(c, 0), data, 'seek.bin', { group: 'g1' })
      const served = (): number => [0, 1, 2].reduce((a, i) => a + c.node(i).replica.counters.servedBytes, 0)
      const before = served()
      const res = await fetch(`${url(c, 3)}/files/${body.id as string}`, { headers: { range: 'bytes=1500000-1501023' } })
      expect(res.status).toBe(206)
      expect(sha256hex(new Uint8Array(await res.arrayBuffer()))).toBe(sha256hex(data.subarray(1500000, 1501024)))
      expect(served() - before).toBe(64 * 1024)
      // Across a leaf boundary: two leaves.
      const across = await fetch(`${url(c, 3)}/files/${body.id as string}`, { headers: { range: `bytes=${1048576 + 65536 - 10}-${1048576 + 65536 + 9}` } })
      expect(sha256hex(new Uint8Array(await across.arrayBuffer()))).toBe(sha256hex(data.subarray(1048576 + 65536 - 10, 1048576 + 65536 + 10)))
      expect(served() - before).toBe(3 * 64 * 1024)
    } finally {
      await c.close()
    }
  })

  it('a big read from a non-replica node fetches from several replicas in parallel', async () => {
    const c = await cluster()
    try {
      const data = randomBytes(24 * 1024 * 1024, 404)
      const { body } = await upload(url(c, 0), data, 'wide.bin', { group: 'g1' })
      const before = [0, 1, 2].map(i => c.node(i).replica.counters.servedBytes)
      const d = await download(url(c, 3), body.id as string)
      expect(sha256hex(d.bytes)).toBe(sha256hex(data))
      const served = [0, 1, 2].map((i, k) => c.node(i).replica.counters.servedBytes - (before[k] ?? 0))
      expect(served.filter(b => b > 0).length).toBeGreaterThanOrEqual(2)
      expect(served.reduce((a, b) => a + b, 0)).toBe(data.byteLength)
    } finally {
      await c.close()
    }
  })

  it('20 concurrent viewers through one non-replica node: all byte-identical, and its cache spares the replicas', async () => {
    const c = await cluster()
    try {
      const data = randomBytes(8 * 1024 * 1024, 505)
      const { body } = await upload(url(c, 0), data, 'hot.mp4', { group: 'g1' })
      const id = body.id as string
      const servedBefore = [0, 1, 2].reduce((a, i) => a + c.node(i).replica.counters.servedBytes, 0)
      const results = await Promise.all(Array.from({ length: 20 }, async () => download(url(c, 3), id)))
      for (const r of results) {
        expect(r.status).toBe(200)
        expect(sha256hex(r.bytes)).toBe(sha256hex(data))
      }
      const served = [0, 1, 2].reduce((a, i) => a + c.node(i).replica.counters.servedBytes, 0) - servedBefore
      const viewer = c.node(3).replica.reader
      // 20 viewers read 160 MiB through node 3; the replicas served the file about once.
      expect(served).toBeLessThan(2 * data.byteLength)
      expect(viewer.counters.fetchedBytes).toBe(served)
      expect(viewer.cache.hits).toBeGreaterThan(0)
    } finally {
      await c.close()
    }
  })
})

describe('stalled replicas under concurrent read-ahead', () => {
  it('the reading node lives, clients get a clean 503 (or their bytes once the replicas answer again), and no promise is left unhandled', async () => {
    // Short stalls so the test spends seconds, not minutes; node 3 reads g1's files without holding them.
    const c = await createSimCluster({ nodes: 4, http: true, configure: (i) => ({ group: i < 3 ? 'g1' : 'g2', readSources: 3, stallTimeoutMs: 200 }) })
    try {
      await c.ready()
      await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.members().filter(m => m.state === 'ACTIVE').length === 4), { message: 'all ACTIVE' })
      const data = randomBytes(12 * 1024 * 1024, 707)
      const { body } = await upload(url(c, 0), data, 'stall.bin', { group: 'g1' })
      const id = body.id as string
      // Every replica's disk stops answering: each read-ahead segment stalls, fails over, and finally fails.
      const released = Promise.withResolvers<void>()
      const stores = [0, 1, 2].map(i => c.node(i).store)
      for (const store of stores) {
        const proto = Object.getPrototypeOf(store) as typeof store
        store.readChunk = async (digest, range) => { await released.promise; return proto.readChunk.call(store, digest, range) }
      }
      // Many readers at once, sharing chunks through node 3's cache; half of them hang up early.
      const readers = Array.from({ length: 12 }, async (_, k) => {
        const controller = new AbortController()
        if (k % 2 === 1) setTimeout(() => { controller.abort() }, 20 + k * 10)
        const range: Record<string, string> = k % 3 === 0 ? {} : { range: `bytes=${k * 500_000}-` }
        try {
          const res = await fetch(`${url(c, 3)}/files/${id}`, { headers: range, signal: controller.signal })
          return { status: res.status, body: await res.json().catch(() => ({})) as { code?: string } }
        } catch {
          return { status: 'aborted' as const, body: {} }
        }
      })
      const answers = await Promise.all(readers)
      for (const a of answers) {
        if (a.status !== 'aborted') expect(a).toMatchObject({ status: 503, body: { code: 'ERR_UNAVAILABLE' } })
      }
      expect(answers.filter(a => a.status === 503).length).toBeGreaterThan(0)
      expect((await fetch(`${url(c, 3)}/healthz`)).status, 'the reading node still answers').toBe(200)
      // The disks answer again: the same node serves the file whole.
      for (const store of stores) delete (store as { readChunk?: unknown }).readChunk
      released.resolve()
      const d = await download(url(c, 3), id)
      expect(d.status).toBe(200)
      expect(sha256hex(d.bytes)).toBe(sha256hex(data))
    } finally {
      await c.close()
    }
  })
})
