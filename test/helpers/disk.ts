/**
 * Damage on a running node's disk, as a failing disk would do it: a chunk's
 * stored bytes altered behind the store's back (inline in the index, or in
 * its volume file). The store finds out only when it reads them.
 */
import { open } from 'node:fs/promises'
import type { LocalStore } from '../../src/store/local-store.ts'
import type { Db } from '../../src/store/db.ts'

/** The chunk's bytes as stored, unchecked. */
export async function storedChunkBytes (store: LocalStore, db: Db, digest: Uint8Array): Promise<Uint8Array> {
  const at = store.chunks.locate(digest)
  if (at == null) throw new Error('chunk not stored')
  if (at.volume === 0) return (db.sql.prepare('SELECT data FROM chunks WHERE digest = ?').get(digest) as { data: Uint8Array }).data
  return store.chunks.volumes.read(at.volume, at.offset, at.length)
}

/** Flip the byte at `offset` of a stored chunk. */
export async function alterStoredChunk (store: LocalStore, db: Db, digest: Uint8Array, offset: number): Promise<void> {
  const at = store.chunks.locate(digest)
  if (at == null) throw new Error('chunk not stored')
  if (at.volume === 0) {
    const data = Uint8Array.from(await storedChunkBytes(store, db, digest))
    data[offset] = (data[offset] ?? 0) ^ 0xff
    db.sql.prepare('UPDATE chunks SET data = ? WHERE digest = ?').run(data, digest)
    return
  }
  const fh = await open(store.chunks.volumes.path(at.volume), 'r+')
  try {
    const byte = new Uint8Array(1)
    await fh.read(byte, 0, 1, at.offset + offset)
    await fh.write(Uint8Array.of((byte[0] ?? 0) ^ 0xff), 0, 1, at.offset + offset)
  } finally {
    await fh.close()
  }
}
