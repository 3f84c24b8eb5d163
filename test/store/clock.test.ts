/**
 * The store's clock after a restart is past every stamp its index holds, so an upload's stamp is newer than
 * its file's row without reading it (replica/ingest.ts): a file deleted with a stamp from a clock ahead of
 * ours comes back when it is uploaded again, restart or not.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openDb } from '../../src/store/db.ts'
import { openTempStore } from '../helpers/temp-store.ts'
import { chunkDigest } from '../../src/content/chunk-hash.ts'
import { createManifest } from '../../src/content/manifest.ts'

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f() })

describe('the store clock', () => {
  it('starts past every stamp in the index, a tombstone from a clock ahead of ours included', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsm-clock-'))
    cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const ahead = Date.now() + 3_600_000
    const data = new Uint8Array(100).fill(3)
    const digest = await chunkDigest(data)
    const manifest = await createManifest({ size: data.byteLength, chunkSize: 1024, chunks: [digest], name: 'a.bin', mime: 'application/octet-stream' })
    const id = manifest.id.toString()
    let s = await openTempStore(dir)
    // A file added here, then another one, then the first deleted by a peer whose clock is an hour ahead.
    const add = { kind: 'add' as const, id, group: 'g1', ts: s.store.clock.next(), origin: 'me', manifest: manifest.bytes, size: data.byteLength, name: 'a.bin', mime: 'application/octet-stream', createdAt: 1, chunks: [digest] }
    await s.store.commitAdd(add, [await s.store.putChunk(digest, data)])
    await s.store.applyDelete({ kind: 'delete', id, group: 'g1', ts: ahead, origin: 'peer' })
    await s.close()
    s = await openTempStore(dir)
    cleanup.push(s.close)
    const ts = s.store.clock.next()
    expect(ts).toBeGreaterThan(ahead)
    // Uploaded again with that stamp: it wins over the tombstone.
    expect(await s.store.commitAdd({ ...add, ts }, [await s.store.putChunk(digest, data)])).toBe('added')
    expect(s.store.index.get(id)?.state).toBe('present')
  })

  it('the newest stamp is one step down an index, not a scan', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsm-clock-'))
    cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const db = openDb(dir, { checkpoints: false })
    cleanup.push(async () => { await db.close() })
    const plan = db.sql.prepare('EXPLAIN QUERY PLAN SELECT COALESCE(MAX(ts), 0) AS ts FROM files').all() as Array<{ detail: string }>
    expect(plan.map(p => p.detail).join(' ')).toMatch(/files_by_ts/)
  })
})
