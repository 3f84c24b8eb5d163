/**
 * Reading a located file: a replica reads its own copy (other replicas only
 * if a local chunk is damaged); any other node reads from the group's ACTIVE
 * members in parallel, through its chunk cache. Replicas that served bad
 * bytes are remembered and asked last. A read whose every source failed
 * because the file was deleted meanwhile is a 404, not a 503 to retry.
 */
import { pipe } from 'it-pipe'
import { CorruptChunkError, FileNotFoundError, UnavailableError } from '../errors.ts'
import { chunksForRange } from '../content/manifest.ts'
import { ChunkCache } from '../stream/chunk-cache.ts'
import { PeerScores } from '../stream/peer-scores.ts'
import { readRange, sliceChunks } from '../stream/range-reader.ts'
import { readRemoteChunks } from '../stream/remote-read.ts'
import { orderReplicas } from '../stream/replica-choice.ts'
import { LOCAL_SOURCE_ID, localSource, remoteSource } from '../stream/sources.ts'
import type { Manifest } from '../content/manifest.ts'
import type { Located, Locator } from '../dht/locate.ts'
import type { Logger } from '../logger.ts'
import type { MembershipView } from '../membership/view.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { ChunkSource } from '../stream/failover.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface FileReaderComponents {
  store: LocalStore
  view: MembershipView
  dialer: Dialer
  locator: Pick<Locator, 'locate' | 'forget'>
  rttOf: (peerId: string) => number | undefined
  connectedPeers: () => Set<string>
  findGroup?: (group: string, options: AbortOptions) => Promise<string[]>
  logger: Logger
}

export interface FileReaderInit {
  stallTimeoutMs: number
  /** Bytes of the chunk cache for files this node does not hold (0 disables it). */
  cacheBytes: number
  /** Replicas one read fetches from in parallel. */
  readSources: number
}

export interface ReadOptions extends AbortOptions {
  /** The caller gives every piece back through FileReader.recycle once done with it. */
  recycled?: boolean
}

export class FileReader {
  /** Chunks this node streamed for files it does not hold. */
  readonly cache: ChunkCache
  /** Peers that served bytes failing verification: asked last (and forgiven over time). */
  readonly scores = new PeerScores()
  /** Bytes fetched from replicas for this node's readers; chunks from replicas that failed verification. */
  readonly counters = { fetchedBytes: 0, peerCorruptChunks: 0 }
  private readonly c: FileReaderComponents
  private readonly init: FileReaderInit

  constructor (components: FileReaderComponents, init: FileReaderInit) {
    this.c = components
    this.init = init
    this.cache = new ChunkCache(init.cacheBytes, { pool: components.store.readBuffers })
  }

  /**
   * Verified bytes of [offset, offset + length). `recycled`: the caller gives
   * every piece back through `recycle` once nothing refers to it (a holder
   * then reads into reusable buffers).
   */
  async * read (located: Located, offset: number, length: number, options: ReadOptions = {}): AsyncGenerator<Uint8Array> {
    // A file of a group this node has no live member of in view (it was located through one member): ask the DHT first.
    const held = this.c.store.index.stamp(located.manifest.id.toString())?.state === 'present'
    if (!held && !this.c.view.groupMembers(located.group).some(m => !m.self && m.state === 'ACTIVE')) await this.c.findGroup?.(located.group, options)
    yield * this.notFoundIfDeleted(located, this.bytes(located, offset, length, held, options), options)
  }

  /**
   * A range inside one chunk of a file this node holds (a player's seek):
   * one index lookup and one read, checked against the stored CRCs, without
   * the streaming pipeline. Undefined when that does not apply — or when the
   * local read fails: the caller then takes read(), whose failover handles
   * the same failure (a corrupt chunk is reported by the store either way).
   */
  async readSmall (located: Located, offset: number, length: number): Promise<Uint8Array | undefined> {
    const { manifest } = located
    if (length <= 0) return undefined
    const { first, last } = chunksForRange(manifest, offset, length)
    const digest = manifest.chunks[first]
    if (first !== last || digest == null || this.c.store.index.stamp(manifest.id.toString())?.state !== 'present') return undefined
    const from = offset - first * manifest.chunkSize
    const bytes = await this.c.store.readChunk(digest, { from, to: from + length }).catch(() => undefined)
    if (bytes == null || bytes.start + bytes.data.byteLength < from + length) return undefined
    return bytes.data.subarray(from - bytes.start, from - bytes.start + length)
  }

