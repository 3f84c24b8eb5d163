/**
 * Writes the chunks of one transfer (an upload, a replication, a sync fetch)
 * several at a time, so that writes overlap with hashing and the network
 * instead of pacing them chunk by chunk. At most CHUNK_WRITE_BACKLOG chunks
 * wait in memory: `put` blocks beyond that, which slows the sender
 * (backpressure). `flush` returns the staged chunks once every write is done;
 * they become durable when the caller commits them (one forced write for all).
 */
import { Queue } from '@libp2p/utils'
import { toError } from '../errors.ts'
import type { StagedChunk } from './chunk-store.ts'
import type { LocalStore, SpaceReservation } from './local-store.ts'
import type { AbortOptions } from '@libp2p/interface'

/** Chunk writes (write + fsync) one transfer keeps in flight, overlapping disk and network. */
export const CHUNK_WRITE_CONCURRENCY = 4
/** Chunks one transfer may hold in memory waiting for the disk (bounds memory per transfer). */
export const CHUNK_WRITE_BACKLOG = 8

export class ChunkWriter {
  /** Digests written (or being written) by this transfer, pinned against collection. */
  readonly digests: Uint8Array[] = []
  private readonly staged: StagedChunk[] = []
  private readonly store: LocalStore
  private readonly queue = new Queue<void>({ concurrency: CHUNK_WRITE_CONCURRENCY })
  private failure?: Error
  private readonly reservation?: SpaceReservation

  /** `reservation`: space the transfer reserved up front, which its chunks draw on. */
  constructor (store: LocalStore, reservation?: SpaceReservation) {
    this.store = store
    if (reservation != null) this.reservation = reservation
  }

  /** Queue a chunk whose digest (and leaf hashes, if known) the caller computed; waits while the backlog is full. */
  async put (digest: Uint8Array, data: Uint8Array, options: AbortOptions & { leaves?: Uint8Array } = {}): Promise<void> {
    if (this.failure != null) throw this.failure
    this.store.pin(digest)
    this.digests.push(digest)
    // A chunk already stored (same bytes in another file, or earlier in this one) is not written again.
    if (this.store.chunks.has(digest)) return
    this.queue.add(async () => {
      if (this.failure != null) return
      this.staged.push(await this.store.putChunk(digest, data, this.reservation, options.leaves))
    }).catch(err => { this.failure ??= toError(err) })
    if (this.queue.size >= CHUNK_WRITE_BACKLOG) await this.queue.onSizeLessThan(CHUNK_WRITE_BACKLOG, options)
    if (this.failure != null) throw this.failure
  }

  /** Wait until every queued chunk is written; the chunks to commit. Throws the first write error. */
  async flush (options: AbortOptions = {}): Promise<StagedChunk[]> {
    await this.queue.onIdle(options)
    if (this.failure != null) throw this.failure
    return this.staged
  }

  /** Unpin everything this transfer wrote, and drop what it wrote but did not index (call once, when it ends either way). */
  release (): void {
    this.store.unpin(this.digests)
    this.store.chunks.discard(this.staged)
  }
}
