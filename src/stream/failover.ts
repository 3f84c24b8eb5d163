/**
 * The one rule for reading chunks from sources that may fail, lie or stall,
 * shared by every reader (the range reader of a holder, the remote reader of
 * a non-holder, the browser node's reader): ask the sources in the order the
 * caller gave, one at a time per run of chunks; a source that errs, sends
 * bytes that fail verification, or sends nothing for `stallTimeoutMs` is
 * dropped and the run continues from its next undelivered chunk on the next
 * source. A source that only stalled (slow, not wrong) gets another chance
 * once every other one has failed, up to MAX_STALL_RETRIES times per read; a
 * source that sent bad bytes is reported (`onBadChunk`: the node's
 * PeerScores), so later reads ask it last.
 */
import { STALL_TIMEOUT_MS } from '../constants.ts'
import { FileNotFoundError, UnavailableError, toError } from '../errors.ts'
import { IdleTimeout } from '../util/abort.ts'
import type { Chunk } from './get.ts'
import type { Manifest } from '../content/manifest.ts'
import type { AbortOptions } from '@libp2p/interface'

/** Times one read goes back to replicas that only stalled, once all replicas failed it. */
export const MAX_STALL_RETRIES = 2

/** `resume`: these bytes continue a read that already began (see GetRequest.resume). */
export type FetchOptions = AbortOptions & { resume?: boolean }

export interface ChunkSource {
  /** 'local' or a peer id. */
  readonly id: string
  /** Verified chunks of [offset, offset + length), in order. */
  fetch(manifest: Manifest, offset: number, length: number, options: FetchOptions): AsyncIterable<Chunk>
}

export interface FailoverOptions extends AbortOptions {
  /** The bytes asked for continue a read that already began elsewhere (a later segment). */
  resume?: boolean
  stallTimeoutMs?: number
  /** A source failed or stalled; the read moves on. */
  onSourceFailed?: (source: ChunkSource, err: Error) => void
  /** A verified chunk arrived from a source (metrics, who-served-what). */
  onChunk?: (source: ChunkSource, chunk: Chunk) => void
}

/**
 * Why a read ran out of sources. When every source said the file is not
 * there, it was deleted while being read (or since it was located): 404, not
 * a 503 to retry. Anything else (stalls, broken streams) is "unavailable".
 */
export function noSourceLeft (manifest: Manifest, index: number, failures: Error[]): Error {
  const last = failures.at(-1)
  const why = last != null ? ` (last error: ${last.message})` : ''
  const gone = (e: Error): boolean => (e as { code?: string }).code === 'ERR_FILE_NOT_FOUND'
  if (failures.length > 0 && failures.every(gone)) return new FileNotFoundError(`${manifest.id.toString()} is no longer held by its group (deleted while it was read?)${why}`)
  // The failures travel with the error: group sync tells "nobody holds a good copy" from "nobody answered".
  return new UnavailableError(`no replica could serve chunk ${index} of ${manifest.id.toString()}${why}`, { cause: new AggregateError(failures, 'every source failed') })
}

/**
 * The sources of one read, handed out in turn among the first `parallel`
 * healthy ones, minus those that failed it.
 */
export class SourcePool {
  private readonly sources: ChunkSource[]
  private readonly parallel: number
  private readonly failed = new Map<ChunkSource, 'stalled' | 'broken'>()
  private retries = 0
  private turn = 0
  /** Every failure of this read, in order (the error of an exhausted read is made from them). */
  readonly failures: Error[] = []

  constructor (sources: ChunkSource[], parallel = 1) {
    this.sources = sources
    this.parallel = Math.max(1, parallel)
  }

  /** Sources that may still be asked (stalled ones count while retries are left). */
  get healthy (): number {
    const stalled = [...this.failed.values()].filter(f => f === 'stalled').length
    return this.sources.length - this.failed.size + (this.retries < MAX_STALL_RETRIES ? stalled : 0)
  }

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
    this.failures.push(err)
  }
}

/**
 * Yield the verified chunks first..last of [from, to) in order, failing over
 * between the pool's sources. The stall clock runs only while we wait for a
 * source: a slow consumer is not a stalled source.
 */
export async function * fetchInOrder (manifest: Manifest, first: number, last: number, from: number, to: number, pool: SourcePool, options: FailoverOptions = {}): AsyncGenerator<Chunk> {
  let next = first
  while (next <= last) {
    options.signal?.throwIfAborted()
    const source = pool.next()
    if (source == null) throw noSourceLeft(manifest, next, pool.failures)
    const stall = new IdleTimeout(options.stallTimeoutMs ?? STALL_TIMEOUT_MS, `source ${source.id.slice(-8)}`, options.signal)
    try {
      const offset = Math.max(from, next * manifest.chunkSize)
      // Past the read's first chunk, a read is under way: a holder serves it through a delete's grace.
      const resume = options.resume === true || next > first
      for await (const chunk of source.fetch(manifest, offset, to - offset, { signal: stall.signal, ...(resume ? { resume } : {}) })) {
        if (chunk.index !== next) throw new Error(`source ${source.id} sent chunk ${chunk.index}, expected ${next}`)
        stall.clear()
        options.onChunk?.(source, chunk)
        yield chunk
        stall.touch()
        next++
      }
      if (next <= last) throw new Error(`source ${source.id} ended at chunk ${next} of ${last}`)
    } catch (err) {
      // The consumer's own abort ends the read; anything else moves to the next source.
      options.signal?.throwIfAborted()
      const e = toError(err)
      pool.fail(source, e)
      options.onSourceFailed?.(source, e)
    } finally {
      stall.clear()
    }
  }
}