  /** Done with bytes a `recycled` read yielded: a reusable buffer goes back to the store, anything else is ignored. */
  recycle (bytes: Uint8Array): void {
    this.c.store.readBuffers.give(bytes)
  }

  private bytes (located: Located, offset: number, length: number, held: boolean, options: ReadOptions): AsyncIterable<Uint8Array> {
    const { manifest } = located
    const avoided = (peer: string): boolean => this.scores.avoided(peer)
    const connected = this.c.connectedPeers()
    const ordered = orderReplicas(this.c.view.groupMembers(located.group), { rttOf: this.c.rttOf, avoided, connected: (peer) => connected.has(peer) })
    // A recycled read takes big chunks into reusable buffers (given back by its consumer, or claimed by the cache).
    const pool = options.recycled === true ? { pool: this.c.store.readBuffers } : {}
    const remote = ordered.map(m => remoteSource(this.c.dialer, m.peerId, pool))
    // Avoided replicas are for failover only: never part of the parallel window while others are left.
    const trusted = ordered.filter(m => !avoided(m.peerId)).length
    const onSourceFailed = (source: ChunkSource, err: Error): void => {
      // A bad chunk read from our own disk is counted by the store; this counts the ones a peer sent.
      if (err instanceof CorruptChunkError && source.id !== LOCAL_SOURCE_ID) {
        this.counters.peerCorruptChunks++
        this.scores.badChunk(source.id)
      }
      this.c.logger.info({ source: source.id.slice(-8), err: err.message }, 'replica failed mid-read; moving on')
    }
    const local = localSource(this.c.store, { pooled: options.recycled === true })
    if (held) return this.holding(manifest, offset, length, readRange(manifest, offset, length, [local, ...remote], { ...options, stallTimeoutMs: this.init.stallTimeoutMs, onSourceFailed }))
    // Replicas in parallel, through the cache (each chunk verified as it arrives) → the bytes of the range.
    return pipe(readRemoteChunks(manifest, offset, length, remote, {
      ...options,
      cache: this.cache,
      parallelSources: Math.max(1, Math.min(this.init.readSources, trusted)),
      stallTimeoutMs: this.init.stallTimeoutMs,
      onSourceFailed,
      onFetched: (_source, bytes) => { this.counters.fetchedBytes += bytes }
    }), async function * (chunks) { yield * sliceChunks(manifest, offset, length, chunks) })
  }

  /** A read of our own copy keeps its chunks for as long as it lasts, whatever is deleted meanwhile. */
  private async * holding (manifest: Manifest, offset: number, length: number, bytes: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const { first, last } = chunksForRange(manifest, offset, length)
    const release = this.c.store.holdChunks(manifest.chunks.slice(first, last + 1))
    try {
      yield * bytes
    } finally {
      release()
    }
  }

  /**
   * A read whose every source failed: if the file was deleted meanwhile (the chunks go with it, here or on a
   * replica, which can then only reset its stream), that is a 404, not a 503 to retry. Asked only when a read failed.
   */
  private async * notFoundIfDeleted (located: Located, source: AsyncIterable<Uint8Array>, options: AbortOptions): AsyncGenerator<Uint8Array> {
    try {
      yield * source
    } catch (err) {
      if (!(err instanceof UnavailableError)) throw err
      const id = located.manifest.id
      this.c.locator.forget(id.toString())
      const gone = await this.c.locator.locate(id, options).then(() => false, (e: unknown) => e instanceof FileNotFoundError)
      if (gone) throw new FileNotFoundError(`${id.toString()} was deleted while it was read`)
      throw err
    }
  }
}
