/**
 * LocalStore.isSettled, which lets a sync pull skip the log entries this
 * node already holds: true only when the index holds the entry's stamp or a
 * newer one AND no prepared upload of the file waits to be decided — an
 * entry that could settle a prepared upload is never skipped.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { tempStore } from '../helpers/temp-store.ts'
import type { LocalStore } from '../../src/store/local-store.ts'
import { chunkDigest } from '../../src/content/chunk-hash.ts'
import { createManifest } from '../../src/content/manifest.ts'
import type { PreparedUpload } from '../../src/store/prepared.ts'

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f() })

async function prepare (store: LocalStore, text: string, origin: string): Promise<PreparedUpload> {
  const data = new TextEncoder().encode(text)
  const digest = await chunkDigest(data)
  const staged = await store.putChunk(digest, data)
  const manifest = await createManifest({ size: data.byteLength, chunkSize: 1024, chunks: [digest], name: 'a.bin', mime: 'application/octet-stream' })
  const upload: PreparedUpload = { id: manifest.id.toString(), ts: store.clock.next(), origin, group: 'g1', manifest: manifest.bytes, createdAt: 1, copies: 2, members: ['m1'], at: Date.now() }
  await store.prepare(upload, [staged], manifest)
  return upload
}

describe('LocalStore.isSettled', () => {
  it('is true only for a stamp the index holds (or has moved past) with nothing prepared left to decide', async () => {
    const { store } = await tempStore(cleanup)
    const u = await prepare(store, 'same bytes', 'coord')
    // Prepared, undecided: the entry that commits it must be applied.
    expect(store.isSettled(u)).toBe(false)
    await store.commitPrepared(u)
    expect(store.isSettled(u)).toBe(true)
    expect(store.isSettled({ ...u, ts: u.ts - 1 })).toBe(true)
    expect(store.isSettled({ ...u, ts: u.ts + 1 })).toBe(false)
    expect(store.isSettled({ ...u, origin: 'zzz' })).toBe(false)
    // A newer upload of the same bytes prepared here: even the stamp the index holds is not settled now.
    const again = await prepare(store, 'same bytes', 'other')
    expect(again.id).toBe(u.id)
    expect(store.isSettled(u)).toBe(false)
    await store.abortPrepared(again)
    expect(store.isSettled(u)).toBe(true)
    expect(store.isSettled({ id: 'bafyunknown', ts: 1, origin: 'x' })).toBe(false)
    // A sync page's runs of settled entries, checked in one read transaction (and inside a write one too).
    const unknown = { id: 'bafyunknown', ts: 1, origin: 'x' }
    expect(store.firstUnsettled([u, u, unknown, u])).toBe(2)
    expect(store.firstUnsettled([u, u, unknown, u], 3)).toBe(4)
    expect(store.firstUnsettled([])).toBe(0)
    const prepared = await prepare(store, 'other bytes', 'coord')
    expect(store.firstUnsettled([u, prepared])).toBe(1)
  })
})
