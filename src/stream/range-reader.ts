/**
 * Read a byte range of a file from an ordered list of sources (the local
 * store first when this node holds the file, then replicas), verified chunk
 * by chunk. When a source fails, sends a bad chunk or stalls (no chunk for
 * `stallTimeoutMs`), reading continues from the next unsent chunk on the next
 * source: the consumer sees one uninterrupted, byte-identical stream.
 */
import { MAX_STALL_RETRIES, STALL_TIMEOUT_MS } from '../constants.ts'
import { toError } from '../errors.ts'
import { chunksForRange } from '../content/manifest.ts'
import { noSourceLeft } from './sources.ts'
import { IdleTimeout } from '../util/abort.ts'
import type { Chunk } from './get.ts'
import type { Manifest } from '../content/manifest.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface ChunkSource {
  /** 'local' or a peer id. */
  readonly id: string
  /** Verified chunks of [offset, offset + length), in order. */
  fetch(manifest: Manifest, offset: number, length: number, options: AbortOptions): AsyncIterable<Chunk>
}

export interface ReadRangeOptions extends AbortOptions {
  stallTimeoutMs?: number
  /** A source failed or stalled; the read moves on. */
  onSourceFailed?: (source: ChunkSource, err: Error) => void
}

/**
 * Yield the verified chunks first..last, in order, from the first source
 * that can serve each one (failing over on error, bad chunk or stall).
 */
export async function * readChunks (manifest: Manifest, first: number, last: number, sources: ChunkSource[], options: ReadRangeOptions = {}): AsyncGenerator<Chunk> {
  let next = first
  const failures: Error[] = []
  // A source that only stalled goes to the back of the queue (slow is not wrong), a few times per read.
  const queue = [...sources]
  let retries = 0
  for (let source = queue.shift(); source != null; source = queue.shift()) {
    if (next > last) return
    options.signal?.throwIfAborted()
    const stall = new IdleTimeout(options.stallTimeoutMs ?? STALL_TIMEOUT_MS, `source ${source.id.slice(-8)}`, options.signal)
    try {
      const from = next * manifest.chunkSize
      const to = Math.min(manifest.size, (last + 1) * manifest.chunkSize)
      for await (const chunk of source.fetch(manifest, from, to - from, { signal: stall.signal })) {
        if (chunk.index !== next) throw new Error(`source ${source.id} skipped from chunk ${next} to ${chunk.index}`)
        // A slow consumer is not a stalled source: the clock only runs while we wait for the source.
        stall.clear()
        yield chunk
        stall.touch()
        next++
      }
      if (next > last) return
      throw new Error(`source ${source.id} ended at chunk ${next} of ${last}`)
    } catch (err) {
      // The consumer's own abort ends the read; anything else moves to the next source.
      options.signal?.throwIfAborted()
      const e = toError(err)
      failures.push(e)
      if (e.name === 'TimeoutError' && retries < MAX_STALL_RETRIES) {
        retries++
        queue.push(source)
      }
      options.onSourceFailed?.(source, e)
    } finally {
      stall.clear()
    }
  }
  if (next <= last) {
    throw noSourceLeft(manifest, next, failures)
  }
}

/** Yield the bytes of [offset, offset + length) (length already clipped to the file). */
export async function * readRange (manifest: Manifest, offset: number, length: number, sources: ChunkSource[], options: ReadRangeOptions = {}): AsyncGenerator<Uint8Array> {
  if (length <= 0) return
  const { first, last } = chunksForRange(manifest, offset, length)
  yield * sliceChunks(manifest, offset, length, readChunks(manifest, first, last, sources, options))
}

/** Cut whole chunks (in order) down to the bytes of [offset, offset + length). */
export async function * sliceChunks (manifest: Manifest, offset: number, length: number, chunks: AsyncIterable<Chunk>): AsyncGenerator<Uint8Array> {
  const end = offset + length
  for await (const chunk of chunks) {
    // Where chunk.data starts in the file (a leaves-only chunk starts inside its chunk).
    const dataStart = chunk.index * manifest.chunkSize + (chunk.start ?? 0)
    yield chunk.data.subarray(Math.max(0, offset - dataStart), Math.min(chunk.data.byteLength, end - dataStart))
  }
}
