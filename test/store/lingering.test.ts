/**
 * A deleted file's chunks stay for the reads under way: pinned for a grace
 * (reads through other nodes), or held by a read for as long as it lasts (a
 * holder's own reads); then they go like any unused chunk.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { rm } from 'node:fs/promises'
import { openTempStore, tempStore } from '../helpers/temp-store.ts'
import type { LocalStore } from '../../src/store/local-store.ts'
import { chunkDigest } from '../../src/content/chunk-hash.ts'
import { createManifest } from '../../src/content/manifest.ts'

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f() })

async function openStore (deletedReadGraceMs: number, dir?: string): Promise<LocalStore> {
  return (await tempStore(cleanup, { deletedReadGraceMs }, dir)).store
}

/** A file of `parts` one-chunk parts, added; returns its id and chunk digests. */
async function addFile (store: LocalStore, parts: string[], name: string): Promise<{ id: string, digests: Uint8Array[] }> {
  const data = parts.map(p => new TextEncoder().encode(p))
  const digests = await Promise.all(data.map(async d => chunkDigest(d)))
  const staged = await Promise.all(data.map(async (d, i) => store.putChunk(digests[i] as Uint8Array, d)))
  const manifest = await createManifest({ size: parts.length, chunkSize: 1, chunks: digests, name, mime: 'application/octet-stream' })
  const id = manifest.id.toString()
  await store.commitAdd({ kind: 'add', id, group: 'g', ts: store.clock.next(), origin: 'me', manifest: manifest.bytes, size: manifest.size, name, mime: manifest.mime, createdAt: 1, chunks: digests }, staged)
  return { id, digests }
}

const remove = async (store: LocalStore, id: string): Promise<unknown> => store.applyDelete({ kind: 'delete', id, group: 'g', ts: store.clock.next(), origin: 'me' })
const held = (store: LocalStore, digests: Uint8Array[]): boolean[] => digests.map(d => store.chunks.has(d))

describe('a deleted file\'s chunks', () => {
  it('stay readable through the grace (with the manifest a segment request asks for), then go; a chunk another file shares stays', async () => {
    const store = await openStore(60_000)
    const f = await addFile(store, ['a', 'b', 'shared'], 'f')
    const other = await addFile(store, ['shared', 'c'], 'other')
    await remove(store, f.id)
    expect(store.index.get(f.id)?.state).toBe('deleted')
    expect(store.lingering.manifest(f.id)).toBeInstanceOf(Uint8Array)
    for (const d of f.digests) expect(new TextDecoder().decode((await store.readChunk(d)).data)).toMatch(/^(a|b|shared)$/)
    store.lingering.clear()
    expect(held(store, f.digests)).toEqual([false, false, true])
    expect(held(store, other.digests)).toEqual([true, true])
    expect(store.lingering.manifest(f.id)).toBeUndefined()
  })

  it('go by themselves when the grace ends', async () => {
    const store = await openStore(50)
    const f = await addFile(store, ['x', 'y'], 'f')
    await remove(store, f.id)
    expect(held(store, f.digests)).toEqual([true, true])
    await vi.waitFor(() => { expect(held(store, f.digests)).toEqual([false, false]) }, { timeout: 30_000, interval: 20 })
    expect(store.lingering.size).toBe(0)
  })

  it('held by a read stay, with no grace at all, until the read lets go (once)', async () => {
    const store = await openStore(0)
    const f = await addFile(store, ['p', 'q'], 'f')
    const release = store.holdChunks(f.digests)
    await remove(store, f.id)
    expect(store.lingering.manifest(f.id)).toBeUndefined()
    expect(held(store, f.digests)).toEqual([true, true])
    const g = await addFile(store, ['q'], 'g')
    release()
    expect(held(store, f.digests)).toEqual([false, true])
    release()
    expect(held(store, g.digests)).toEqual([true])
  })

  it('held by two reads through the end of the grace go when the last read lets go', async () => {
    const store = await openStore(60_000)
    const f = await addFile(store, ['h', 'i'], 'f')
    const first = store.holdChunks(f.digests)
    const second = store.holdChunks(f.digests.slice(1))
    await remove(store, f.id)
    store.lingering.clear()
    expect(held(store, f.digests)).toEqual([true, true])
    first()
    expect(held(store, f.digests)).toEqual([false, true])
    second()
    expect(held(store, f.digests)).toEqual([false, false])
  })

  it('stay for a file added again within the grace, after the grace ends', async () => {
    const store = await openStore(60_000)
    const f = await addFile(store, ['m', 'n'], 'f')
    await remove(store, f.id)
    const again = await addFile(store, ['m', 'n'], 'f')
    expect(again.id).toBe(f.id)
    expect(store.index.get(f.id)?.state).toBe('present')
    store.lingering.clear()
    expect(held(store, f.digests)).toEqual([true, true])
  })

  it('of a grace a crash cut short are collected at the next start', async () => {
    // Never stopped: the crash is that its database is closed under it.
    const { store: crashed, db, dir } = await openTempStore(undefined, { deletedReadGraceMs: 60_000 })
    cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const f = await addFile(crashed, ['s', 't'], 'f')
    const kept = await addFile(crashed, ['t', 'u'], 'kept')
    // The grace's timer is a fake one that never fires: the crash takes it (and the pins) away; its row stays.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      await crashed.applyDelete({ kind: 'delete', id: f.id, group: 'g', ts: crashed.clock.next(), origin: 'me' })
    } finally {
      vi.useRealTimers()
    }
    expect(held(crashed, f.digests)).toEqual([true, true])
    await crashed.chunks.stop()
    await db.close()
    const store = await openStore(60_000, dir)
    expect(held(store, f.digests)).toEqual([false, true])
    expect(held(store, kept.digests)).toEqual([true, true])
    expect(store.lingering.size).toBe(0)
  })
})
