/**
 * A key record carried by an upload (store side, replica/carried-name.ts):
 * prepared durably with the upload and invisible until it commits; applied
 * in the commit's transaction (the coordinator's copy queueing the file the
 * replaced value owned); dropped with an abort; and a store that restarts
 * with such an upload undecided answers no name read until it is decided.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { rm } from 'node:fs/promises'
import { openTempStore } from '../helpers/temp-store.ts'
import type { TempStore } from '../helpers/temp-store.ts'
import { chunkDigest } from '../../src/content/chunk-hash.ts'
import { createManifest } from '../../src/content/manifest.ts'
import { LocalStore } from '../../src/store/local-store.ts'
import type { PreparedName, PreparedUpload } from '../../src/store/prepared.ts'

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f() })

/** Values here are the owned file's ID as text (the replica layer's records are CBOR; the store never looks). */
const ownedFile = (v: Uint8Array | undefined): string | undefined => v == null ? undefined : new TextDecoder().decode(v)
const value = (file: string): Uint8Array => new TextEncoder().encode(file)

/** A started store on `dir` (a new one if none); the tests stop it (and restart on the same directory). */
async function openStore (dir?: string): Promise<TempStore> {
  const t = await openTempStore(dir, { ownedFile })
  if (dir == null) cleanup.push(async () => { await rm(t.dir, { recursive: true, force: true }) })
  return t
}

/** Prepare a one-chunk upload carrying `name`; returns its key. */
async function prepareWith (store: LocalStore, text: string, name: PreparedName): Promise<PreparedUpload> {
  const data = new TextEncoder().encode(text)
  const digest = await chunkDigest(data)
  const staged = await store.putChunk(digest, data)
  const manifest = await createManifest({ size: data.byteLength, chunkSize: 1024, chunks: [digest], name: `${text}.bin`, mime: 'application/octet-stream' })
  const upload: PreparedUpload = { id: manifest.id.toString(), ts: store.clock.next(), origin: 'coord', group: 'g1', manifest: manifest.bytes, createdAt: 1, copies: 2, members: ['m1'], at: Date.now(), name }
  await store.prepare(upload, [staged], manifest)
  return upload
}

const carried = (store: LocalStore, key: string, file: string, reclaims: boolean): PreparedName =>
  ({ bucket: 'media', key, live: true, ts: store.clock.next(), origin: 'coord', value: value(file), reclaims })

describe('a key record carried by an upload', () => {
  it('is invisible while prepared, applied with the commit (queueing the replaced value\'s file), gone with an abort', async () => {
    const { store, db } = await openStore()
    cleanup.push(async () => { await store.stop(); await db.close() })
    await store.applyName({ bucket: 'media', key: '', group: 'g1', live: true, ts: store.clock.next(), origin: 'coord', value: value('bucket') })
    await store.applyName({ bucket: 'media', key: 'a.mp4', group: 'g1', live: true, ts: store.clock.next(), origin: 'coord', value: value('old-file') })

    const u = await prepareWith(store, 'new bytes', carried(store, 'a.mp4', 'new-file', true))
    expect(ownedFile(store.names.get('media', 'a.mp4')?.value)).toBe('old-file')
    await store.commitPrepared(u)
    expect(store.names.get('media', 'a.mp4')).toMatchObject({ ts: u.name?.ts, origin: 'coord', live: true })
    expect(ownedFile(store.names.get('media', 'a.mp4')?.value)).toBe('new-file')
    expect(store.index.get(u.id)?.state).toBe('present')
    expect(store.reclaims.due(Number.MAX_SAFE_INTEGER, 10).map(r => r.id)).toEqual(['old-file'])

    // A member's copy applies the record and reclaims nothing; an aborted upload's record never shows.
    const member = await prepareWith(store, 'member bytes', carried(store, 'b.mp4', 'b-file', false))
    await store.commitPrepared(member)
    expect(ownedFile(store.names.get('media', 'b.mp4')?.value)).toBe('b-file')
    const aborted = await prepareWith(store, 'aborted bytes', carried(store, 'c.mp4', 'c-file', true))
    await store.abortPrepared(aborted)
    expect(store.names.get('media', 'c.mp4')).toBeUndefined()
    expect(store.reclaims.size).toBe(1)
  })

  it('an older carried record loses to the newer one the table holds', async () => {
    const { store, db } = await openStore()
    cleanup.push(async () => { await store.stop(); await db.close() })
    const stale = carried(store, 'k', 'stale', true)
    await store.applyName({ bucket: 'media', key: 'k', group: 'g1', live: true, ts: store.clock.next(), origin: 'other', value: value('newer') })
    const u = await prepareWith(store, 'stale bytes', stale)
    await store.commitPrepared(u)
    expect(ownedFile(store.names.get('media', 'k')?.value)).toBe('newer')
    expect(store.reclaims.size).toBe(0)
  })

  it('after a restart with one undecided, name reads wait until it is decided', async () => {
    const { store, db, dir } = await openStore()
    const u = await prepareWith(store, 'bytes', carried(store, 'k', 'file', false))
    expect(store.namesSettled()).toBe(true) // prepared in this run: the protocol accounts for it
    await store.stop()
    await db.close()

    const again = await openStore(dir)
    cleanup.push(async () => { await again.store.stop(); await again.db.close() })
    expect(again.store.namesSettled()).toBe(false)
    expect(again.store.prepared.get(u)?.name).toMatchObject({ bucket: 'media', key: 'k', ts: u.name?.ts, reclaims: false })
    await again.store.commitPrepared(u)
    expect(again.store.namesSettled()).toBe(true)
    expect(ownedFile(again.store.names.get('media', 'k')?.value)).toBe('file')
  })
})
