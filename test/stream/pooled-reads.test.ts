/**
 * GETs are served from reusable buffers (src/util/buffer-pool.ts,
 * src/http/send-body.ts): a holder reads its chunks into them, a node that
 * does not hold a file joins the chunks it receives into them, and a buffer
 * goes back to the pool once the socket's write of it completed — unless a
 * cache kept it or a second reader shared it (then it is claimed). The
 * danger is a buffer reused while something still refers to it: bytes of one
 * file in another's body, or in the cache. These tests run many interleaved
 * whole-file and Range reads of different files, some consumed slowly and
 * some dropped midway, check every body by sha256, and check that buffers
 * were in fact reused (else they would prove nothing).
 */
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BufferPool } from '../../src/util/buffer-pool.ts'
import { ChunkCache } from '../../src/stream/chunk-cache.ts'
import { createSimCluster } from '../sim/cluster.ts'
import { randomBytes, sha256hex, upload } from '../helpers/data.ts'
import { createRng } from '../sim/rng.ts'
import type { SimCluster } from '../sim/cluster.ts'

describe('BufferPool', () => {
  it('hands a given-back buffer out again; ignores foreign and oversized buffers; keeps at most `kept`', () => {
    const pool = new BufferPool({ bufferBytes: 1024, kept: 2 })
    const a = pool.take(1000)
    expect(a.byteLength).toBe(1000)
    pool.give(a.subarray(10, 20))
    expect(pool.idle).toBe(1)
    const b = pool.take(500)
    expect(b.buffer).toBe(a.buffer)
    expect(pool.counters).toEqual({ taken: 2, reused: 1 })
    // Not from the pool: ignored. Given back twice: the second is ignored (it is no longer out).
    pool.give(Buffer.alloc(1024))
    pool.give(b)
    pool.give(b)
    expect(pool.idle).toBe(1)
    // Larger than a pooled buffer: a fresh one, never kept.
    const big = pool.take(4096)
    pool.give(big)
    expect(pool.idle).toBe(1)
    const out = [pool.take(1), pool.take(1), pool.take(1)]
    for (const o of out) pool.give(o)
    expect(pool.idle).toBe(2)
  })
})

describe('ChunkCache and the pool', () => {
  const digest = new Uint8Array(32).fill(7)

  it('claims a chunk it keeps: the fetching reader\'s give-back is ignored', async () => {
    const pool = new BufferPool({ bufferBytes: 1024 })
    const cache = new ChunkCache(1024 * 1024, { pool })
    const bytes = pool.take(1000)
    const fetch = Promise.withResolvers<Uint8Array>()
    cache.track(digest, fetch.promise)
    fetch.resolve(bytes)
    await fetch.promise
    await Promise.resolve()
    pool.give(bytes)
    expect(pool.idle).toBe(0)
    expect(cache.get(digest)?.buffer).toBe(bytes.buffer)
  })

  it('claims a chunk a second reader joined in flight, with no cache at all', async () => {
    const pool = new BufferPool({ bufferBytes: 1024 })
    const cache = new ChunkCache(0, { pool })
    const bytes = pool.take(1000)
    const fetch = Promise.withResolvers<Uint8Array>()
    cache.track(digest, fetch.promise)
    const joined = cache.pending(digest)
    fetch.resolve(bytes)
    expect(await joined).toBe(bytes)
    pool.give(bytes)
    expect(pool.idle).toBe(0)
    // Nobody joined: the fetcher's give-back returns the buffer.
    const own = pool.take(10)
    cache.track(new Uint8Array(32).fill(8), Promise.resolve(own))
    await Promise.resolve()
    pool.give(own)
    expect(pool.idle).toBe(1)
  })
})

/** GET a path, reading the body with a turn of the event loop between pieces when `slow`; `dropAfter` bytes then hang up. */
async function get (base: string, path: string, headers: Record<string, string>, opts: { slow?: boolean, dropAfter?: number } = {}): Promise<{ status: number, body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { headers }, res => {
      const parts: Buffer[] = []
      let got = 0
      res.on('data', (b: Buffer) => {
        parts.push(b)
        got += b.byteLength
        if (opts.dropAfter != null && got >= opts.dropAfter) {
          req.destroy()
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) })
          return
        }
        if (opts.slow === true) {
          res.pause()
          setImmediate(() => res.resume())
        }
      })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }) })
      res.on('error', reject)
    })
    req.on('error', (err) => { if (opts.dropAfter == null) reject(err) })
    req.end()
  })
}

interface FileCase { id: string, data: Uint8Array<ArrayBuffer> }

