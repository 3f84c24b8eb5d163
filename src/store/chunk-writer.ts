/**
 * Writes the chunks of one transfer (an upload, a replication, a sync fetch)
 * several at a time, so that fsync latency overlaps with hashing and the
 * network instead of pacing them chunk by chunk; ext4 also commits the
 * concurrent fsyncs together. At most CHUNK_WRITE_BACKLOG chunks wait in
 * memory: `put` blocks beyond that, which slows the sender (backpressure).
 * `flush` returns once every chunk is durable (and their directories need an
 * fsync before the index may refer to them).
 */
import { Queue } from '@libp2p/utils'
import { CHUNK_WRITE_BACKLOG, CHUNK_WRITE_CONCURRENCY } from '../constants.ts'
import { toError } from '../errors.ts'
import type { LocalStore, SpaceReservation } from './local-store.ts'
import type { AbortOptions } from '@libp2p/interface'

export class ChunkWriter {
  /** Digests written (or being written) by this transfer, pinned against collection. */
  readonly digests: Uint8Array[] = []
  readonly dirs = new Set<string>()
  private readonly store: LocalStore
  private readonly queue = new Queue<void>({ concurrency: CHUNK_WRITE_CONCURRENCY })
  private failure?: Error

  private readonly reservation?: SpaceReservation

  /** `reservation`: space the transfer reserved up front, which its chunks draw on. */
  constructor (store: LocalStore, reservation?: SpaceReservation) {
    this.store = store
    if (reservation != null) this.reservation = reservation
  }

  /** Queue a chunk whose digest the caller computed; waits while the backlog is full. */
  async put (digest: Uint8Array, data: Uint8Array, options: AbortOptions = {}): Promise<void> {
    if (this.failure != null) throw this.failure
    this.store.pin(digest)
    this.digests.push(digest)
    this.queue.add(async () => {
      if (this.failure != null) return
      this.dirs.add(await this.store.putChunk(digest, data, this.reservation))
    }).catch(err => { this.failure ??= toError(err) })
    if (this.queue.size >= CHUNK_WRITE_BACKLOG) await this.queue.onSizeLessThan(CHUNK_WRITE_BACKLOG, options)
    if (this.failure != null) throw this.failure
  }

  /** Wait until every queued chunk is on disk; throws the first write error. */
  async flush (options: AbortOptions = {}): Promise<Set<string>> {
    await this.queue.onIdle(options)
    if (this.failure != null) throw this.failure
    return this.dirs
  }

  /** Unpin everything this transfer wrote (call once, when it ends either way). */
  release (): void {
    this.store.unpin(this.digests)
  }
}
