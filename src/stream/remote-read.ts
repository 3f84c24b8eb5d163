/**
 * Reading chunks a node does not hold: from several replicas in parallel,
 * delivered in order.
 *
 * Chunks are fetched in segments of SEGMENT_CHUNKS consecutive chunks, one
 * request per segment, segments handed to the replicas in turn, with at most
 * READ_AHEAD_CHUNKS_PER_SOURCE × replicas chunks ahead of the consumer (so
 * memory per read is bounded). Each chunk is released to the consumer as soon
 * as it arrived and verified, so the first byte never waits for a whole
 * segment. A replica that fails, stalls or lies is dropped for the rest of
 * the read and its unfinished segment continues on another replica (the
 * rules of ./failover.ts, shared with every reader). Chunks go
 * through the node's ChunkCache: a cached chunk is not fetched, and a chunk
 * another reader is already fetching is waited for, not fetched twice.
 */
import { MAX_PARALLEL_SOURCES } from '../constants.ts'
import { UnavailableError, toError } from '../errors.ts'
import { chunkLength, chunksForRange } from '../content/manifest.ts'
import { raceSignal } from '../util/abort.ts'
import type { Chunk } from './get.ts'
import type { ChunkCache } from './chunk-cache.ts'
import { SourcePool, fetchInOrder } from './failover.ts'
import type { ChunkSource } from './failover.ts'
import type { Manifest } from '../content/manifest.ts'
import type { AbortOptions } from '@libp2p/interface'

/** Consecutive chunks fetched from one replica in one request (a segment). */
export const SEGMENT_CHUNKS = 4
/** Chunks a remote read fetches ahead of the consumer (per replica in use, at most 3 replicas). */
export const READ_AHEAD_CHUNKS_PER_SOURCE = 4

export interface RemoteReadOptions extends AbortOptions {
  cache: ChunkCache
  /** A segment past the read's first chunk (set per segment here): see GetRequest.resume. */
  resume?: boolean
  /** Replicas to read from in parallel (default MAX_PARALLEL_SOURCES). */
  parallelSources?: number
  stallTimeoutMs?: number
  onSourceFailed?: (source: ChunkSource, err: Error) => void
  /** Bytes received from a replica (metrics). */
  onFetched?: (source: ChunkSource, bytes: number) => void
}

/**
 * Fetch the bytes [from, to) — whole chunks `indexes`, except that the first
 * and last may be cut to the read's range (sent as leaves) — settling each
 * chunk's deferred as it arrives, failing over between the pool's replicas
 * (./failover.ts). Detached from any one reader (its chunks may be shared
 * through the cache), so it takes no reader's signal.
 */
async function fetchSegment (manifest: Manifest, indexes: number[], from: number, to: number, deferred: Map<number, PromiseWithResolvers<Chunk>>, pool: SourcePool, options: RemoteReadOptions): Promise<void> {
  const { stallTimeoutMs, onSourceFailed, onFetched, resume } = options
  try {
    const chunks = fetchInOrder(manifest, indexes[0] as number, indexes[indexes.length - 1] as number, from, to, pool, {
      ...(resume === true ? { resume } : {}),
      ...(stallTimeoutMs != null ? { stallTimeoutMs } : {}),
      ...(onSourceFailed != null ? { onSourceFailed } : {}),
      ...(onFetched != null ? { onChunk: (source: ChunkSource, chunk: Chunk) => { onFetched(source, chunk.data.byteLength) } } : {})
    })
    for await (const chunk of chunks) deferred.get(chunk.index)?.resolve(chunk)
  } catch (err) {
    // Settled deferreds ignore this; the rest fail with why the segment could not be read.
    for (const p of deferred.values()) p.reject(toError(err))
  }
}

