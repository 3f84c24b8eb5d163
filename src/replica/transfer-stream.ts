/**
 * How a big upload travels: one replication stream per member
 * (./replicate.ts). The body runs through a pipeline — chunker → hasher →
 * writer and senders — with one chunk in flight on disk and on every stream
 * while the next is read and hashed, so the slowest member paces the upload
 * (backpressure, never a whole file in memory).
 */
import { pipe } from 'it-pipe'
import { toError } from '../errors.ts'
import { chunkStream } from '../content/chunker.ts'
import { hashChunks } from '../content/chunk-hash.ts'
import { MIME_SNIFF_BYTES } from '../content/mime.ts'
import { ReplicaSession } from './replicate.ts'
import { ChunkWriter } from '../store/chunk-writer.ts'
import type { HashedChunk } from '../content/chunk-hash.ts'
import type { IngestComponents, ReceiveOptions, ReceivedBody, UploadTransfer } from './ingest-components.ts'
import type { Manifest } from '../content/manifest.ts'
import type { SpaceReservation } from '../store/local-store.ts'
import type { PreparedUpload } from '../store/prepared.ts'
import type { PrepareFrame } from '../wire/messages.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

export class StreamTransfer implements UploadTransfer<ReplicaSession> {
  readonly copies: ReplicaSession[]
  readonly unreachable: Array<{ peer: string, why: string }>
  private readonly c: IngestComponents
  private readonly writer: ChunkWriter
  private readonly chunkSize: number
  private readonly signal: AbortSignal

  private constructor (c: IngestComponents, copies: ReplicaSession[], unreachable: Array<{ peer: string, why: string }>, chunkSize: number, signal: AbortSignal, reservation?: SpaceReservation) {
    this.c = c
    this.copies = copies
    this.unreachable = unreachable
    this.chunkSize = chunkSize
    this.signal = signal
    this.writer = new ChunkWriter(c.store, reservation)
  }

  /** Open a replication stream to every target at once; those that cannot be reached are listed, not fatal here. */
  static async open (c: IngestComponents, targets: string[], header: { group: string, chunkSize: number }, signal: AbortSignal, reservation?: SpaceReservation): Promise<StreamTransfer> {
    const opened = await Promise.allSettled(targets.map(async peer => ReplicaSession.open(c.dialer, peer, header, { signal })))
    const copies = opened.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
    const unreachable = opened.flatMap((r, i) => r.status === 'rejected' ? [{ peer: targets[i] ?? '?', why: toError(r.reason).message }] : [])
    return new StreamTransfer(c, copies, unreachable, header.chunkSize, signal, reservation)
  }

  async receive (source: AsyncIterable<Uint8Array | Uint8ArrayList>, options: ReceiveOptions): Promise<ReceivedBody> {
    let head: Uint8Array | undefined
    let size = 0
    let inFlight: Promise<unknown> = Promise.resolve()
    const store = async (chunks: AsyncIterable<HashedChunk>): Promise<void> => {
      for await (const { data, digest, leaves } of chunks) {
        head ??= data.slice(0, MIME_SNIFF_BYTES)
        size += data.byteLength
        await inFlight
        options.checkQuorum()
        // Disk and network at once: the writer queues the local write, the sessions stream the chunk.
        inFlight = Promise.all([this.writer.put(digest, data, { signal: this.signal, leaves }), ...this.copies.map(async s => s.sendChunk(data, { signal: this.signal }))])
        inFlight.catch(() => {}) // awaited on the next chunk or below; a failure meanwhile is not unhandled
      }
      await inFlight
    }
    await pipe(source, (body) => chunkStream(body, this.chunkSize, { maxBytes: options.maxBytes }), hashChunks, store)
    options.checkQuorum()
    return { digests: this.writer.digests, size, head }
  }

  async prepareLocal (upload: PreparedUpload, manifest: Manifest, options: AbortOptions): Promise<void> {
    const staged = await this.writer.flush(options)
    await this.c.store.prepare(upload, staged, manifest)
  }

  async prepareCopy (copy: ReplicaSession, frame: PrepareFrame, options: AbortOptions): Promise<void> {
    await copy.prepare(frame, options)
  }

  abort (err: Error): void {
    for (const s of this.copies) s.abort(err)
  }

  async finish (committed: boolean): Promise<void> {
    await this.writer.flush().catch(() => {}) // let queued writes settle before collecting
    this.writer.release()
    // Chunks of an upload that never committed are garbage now (unless another file uses them).
    if (!committed && this.writer.digests.length > 0) {
      await this.c.store.collect(this.writer.digests).catch(err => { this.c.logger.warn({ err: toError(err).message }, 'could not collect the chunks of a failed upload') })
    }
  }
}
