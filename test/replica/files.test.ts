import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimCluster, readWhole } from '../sim/cluster.ts'
import { download, randomBytes, sha256hex, upload } from '../helpers/data.ts'
import { alterStoredChunk, storedChunkBytes } from '../helpers/disk.ts'
import type { SimCluster } from '../sim/cluster.ts'
import type { DsmNode } from '../../src/node/dsm-node.ts'

/** g1 = nodes 0-2 (replicas), node 3 = g2 (a node that does not hold g1's files). */
async function twoGroups (extra: Parameters<typeof createSimCluster>[0] = { nodes: 4 }): Promise<SimCluster> {
  const c = await createSimCluster({ http: true, ...extra, configure: (i) => ({ group: i < 3 ? 'g1' : 'g2', ...extra.configure?.(i) }) })
  await c.ready()
  await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.members().filter(m => m.state === 'ACTIVE').length === c.upIndexes().length), { message: 'all ACTIVE everywhere' })
  return c
}

const url = (c: SimCluster, i: number): string => c.node(i).http?.url ?? ''

/** The chunks a node's store holds (its index; bytes no row refers to are garbage for compaction). */
async function chunkFiles (node: DsmNode): Promise<string[]> {
  return node.store.chunks.digests().map(d => Buffer.from(d).toString('hex'))
}

describe('files on replica groups', () => {
  let c: SimCluster
  beforeAll(async () => { c = await twoGroups() })
  afterAll(async () => { await c.close() })

  it('an upload through a node of another group is on every member of the target group when acknowledged, and reads back from every node', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17, 7)
    const { status, body } = await upload(url(c, 3), data, 'clip.mp4', { group: 'g1' })
    expect(status).toBe(201)
    expect(body).toMatchObject({ size: data.byteLength, name: 'clip.mp4', mime: 'video/mp4', group: 'g1' })
    expect((body.replicas as string[]).sort()).toEqual([0, 1, 2].map(i => c.peerId(i)).sort())
    const id = body.id as string
    // Acknowledged: durable on every member — the file, or its prepared record whose commit is on its way (replica/commit.ts).
    const held = (i: number): boolean => c.node(i).store.index.get(id)?.state === 'present' || c.node(i).store.prepared.forFile(id).length > 0
    for (const i of [0, 1, 2]) expect(held(i), `member ${i} holds it`).toBe(true)
    await c.waitFor(() => [0, 1, 2].every(i => c.node(i).store.index.get(id)?.state === 'present'), { message: 'the decision reaches every member' })
    expect(c.node(3).store.index.get(id)).toBeUndefined()
    for (const i of [0, 1, 2, 3]) {
      const d = await download(url(c, i), id)
      expect(d.status).toBe(200)
      expect(sha256hex(d.bytes)).toBe(sha256hex(data))
      expect(d.headers.get('content-type')).toBe('video/mp4')
    }
    const stat = await (await fetch(`${url(c, 3)}/api/files/${id}`)).json() as { chunks: number, group: string, replicas: Array<{ copy: string, state: string }> }
    expect(stat).toMatchObject({ chunks: 4, group: 'g1' })
    expect(stat.replicas.map(r => [r.state, r.copy])).toEqual([['ACTIVE', 'present'], ['ACTIVE', 'present'], ['ACTIVE', 'present']])
  })

  it('the same bytes and name give the same ID (an idempotent retry), whichever way they are uploaded', async () => {
    const data = randomBytes(1000, 8)
    const a = await upload(url(c, 0), data, 'same.bin', { group: 'g1' })
    const b = await upload(url(c, 3), data, 'same.bin', { group: 'g1' })
    expect(a.body.id).toBe(b.body.id)
    // `curl -T same.bin http://node/files/` (PUT /files/<name>) and a Content-Disposition name.
    const put = await fetch(`${url(c, 1)}/files/same.bin`, { method: 'PUT', body: data })
    expect(put.status).toBe(201)
    expect(put.headers.get('location')).toBe(`/files/${String(a.body.id)}`)
    expect((await put.json() as { id: string }).id).toBe(a.body.id)
    const disposition = await fetch(`${url(c, 2)}/files`, { method: 'POST', body: data, headers: { 'content-disposition': 'attachment; filename="same.bin"' } })
    expect((await disposition.json() as { id: string }).id).toBe(a.body.id)
  })

  it('200 concurrent small uploads: each one is on every replica the moment it is acknowledged', async () => {
    const files = Array.from({ length: 200 }, (_, i) => randomBytes(512 + i * 37, 1000 + i))
    const checked = await Promise.all(files.map(async (data, i) => {
      const { status, body } = await upload(url(c, i % 4), data, `small-${i}.bin`, { group: 'g1' })
      expect(status).toBe(201)
      const id = body.id as string
      // No await between the ack and these checks: no time for any lag to hide. Every replica holds it durably:
      // committed, or prepared with the decision on its way (replica/commit.ts).
      const states = [0, 1, 2].map(n => c.node(n).store.index.get(id)?.state ?? (c.node(n).store.prepared.forFile(id).length > 0 ? 'prepared' : undefined))
      for (const s of states) expect(['present', 'prepared']).toContain(s)
      const located = await c.node(n3(i)).replica.open(id)
      expect(located.manifest.size).toBe(data.byteLength)
      return { id, data }
    }))
    for (const { id, data } of checked.slice(0, 20)) {
      for (const n of [0, 1, 2]) {
        expect(sha256hex(await readWhole(c.node(n), id))).toBe(sha256hex(data))
      }
    }
  })

  it('bad input gets a clear 4xx and writes nothing', async () => {
    const before = (await chunkFiles(c.node(0))).length
    const cases: Array<[string, RequestInit, number, string]> = [
      ['/files/not-a-cid', {}, 400, 'ERR_INVALID_FILE_ID'],
      ['/files/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', {}, 400, 'ERR_INVALID_FILE_ID'],
      ['/api/files/..%2F..%2Fetc%2Fpasswd', {}, 400, 'ERR_INVALID_FILE_ID'],
      ['/files/bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', {}, 404, 'ERR_FILE_NOT_FOUND'],
      ['/files?name=x.bin&group=nope', { method: 'POST', body: 'abc' }, 404, 'ERR_GROUP_NOT_FOUND'],
      ['/files?name=a%2Fb.bin&group=g1', { method: 'POST', body: 'abc' }, 400, 'ERR_INVALID_FILE_NAME'],
      ['/files?name=..&group=g1', { method: 'POST', body: 'abc' }, 400, 'ERR_INVALID_FILE_NAME'],
      [`/files?name=${'x'.repeat(256)}&group=g1`, { method: 'POST', body: 'abc' }, 400, 'ERR_INVALID_FILE_NAME'],
      ['/files?group=g1', { method: 'POST', body: 'abc' }, 400, 'ERR_INVALID_FILE_NAME'],
      ['/files?name=a.bin&quorum=zero', { method: 'POST', body: 'abc' }, 400, 'ERR_BAD_REQUEST'],
      ['/files?name=a.bin&group=g1&quorum=9', { method: 'POST', body: 'abc' }, 503, 'ERR_QUORUM']
    ]
    for (const [path, init, status, code] of cases) {
      const res = await fetch(`${url(c, 0)}${path}`, init)
      expect({ path, status: res.status, body: await res.json() }).toMatchObject({ path, status, body: { code } })
    }
    // A name of 255 bytes is fine; 256 is not (above) — and multi-byte characters count as bytes.
    const res = await fetch(`${url(c, 0)}/files?name=${encodeURIComponent('é'.repeat(128))}&group=g1`, { method: 'POST', body: 'abc' })
    expect(res.status).toBe(400)
    expect((await chunkFiles(c.node(0))).length).toBe(before)
  })
})