/** The chunks covering [offset, offset + length), in order; the first and last may be partial (see Chunk.start). */
export async function * readRemoteChunks (manifest: Manifest, offset: number, length: number, sources: ChunkSource[], options: RemoteReadOptions): AsyncGenerator<Chunk> {
  if (length <= 0) return
  if (sources.length === 0) throw new UnavailableError(`no ACTIVE replica of ${manifest.id.toString()} is known`)
  const end = offset + length
  const { first, last } = chunksForRange(manifest, offset, length)
  // The first `parallel` replicas take turns; the others stand by for failover.
  const parallel = Math.max(1, Math.min(options.parallelSources ?? MAX_PARALLEL_SOURCES, sources.length))
  const pool = new SourcePool(sources, parallel)
  const { cache } = options
  const ahead = READ_AHEAD_CHUNKS_PER_SOURCE * parallel
  const waiting = new Map<number, Promise<Chunk>>()
  let planned = first

  /** Whole chunks are shared through the cache; the read's cut first and last chunks are its own. */
  const whole = (i: number): boolean =>
    (i > first || offset === i * manifest.chunkSize) && (i < last || end === i * manifest.chunkSize + chunkLength(manifest, i))
  const known = (i: number): Promise<Uint8Array> | Uint8Array | undefined => {
    const digest = manifest.chunks[i] as Uint8Array
    return cache.get(digest) ?? (whole(i) ? cache.pending(digest) : undefined)
  }

  /** Make sure chunks up to `until` are cached, being fetched, or scheduled. */
  const plan = (until: number): void => {
    while (planned <= until && planned <= last) {
      const ready = known(planned)
      if (ready != null) {
        const index = planned++
        const chunk = Promise.resolve(ready).then(data => ({ index, data }))
        // Awaited when the reader gets there; a reader that stops first (its client left) never awaits it,
        // and another reader's failed fetch must not become an unhandled rejection (it killed the process).
        chunk.catch(() => {})
        waiting.set(index, chunk)
        continue
      }
      // A new segment: the next chunks that nobody has or fetches, up to SEGMENT_CHUNKS.
      const indexes: number[] = []
      const deferred = new Map<number, PromiseWithResolvers<Chunk>>()
      while (indexes.length < SEGMENT_CHUNKS && planned <= last && (indexes.length === 0 || known(planned) == null)) {
        const p = Promise.withResolvers<Chunk>()
        // Rejections are handled by whoever awaits the chunk; this only keeps an unawaited one quiet.
        p.promise.catch(() => {})
        if (whole(planned)) cache.track(manifest.chunks[planned] as Uint8Array, p.promise.then(c => c.data))
        deferred.set(planned, p)
        waiting.set(planned, p.promise)
        indexes.push(planned++)
      }
      const from = Math.max(offset, (indexes[0] as number) * manifest.chunkSize)
      const lastIndex = indexes[indexes.length - 1] as number
      const to = Math.min(end, lastIndex * manifest.chunkSize + chunkLength(manifest, lastIndex))
      // Each chunk's outcome goes to its deferred, which the loop below awaits (or, if the reader left, nobody:
      // every deferred has a handler). Should the fetch itself throw, its chunks fail with that error.
      fetchSegment(manifest, indexes, from, to, deferred, pool, { ...options, resume: (indexes[0] as number) > first })
        .catch((err: unknown) => { for (const p of deferred.values()) p.reject(toError(err)) })
    }
  }

  /**
   * One chunk on our own, for when a fetch we shared (another reader's) failed.
   * Handled even if the reader stops waiting for it (its signal aborted).
   */
  const refetch = (index: number): Promise<Chunk> => {
    const p = Promise.withResolvers<Chunk>()
    p.promise.catch(() => {})
    const from = Math.max(offset, index * manifest.chunkSize)
    const to = Math.min(end, index * manifest.chunkSize + chunkLength(manifest, index))
    fetchSegment(manifest, [index], from, to, new Map([[index, p]]), pool, { ...options, resume: index > first }).catch((err: unknown) => { p.reject(toError(err)) })
    return p.promise
  }

  for (let index = first; index <= last; index++) {
    options.signal?.throwIfAborted()
    plan(index + ahead - 1)
    const pending = waiting.get(index) ?? refetch(index)
    waiting.delete(index)
    try {
      yield await raceSignal(pending, options.signal)
    } catch (err) {
      options.signal?.throwIfAborted()
      if (pool.healthy === 0) throw err
      yield await raceSignal(refetch(index), options.signal)
    }
  }
}