/** 48 interleaved reads of `files` through `base` (a third whole, the rest ranges; some slow, some dropped): every body checked. */
async function interleavedReads (base: string, files: FileCase[], seed: number): Promise<void> {
  const rng = createRng(seed)
  const reads = Array.from({ length: 48 }, (_, k) => {
    const f = files[rng.int(files.length)] as FileCase
    const size = f.data.byteLength
    const whole = rng.int(3) === 0
    const start = whole ? 0 : rng.int(size)
    const end = whole ? size - 1 : Math.min(size - 1, start + rng.int(3 * 1024 * 1024))
    const drop = k % 7 === 3 && end - start > 200_000 ? 100_000 : undefined
    return { f, whole, start, end, drop, slow: k % 3 === 0 }
  })
  const results = await Promise.all(reads.map(async r => {
    const got = await get(base, `/files/${r.f.id}`, r.whole ? {} : { range: `bytes=${r.start}-${r.end}` }, { slow: r.slow, ...(r.drop != null ? { dropAfter: r.drop } : {}) })
    return { r, got }
  }))
  for (const { r, got } of results) {
    expect(got.status).toBe(r.whole ? 200 : 206)
    const want = r.f.data.subarray(r.start, r.end + 1)
    if (r.drop != null) {
      // A dropped read: what arrived is a prefix of the right bytes.
      expect(sha256hex(got.body)).toBe(sha256hex(want.subarray(0, got.body.byteLength)))
    } else {
      expect(got.body.byteLength).toBe(want.byteLength)
      expect(sha256hex(got.body)).toBe(sha256hex(want))
    }
  }
  // And every file still reads right after the dropped ones.
  for (const f of files) {
    const again = await get(base, `/files/${f.id}`, {})
    expect(sha256hex(again.body)).toBe(sha256hex(f.data))
  }
}

describe('GETs served from reused buffers', () => {
  let c: SimCluster
  let base = ''
  const files: FileCase[] = []
  const url = (i: number): string => c.node(i).http?.url ?? ''

  beforeAll(async () => {
    // Node 0 holds the files (g1); node 1 (g2) reads them from it with its cache on, node 2 (g3) with it off.
    c = await createSimCluster({ nodes: 3, http: true, configure: (i) => ({ group: `g${i + 1}`, ...(i === 2 ? { cacheSize: 0 } : {}) }) })
    await c.ready()
    await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.members().filter(m => m.state === 'ACTIVE').length === 3), { message: 'all ACTIVE' })
    base = url(0)
    // Sizes that cross chunk (1 MiB) and leaf (64 KiB) boundaries, and one smaller than a leaf.
    for (const [i, size] of [5 * 1024 * 1024 + 777, 3 * 1024 * 1024 + 65_537, 2 * 1024 * 1024, 40_000].entries()) {
      const data = randomBytes(size, 900 + i)
      const res = await upload(base, data, `f${i}.bin`, { group: 'g1' })
      expect(res.status).toBe(201)
      files.push({ id: res.body.id as string, data })
    }
  })
  afterAll(async () => { await c.close() })

  it('on a holder: interleaved whole-file and Range reads of four files, fast, slow and dropped, each body its own bytes', async () => {
    const pool = c.node(0).store.readBuffers
    const before = { ...pool.counters }
    await interleavedReads(base, files, 4242)
    // The pool was used and buffers came back to it: the reads above ran on reused buffers.
    expect(pool.counters.taken - before.taken).toBeGreaterThan(48)
    expect(pool.counters.reused - before.reused).toBeGreaterThan(0)
  })

  for (const [reader, label] of [[1, 'with its cache on'], [2, 'with no cache']] as const) {
    it(`on a node that does not hold them, ${label}: the same reads, twice (the second time from its cache, if any), each body its own bytes`, async () => {
      const pool = c.node(reader).store.readBuffers
      const before = { ...pool.counters }
      await interleavedReads(url(reader), files, 5000 + reader)
      await interleavedReads(url(reader), files, 6000 + reader)
      expect(pool.counters.taken - before.taken).toBeGreaterThan(0)
      // With no cache every chunk is the reader's own (or shared in flight): buffers come back and are reused.
      if (reader === 2) expect(pool.counters.reused - before.reused).toBeGreaterThan(0)
      // What the cache holds is still right (no buffer of it was reused under it): each file read whole in turn,
      // the cache emptied first so that every read fetches (taking buffers the earlier ones gave back), then again.
      if (reader === 1) {
        c.node(reader).replica.reader.cache.clear()
        for (const round of [1, 2]) {
          for (const f of files) expect(sha256hex((await get(url(reader), `/files/${f.id}`, {})).body), `round ${round}`).toBe(sha256hex(f.data))
        }
      }
    })
  }
})
