/**
 * Verified chunks that a node streamed but does not store, kept in a bounded
 * LRU (by bytes), so a hot video watched through one node does not hit the
 * replicas again for every viewer. Chunks are content-addressed, so an entry
 * can never be stale. Fetches in flight are shared too: viewers asking for a
 * chunk someone is already fetching wait for that fetch (single flight).
 */
import { LRUCache } from 'lru-cache'
import { toString as toHex } from 'uint8arrays'
import type { BufferPool } from '../util/buffer-pool.ts'

export class ChunkCache {
  /** Chunks served without a fetch of their own: from the cache, or by joining a fetch already under way. */
  hits = 0
  /** Chunks fetched from a replica. */
  misses = 0
  private readonly lru?: LRUCache<string, Uint8Array>
  private readonly inflight = new Map<string, Promise<Uint8Array>>()
  /**
   * The pool reads may fetch into: a chunk kept here or shared with a second
   * reader is claimed from it, so no reader's give-back can reuse its bytes.
   */
  private readonly pool?: BufferPool

  constructor (maxBytes: number, init: { pool?: BufferPool } = {}) {
    if (maxBytes > 0) this.lru = new LRUCache({ maxSize: maxBytes, sizeCalculation: (v) => Math.max(1, v.byteLength) })
    if (init.pool != null) this.pool = init.pool
  }

  get (digest: Uint8Array): Uint8Array | undefined {
    const hit = this.lru?.get(toHex(digest, 'base16'))
    if (hit != null) this.hits++
    return hit
  }

  /** Held in the cache (without counting a hit). */
  has (digest: Uint8Array): boolean {
    return this.lru?.has(toHex(digest, 'base16')) ?? false
  }

  set (digest: Uint8Array, data: Uint8Array): void {
    if (this.lru == null) return
    this.pool?.claim(data)
    this.lru.set(toHex(digest, 'base16'), data)
  }

  /**
   * A fetch of this chunk already under way, if any (joining it is a hit: the
   * replicas are not asked again). Its bytes now have two readers: claimed
   * from the pool as they arrive — in the same run of promise callbacks that
   * hands them to the first reader, before any socket write of theirs can
   * complete and give them back.
   */
  pending (digest: Uint8Array): Promise<Uint8Array> | undefined {
    const fetch = this.inflight.get(toHex(digest, 'base16'))
    if (fetch == null) return undefined
    this.hits++
    const pool = this.pool
    if (pool == null) return fetch
    const joined = fetch.then(data => { pool.claim(data); return data })
    // A failed fetch is seen by whoever awaits `joined`; a caller that only looked (is it in flight?) never
    // awaits it, and its rejection must not go unhandled (that ends the process).
    joined.catch(() => {})
    return joined
  }

  /** Register a fetch so others can share it; it unregisters itself when settled. */
  track (digest: Uint8Array, fetch: Promise<Uint8Array>): void {
    const key = toHex(digest, 'base16')
    this.misses++
    this.inflight.set(key, fetch)
    // The fetcher's own caller sees a failure; this branch only stores a success.
    fetch.then(data => { this.set(digest, data) }, () => {}).finally(() => { this.inflight.delete(key) })
  }

  /** Drop every cached chunk (an operator's or a test's reset; fetches in flight finish). */
  clear (): void {
    this.lru?.clear()
  }

  get bytes (): number {
    return this.lru?.calculatedSize ?? 0
  }
}
