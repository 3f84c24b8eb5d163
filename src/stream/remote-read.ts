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
 * the read and its unfinished segment continues on another replica. Chunks go
 * through the node's ChunkCache: a cached chunk is not fetched, and a chunk
 * another reader is already fetching is waited for, not fetched twice.
 */
import { MAX_PARALLEL_SOURCES, MAX_STALL_RETRIES, READ_AHEAD_CHUNKS_PER_SOURCE, SEGMENT_CHUNKS, STALL_TIMEOUT_MS } from '../constants.ts'
import { UnavailableError, toError } from '../errors.ts'
import { chunkLength } from '../replica/manifest.ts'
import { IdleTimeout, raceSignal } from '../util/abort.ts'
import type { Chunk } from './get.ts'
import type { ChunkCache } from './chunk-cache.ts'
import type { ChunkSource } from './range-reader.ts'
import type { Manifest } from '../replica/manifest.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface RemoteReadOptions extends AbortOptions {
  cache: ChunkCache
  /** Replicas to read from in parallel (default MAX_PARALLEL_SOURCES). */
  parallelSources?: number
  stallTimeoutMs?: number
  onSourceFailed?: (source: ChunkSource, err: Error) => void
  /** Bytes received from a replica (metrics). */
  onFetched?: (source: ChunkSource, bytes: number) => void
}

/**
 * The replicas of one read: handed out in turn, minus those that failed it.
 * A replica that only stalled (slow, not wrong) may get a second chance once
 * every replica has failed, up to MAX_STALL_RETRIES times per read.
 */
class SourcePool {
  private readonly sources: ChunkSource[]
  private readonly parallel: number
  private readonly failed = new Map<ChunkSource, 'stalled' | 'broken'>()
  private retries = 0
  private turn = 0
  lastError?: Error

  constructor (sources: ChunkSource[], parallel: number) {
    this.sources = sources
    this.parallel = parallel
  }

  get healthy (): number { return this.sources.length - this.failed.size + (this.retries < MAX_STALL_RETRIES ? [...this.failed.values()].filter(f => f === 'stalled').length : 0) }

  /** The next healthy replica among the first `parallel` healthy ones, in turn. */
  next (): ChunkSource | undefined {
    let active = this.sources.filter(s => !this.failed.has(s)).slice(0, this.parallel)
    if (active.length === 0 && this.retries < MAX_STALL_RETRIES) {
      this.retries++
      for (const [s, why] of this.failed) if (why === 'stalled') this.failed.delete(s)
      active = this.sources.filter(s => !this.failed.has(s)).slice(0, this.parallel)
    }
    if (active.length === 0) return undefined
    return active[this.turn++ % active.length]
  }

  fail (source: ChunkSource, err: Error): void {
    this.failed.set(source, err.name === 'TimeoutError' ? 'stalled' : 'broken')
    this.lastError = err
  }
}

/**
 * Fetch chunks `indexes` (consecutive) and settle each one's deferred as it
 * arrives; on failure the rest continues on the next healthy replica.
 */
async function fetchSegment (manifest: Manifest, indexes: number[], deferred: Map<number, PromiseWithResolvers<Uint8Array>>, pool: SourcePool, options: RemoteReadOptions): Promise<void> {
  let pos = 0
  while (pos < indexes.length) {
    const source = pool.next()
    if (source == null) {
      const err = new UnavailableError(`no replica could serve chunk ${indexes[pos] ?? '?'} of ${manifest.id.toString()}${pool.lastError != null ? ` (last error: ${pool.lastError.message})` : ''}`)
      for (const i of indexes.slice(pos)) deferred.get(i)?.reject(err)
      return
    }
    const first = indexes[pos] as number
    const last = indexes[indexes.length - 1] as number
    const offset = first * manifest.chunkSize
    const length = last * manifest.chunkSize + chunkLength(manifest, last) - offset
    const stall = new IdleTimeout(options.stallTimeoutMs ?? STALL_TIMEOUT_MS, `replica ${source.id.slice(-8)}`)
    try {
      for await (const chunk of source.fetch(manifest, offset, length, { signal: stall.signal }) as AsyncIterable<Chunk>) {
        stall.touch()
        if (chunk.index !== indexes[pos]) throw new Error(`replica ${source.id} sent chunk ${chunk.index}, expected ${indexes[pos] ?? '?'}`)
        options.onFetched?.(source, chunk.data.byteLength)
        deferred.get(chunk.index)?.resolve(chunk.data)
        pos++
      }
      if (pos < indexes.length) throw new Error(`replica ${source.id} ended the segment early`)
    } catch (err) {
      pool.fail(source, toError(err))
      options.onSourceFailed?.(source, toError(err))
    } finally {
      stall.clear()
    }
  }
}

export async function * readRemoteChunks (manifest: Manifest, first: number, last: number, sources: ChunkSource[], options: RemoteReadOptions): AsyncGenerator<Chunk> {
  if (sources.length === 0) throw new UnavailableError(`no ACTIVE replica of ${manifest.id.toString()} is known`)
  // The first `parallel` replicas take turns; the others stand by for failover.
  const parallel = Math.max(1, Math.min(options.parallelSources ?? MAX_PARALLEL_SOURCES, sources.length))
  const pool = new SourcePool(sources, parallel)
  const { cache } = options
  const ahead = READ_AHEAD_CHUNKS_PER_SOURCE * parallel
  const waiting = new Map<number, Promise<Uint8Array>>()
  let planned = first

  /** Make sure chunks up to `until` are cached, being fetched, or scheduled. */
  const plan = (until: number): void => {
    while (planned <= until && planned <= last) {
      const digest = manifest.chunks[planned] as Uint8Array
      const ready = cache.get(digest) ?? cache.pending(digest)
      if (ready != null) {
        waiting.set(planned, Promise.resolve(ready))
        planned++
        continue
      }
      // A new segment: the next chunks that nobody has or fetches, up to SEGMENT_CHUNKS.
      const indexes: number[] = []
      const deferred = new Map<number, PromiseWithResolvers<Uint8Array>>()
      while (indexes.length < SEGMENT_CHUNKS && planned <= last) {
        const d = manifest.chunks[planned] as Uint8Array
        if (cache.get(d) != null || cache.pending(d) != null) break
        const p = Promise.withResolvers<Uint8Array>()
        // Rejections are handled by whoever awaits the chunk; this only keeps an unawaited one quiet.
        p.promise.catch(() => {})
        cache.track(d, p.promise)
        deferred.set(planned, p)
        waiting.set(planned, p.promise)
        indexes.push(planned++)
      }
      void fetchSegment(manifest, indexes, deferred, pool, options)
    }
  }

  /** One chunk on our own, for when a fetch we shared (another reader's) failed. */
  const refetch = async (index: number): Promise<Uint8Array> => {
    const p = Promise.withResolvers<Uint8Array>()
    await fetchSegment(manifest, [index], new Map([[index, p]]), pool, options)
    return p.promise
  }

  for (let index = first; index <= last; index++) {
    options.signal?.throwIfAborted()
    plan(index + ahead - 1)
    const pending = waiting.get(index) ?? refetch(index)
    waiting.delete(index)
    let data: Uint8Array
    try {
      data = await raceSignal(pending, options.signal)
    } catch (err) {
      options.signal?.throwIfAborted()
      if (pool.healthy === 0) throw err
      data = await raceSignal(refetch(index), options.signal)
    }
    yield { index, data }
  }
}
