/**
 * LocalStore.stageChunk: a chunk the store holds already. A small (inline) one is staged again without a
 * look-up, and its insert keeps the row that is there; a large one (in a volume) is not written twice.
 */
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { tempStore } from '../helpers/temp-store.ts'
import type { LocalStore } from '../../src/store/local-store.ts'
import { chunkDigest } from '../../src/content/chunk-hash.ts'
import { createManifest } from '../../src/content/manifest.ts'
import { INLINE_CHUNK_BYTES } from '../../src/store/chunk-store.ts'

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f() })

/** One upload of `data` named `name`, staged with stageChunk, prepared and committed; what was staged. */
async function upload (store: LocalStore, data: Uint8Array, name: string): Promise<{ id: string, staged: number }> {
  const digest = await chunkDigest(data)
  const staged = await store.stageChunk(digest, data)
  const manifest = await createManifest({ size: data.byteLength, chunkSize: 1 << 20, chunks: [digest], name, mime: 'application/octet-stream' })
  const u = { id: manifest.id.toString(), ts: store.clock.next(), origin: 'coord', group: 'g1', manifest: manifest.bytes, createdAt: 1, copies: 1, members: [], at: Date.now() }
  await store.prepare(u, staged, manifest)
  expect(await store.commitPrepared(u)).toBe('added')
  return { id: u.id, staged: staged.length }
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('LocalStore.stageChunk', () => {
  for (const [what, bytes] of [['an inline chunk', 4096], ['a chunk in a volume', INLINE_CHUNK_BYTES + 1]] as const) {
    it(`${what} already stored: both files read it, and it stays while either refers to it`, async () => {
      const { store } = await tempStore(cleanup)
      const data = new Uint8Array(bytes).map((_, i) => (i * 7 + 3) & 0xff)
      const digest = await chunkDigest(data)
      const a = await upload(store, data, 'a.bin')
      const at = store.chunks.locate(digest)
      const b = await upload(store, data, 'b.bin')
      // Inline: staged again (no look-up) and kept as it was; in a volume: found, not appended again.
      expect(b.staged).toBe(bytes <= INLINE_CHUNK_BYTES ? 1 : 0)
      expect(store.chunks.locate(digest)).toEqual(at)
      expect(store.chunks.digests()).toHaveLength(1)
      await store.applyDelete({ kind: 'delete', id: a.id, group: 'g1', ts: store.clock.next(), origin: 'coord' })
      expect(store.index.get(b.id)?.state).toBe('present')
      expect(sha((await store.readChunk(digest)).data)).toBe(sha(data))
    })
  }
})

describe('LocalStore.commitPrepared', () => {
  it('a chunk dropped as damaged between prepare and commit leaves the file pending, never present', async () => {
    const { store } = await tempStore(cleanup)
    const data = new Uint8Array(4096).fill(9)
    const digest = await chunkDigest(data)
    const manifest = await createManifest({ size: data.byteLength, chunkSize: 1 << 20, chunks: [digest], name: 'a.bin', mime: 'application/octet-stream' })
    const u = { id: manifest.id.toString(), ts: store.clock.next(), origin: 'coord', group: 'g1', manifest: manifest.bytes, createdAt: 1, copies: 1, members: [], at: Date.now() }
    await store.prepare(u, await store.stageChunk(digest, data), manifest)
    // What a scrub or a read does when the chunk's bytes fail their check.
    store.chunkCorrupt(digest, store.chunks.locate(digest) as { volume: number, offset: number })
    expect(await store.commitPrepared(u)).toBe('added')
    expect(store.index.get(u.id)?.state).toBe('pending')
    // And with nothing dropped, present at once.
    const other = new Uint8Array(4096).fill(8)
    const b = await upload(store, other, 'b.bin')
    expect(store.index.get(b.id)?.state).toBe('present')
  })
})
