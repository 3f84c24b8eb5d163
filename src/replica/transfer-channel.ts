/**
 * How a one-chunk upload travels (a declared size no larger than the chunk
 * size): the body is read whole and hashed, and each member gets it as one
 * frame on its upload channel (./channel.ts) — chunk and prepare together —
 * without a stream per upload per member.
 */
import { QuorumError, toError } from '../errors.ts'
import { hashChunk } from '../content/chunk-hash.ts'
import { chunkStream } from '../content/chunker.ts'
import type { Channel, Channels } from './channel.ts'
import type { CopyAttempt } from './commit.ts'
import type { IngestComponents, ReceiveOptions, ReceivedBody, UploadTransfer } from './ingest-components.ts'
import type { Manifest } from '../content/manifest.ts'
import type { SpaceReservation } from '../store/local-store.ts'
import type { PreparedUpload } from '../store/prepared.ts'
import type { ChannelDecided, PrepareFrame } from '../wire/messages.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

class ChannelCopy implements CopyAttempt {
  readonly peer: string
  prepared = false
  failure?: Error
  private readonly channel: Channel
  private u?: number

  constructor (channels: Channels, peer: string) {
    this.peer = peer
    this.channel = channels.to(peer)
  }

  async put (req: Parameters<Channel['put']>[0], options: AbortOptions): Promise<void> {
    try {
      this.u = await this.channel.put(req, options)
      this.prepared = true
    } catch (err) {
      this.failure = toError(err)
      throw err
    }
  }

  async decide (commit: boolean): Promise<void> {
    // Nothing waits for a decision on the channel: one that is lost is recovered by the member's resolver.
    if (this.u != null) this.channel.decide(this.u, commit)
  }

  /** Commit, and wait to hear what the member holds of the key record the upload carried. */
  async confirm (options: AbortOptions): Promise<ChannelDecided> {
    if (this.u == null) throw new QuorumError(`${this.peer.slice(-8)} never prepared the upload`)
    return this.channel.decideAndAsk(this.u, options)
  }
}

export type { ChannelCopy }

export class ChannelTransfer implements UploadTransfer<ChannelCopy> {
  readonly copies: ChannelCopy[]
  readonly unreachable: Array<{ peer: string, why: string }> = []
  private readonly c: IngestComponents
  private readonly group: string
  private readonly chunkSize: number
  private readonly reservation?: SpaceReservation
  private data: Uint8Array = new Uint8Array(0)
  private hashed?: { digest: Uint8Array, leaves: Uint8Array }
  private pinned: Uint8Array[] = []

  constructor (c: IngestComponents & { channels: Channels }, targets: string[], header: { group: string, chunkSize: number }, reservation?: SpaceReservation) {
    this.c = c
    this.group = header.group
    this.chunkSize = header.chunkSize
    this.copies = targets.map(peer => new ChannelCopy(c.channels, peer))
    if (reservation != null) this.reservation = reservation
  }

  async receive (source: AsyncIterable<Uint8Array | Uint8ArrayList>, options: ReceiveOptions): Promise<ReceivedBody> {
    let data: Uint8Array | undefined
    for await (const chunk of chunkStream(source, this.chunkSize, { maxBytes: options.maxBytes })) {
      if (data != null) throw new QuorumError('a one-chunk upload sent more than one chunk')
      // Its own buffer: a view would keep the whole body it was cut from. A chunk cut across pieces is
      // already one (the cutter joined them): copying it again was 1 MiB of garbage per 1 MiB upload.
      data = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk : chunk.slice()
    }
    this.data = data ?? new Uint8Array(0)
    if (this.data.byteLength === 0) return { digests: [], size: 0, head: undefined }
    this.hashed = await hashChunk(this.data)
    // Held from now on: no compaction or collection may take the chunk while the upload is decided.
    this.pinned = [this.hashed.digest]
    this.c.store.pin(this.hashed.digest)
    return { digests: [this.hashed.digest], size: this.data.byteLength, head: this.data }
  }

  async prepareLocal (upload: PreparedUpload, manifest: Manifest): Promise<void> {
    const { store } = this.c
    const h = this.hashed
    const staged = h == null ? [] : await store.stageChunk(h.digest, this.data, this.reservation, h.leaves)
    try {
      await store.prepare(upload, staged, manifest)
    } finally {
      store.chunks.discard(staged) // a no-op once indexed; else its volume may be compacted again
    }
  }

  async prepareCopy (copy: ChannelCopy, frame: PrepareFrame, options: AbortOptions): Promise<void> {
    await copy.put({ group: this.group, chunkSize: this.chunkSize, chunk: this.data, prepare: frame }, options)
  }

  abort (): void {
    // The channels are shared by every upload: a failed one has nothing to tear down (its decision says abort).
  }

  async finish (committed: boolean): Promise<void> {
    this.c.store.unpin(this.pinned)
    if (!committed) await this.c.store.collect(this.pinned).catch(() => {})
  }
}
