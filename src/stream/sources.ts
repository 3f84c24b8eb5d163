/** Where verified chunks come from: this node's disk, or a replica over /dsm/get. */
import { FileNotFoundError } from '../errors.ts'
import { chunkLength, chunksForRange } from '../content/manifest.ts'
import { fetchChunks } from './get.ts'
import type { Chunk } from './get.ts'
import type { ChunkSource } from './failover.ts'
import type { Manifest } from '../content/manifest.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { BufferPool } from '../util/buffer-pool.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions } from '@libp2p/interface'

export const LOCAL_SOURCE_ID = 'local'
/** Chunks read from the local disk ahead of the one being sent. */
const LOCAL_READ_AHEAD_CHUNKS = 3

/**
 * Chunks from the local store, verified as they are read (a corrupt one
 * throws and is reported). `pooled`: read into the store's reusable buffers,
 * for a consumer that gives each chunk back (LocalStore.readBuffers).
 */
export function localSource (store: LocalStore, init: { pooled?: boolean } = {}): ChunkSource {
  return {
    id: LOCAL_SOURCE_ID,
    async * fetch (manifest: Manifest, offset: number, length: number, options: AbortOptions): AsyncIterable<Chunk> {
      if (store.index.stamp(manifest.id.toString())?.state !== 'present') throw new FileNotFoundError('not present locally')
      const { first, last } = chunksForRange(manifest, offset, length)
      // Only the leaves the range covers (a seek reads 64 KiB, not the whole chunk).
      const read = async (index: number): Promise<Chunk> => {
        const chunkStart = index * manifest.chunkSize
        const from = Math.max(0, offset - chunkStart)
        const to = Math.min(chunkLength(manifest, index), offset + length - chunkStart)
        const bytes = await store.readChunk(manifest.chunks[index] as Uint8Array, { from, to }, init)
        return { index, data: bytes.data, start: bytes.start }
      }
      // The next chunks are read while this one is sent: the disk and the socket work at once.
      const ahead: Array<Promise<Chunk>> = []
      let next = first
      const fill = (): void => {
        while (next <= last && ahead.length < LOCAL_READ_AHEAD_CHUNKS) {
          const p = read(next++)
          p.catch(() => {})
          ahead.push(p)
        }
      }
      for (let index = first; index <= last; index++) {
        options.signal?.throwIfAborted()
        fill()
        yield await (ahead.shift() as Promise<Chunk>)
      }
    }
  }
}

/**
 * Chunks from a replica; fetchChunks verifies each against the manifest.
 * `pool`: big chunks arrive in its buffers, for a consumer that gives each
 * back or claims it (../util/buffer-pool.ts).
 */
export function remoteSource (dialer: Dialer, peer: string, init: { pool?: BufferPool } = {}): ChunkSource {
  return {
    id: peer,
    fetch: (manifest, offset, length, options) => fetchChunks(dialer, peer, manifest, offset, length, { ...options, ...init })
  }
}
