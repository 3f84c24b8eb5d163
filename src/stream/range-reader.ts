/**
 * Read a byte range of a file from an ordered list of sources (the local
 * store first when this node holds the file, then replicas), verified chunk
 * by chunk, with the failover rules of ./failover.ts: the consumer sees one
 * uninterrupted, byte-identical stream.
 */
import { pipe } from 'it-pipe'
import { chunksForRange } from '../content/manifest.ts'
import { SourcePool, fetchInOrder } from './failover.ts'
import type { ChunkSource, FailoverOptions } from './failover.ts'
import type { Chunk } from './get.ts'
import type { Manifest } from '../content/manifest.ts'

export type { ChunkSource }
export type ReadRangeOptions = FailoverOptions

/**
 * Yield the verified chunks first..last, in order, from the first source
 * that can serve each one (failing over on error, bad chunk or stall).
 */
export async function * readChunks (manifest: Manifest, first: number, last: number, sources: ChunkSource[], options: ReadRangeOptions = {}): AsyncGenerator<Chunk> {
  const to = Math.min(manifest.size, (last + 1) * manifest.chunkSize)
  yield * fetchInOrder(manifest, first, last, first * manifest.chunkSize, to, new SourcePool(sources), options)
}

/**
 * Yield the bytes of [offset, offset + length) (length already clipped to the file). Sources are asked for
 * exactly that range: the first and last chunks come as the leaves that cover it (a 64 KiB seek reads and
 * checks 64–128 KiB, not two whole chunks).
 */
export async function * readRange (manifest: Manifest, offset: number, length: number, sources: ChunkSource[], options: ReadRangeOptions = {}): AsyncGenerator<Uint8Array> {
  if (length <= 0) return
  const { first, last } = chunksForRange(manifest, offset, length)
  // Sources (failing over) → verified chunks in order → the bytes of the range.
  yield * pipe(
    fetchInOrder(manifest, first, last, offset, offset + length, new SourcePool(sources), options),
    async function * (chunks) { yield * sliceChunks(manifest, offset, length, chunks) }
  )
}

/** Cut chunks (in order; whole, or leaves of them: see Chunk.start) down to the bytes of [offset, offset + length). */
export async function * sliceChunks (manifest: Manifest, offset: number, length: number, chunks: AsyncIterable<Chunk>): AsyncGenerator<Uint8Array> {
  const end = offset + length
  for await (const chunk of chunks) {
    // Where chunk.data starts in the file (a leaves-only chunk starts inside its chunk).
    const dataStart = chunk.index * manifest.chunkSize + (chunk.start ?? 0)
    yield chunk.data.subarray(Math.max(0, offset - dataStart), Math.min(chunk.data.byteLength, end - dataStart))
  }
}
