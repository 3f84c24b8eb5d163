/**
 * A holder serves GETs from reusable read buffers (src/store/buffer-pool.ts,
 * src/http/send-body.ts): a buffer goes back to the pool once the socket's
 * write of it completed. The danger is a buffer reused while a response
 * still refers to it — bytes of one file in another's body. These tests
 * run many interleaved whole-file and Range reads of different files, some
 * consumed slowly and some dropped midway, and check every body by sha256,
 * and that buffers were in fact reused (else they would prove nothing).
 */
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BufferPool } from '../../src/store/buffer-pool.ts'
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

describe('a holder serving GETs from reused buffers', () => {
  let c: SimCluster
  let base = ''
  const files: Array<{ id: string, data: Uint8Array<ArrayBuffer> }> = []

  beforeAll(async () => {
    c = await createSimCluster({ nodes: 1, http: true, configure: () => ({ group: 'g1' }) })
    await c.ready()
    base = c.node(0).http?.url ?? ''
    // Sizes that cross chunk (1 MiB) and leaf (64 KiB) boundaries, and one smaller than a leaf.
    for (const [i, size] of [5 * 1024 * 1024 + 777, 3 * 1024 * 1024 + 65_537, 2 * 1024 * 1024, 40_000].entries()) {
      const data = randomBytes(size, 900 + i)
      const res = await upload(base, data, `f${i}.bin`, { group: 'g1' })
      expect(res.status).toBe(201)
      files.push({ id: res.body.id as string, data })
    }
  })
  afterAll(async () => { await c.close() })

  it('interleaved whole-file and Range reads of four files, fast, slow and dropped: every body is its own bytes', async () => {
    const rng = createRng(4242)
    const pool = c.node(0).store.readBuffers
    const before = { ...pool.counters }
    const reads = Array.from({ length: 48 }, (_, k) => {
      const f = files[rng.int(files.length)] as { id: string, data: Uint8Array<ArrayBuffer> }
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
    // The pool was used and buffers came back to it: the reads above ran on reused buffers.
    expect(pool.counters.taken - before.taken).toBeGreaterThan(48)
    expect(pool.counters.reused - before.reused).toBeGreaterThan(0)
    // And the node still reads right after the dropped ones.
    for (const f of files) {
      const again = await get(base, `/files/${f.id}`, {})
      expect(sha256hex(again.body)).toBe(sha256hex(f.data))
    }
  })
})