function n3 (i: number): number { return i % 4 }

describe('the disk reserve', () => {
  it('an upload that would cross --reserve is refused with 507 and leaves nothing behind', async () => {
    const c = await twoGroups({ nodes: 4, configure: (i) => i === 1 ? { reserve: { percent: 100 } } : {} })
    try {
      // Node 1 keeps its whole disk free: as coordinator it refuses at once; as a replica it refuses its copy.
      const data = randomBytes(2 * 1024 * 1024, 9)
      for (const via of [1, 0, 3]) {
        const res = await fetch(`${url(c, via)}/files?name=big.bin&group=g1`, { method: 'POST', body: data })
        expect({ via, status: res.status }).toEqual({ via, status: 507 })
        expect(await res.json()).toMatchObject({ code: 'ERR_INSUFFICIENT_STORAGE' })
      }
      // Without Content-Length the members find out chunk by chunk: still 507, still nothing kept.
      const streamed = new ReadableStream<Uint8Array>({
        start (ctl) { ctl.enqueue(data.subarray(0, 1 << 20)); ctl.enqueue(data.subarray(1 << 20)); ctl.close() }
      })
      const res = await fetch(`${url(c, 0)}/files?name=big.bin&group=g1`, { method: 'POST', body: streamed, duplex: 'half' } as RequestInit)
      const answer = { status: res.status, body: await res.json() }
      expect(answer).toMatchObject({ status: 507, body: { code: 'ERR_INSUFFICIENT_STORAGE' } })
      // The members clean up as their side of the aborted transfer ends.
      await c.waitFor(() => [0, 1, 2].every(i => c.node(i).status.load === 0), { message: 'transfers ended' })
      for (const i of [0, 1, 2]) {
        expect(c.node(i).store.index.stats().present.files).toBe(0)
        expect({ i, chunks: await chunkFiles(c.node(i)), prepared: c.node(i).store.prepared.size }).toEqual({ i, chunks: [], prepared: 0 })
      }
    } finally {
      await c.close()
    }
  })
})

describe('delete', () => {
  it('a read under way when its file is deleted finishes, from a holder and from a node of another group; a new read is 404', async () => {
    const c = await twoGroups()
    try {
      for (const reader of [0, 3]) {
        const data = randomBytes(24 * 1024 * 1024, 20 + reader)
        const id = (await upload(url(c, 1), data, 'watched.bin', { group: 'g1' })).body.id as string
        const res = await fetch(`${url(c, reader)}/files/${id}`)
        const body = res.body?.getReader()
        if (body == null) throw new Error('no body')
        const first = await body.read()
        const parts = [first.value ?? new Uint8Array()]
        expect(parts[0]?.byteLength, 'the read is under way, far from its end').toBeLessThan(data.byteLength / 2)
        expect((await fetch(`${url(c, 1)}/files/${id}`, { method: 'DELETE' })).status).toBe(200)
        // A new read is a 404 at once through a holder, and through a node that had not located it (one that had may
        // trust its location for LOCATE_CACHE_TTL_MS: docs/guarantees.md).
        for (const i of reader === 0 ? [0, 2, 3] : [0, 2]) expect((await download(url(c, i), id)).status, `a new read through ${i}`).toBe(404)
        for (let r = await body.read(); !r.done; r = await body.read()) parts.push(r.value)
        expect(sha256hex(Buffer.concat(parts)), `the read through ${reader} got every byte`).toBe(sha256hex(data))
      }
    } finally {
      await c.close()
    }
  }, 120_000)

  it('a delete while a member is offline sticks: the member returns and the file stays deleted everywhere', async () => {
    // A short grace: the deleted file's chunks are seen to go (after the reads under way could have finished).
    const c = await twoGroups({ nodes: 4, configure: () => ({ deletedReadGraceMs: 1000 }) })
    try {
      const data = randomBytes(1024 * 1024 + 5, 10)
      const { body } = await upload(url(c, 0), data, 'gone.bin', { group: 'g1' })
      const id = body.id as string
      await c.kill(2)
      await c.waitFor(() => c.node(0).membership.view.get(c.peerId(2))?.state === 'OFFLINE', { message: 'node 2 OFFLINE' })
      const res = await fetch(`${url(c, 3)}/files/${id}`, { method: 'DELETE' })
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({ id, group: 'g1' })
      const node2 = await c.restart(2)
      // Before it syncs, node 2 still has the file durably: in its index, or prepared with the decision on its way...
      expect(node2.store.index.get(id)?.state ?? (node2.store.prepared.forFile(id).length > 0 ? 'prepared' : undefined)).toMatch(/^(present|prepared)$/)
      await node2.ready({ signal: AbortSignal.timeout(20_000) })
      // ...after, the tombstone won, and its chunks are gone.
      expect(node2.store.index.get(id)?.state).toBe('deleted')
      await c.waitFor(() => node2.store.chunks.digests().length === 0, { message: 'its chunks are gone once the grace ends' })
      // And node 2's old copy did not bring it back anywhere, even after more sync rounds.
      for (const round of [1, 2]) {
        for (const i of [0, 1, 2]) {
          c.node(i).replica.sync.kick()
          expect({ round, i, state: c.node(i).store.index.get(id)?.state }).toEqual({ round, i, state: 'deleted' })
        }
      }
      for (const i of [0, 1, 2, 3]) expect((await download(url(c, i), id)).status).toBe(404)
    } finally {
      await c.close()
    }
  })
})

describe('integrity', () => {
  it('a chunk altered on one replica\'s disk never reaches a client; the replica reports it and sync repairs it', async () => {
    const c = await twoGroups()
    try {
      const data = randomBytes(4 * 1024 * 1024, 11)
      const { body } = await upload(url(c, 3), data, 'victim.bin', { group: 'g1' })
      const id = body.id as string
      const bad = c.node(1)
      const manifest = (await bad.replica.open(id)).manifest
      const digest = manifest.chunks[2] as Uint8Array
      const good = Uint8Array.from(await storedChunkBytes(bad.store, bad.db, digest))
      await alterStoredChunk(bad.store, bad.db, digest, 1000)
      const corrupt = new Promise<void>(resolve => { bad.store.addEventListener('chunk:corrupt', () => { resolve() }, { once: true }) })
      // A seek into the altered leaf on the damaged replica (the one-read path for a small Range): it
      // detects the bad chunk and the range comes from a good copy elsewhere.
      const from = 2 * 1024 * 1024 + 900
      const seek = await download(url(c, 1), id, { range: `bytes=${from}-${from + 65_535}` })
      expect(seek.status).toBe(206)
      expect(sha256hex(seek.bytes)).toBe(sha256hex(data.subarray(from, from + 65_536)))
      // The damaged replica itself serves the read: it reads a good copy of the chunk elsewhere.
      const d = await download(url(c, 1), id)
      expect(d.status).toBe(200)
      expect(sha256hex(d.bytes)).toBe(sha256hex(data))
      await corrupt
      // Repaired: the chunk on disk is right again and the copy is present.
      await c.waitFor(() => bad.store.index.get(id)?.state === 'present', { message: 'copy repaired' })
      expect(sha256hex(await storedChunkBytes(bad.store, bad.db, digest))).toBe(sha256hex(good))
      // Reads through a node that holds no copy are right too, whichever replica it picks.
      for (let k = 0; k < 3; k++) expect(sha256hex((await download(url(c, 3), id)).bytes)).toBe(sha256hex(data))
    } finally {
      await c.close()
    }
  })
})
