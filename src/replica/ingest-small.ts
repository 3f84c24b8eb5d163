/**
 * The coordinator's path for an upload of one chunk (a declared size no
 * larger than the chunk size): the body is read whole, hashed, and sent to
 * every member as one frame on its upload channel (./channel.ts) while this
 * node prepares its own copy; the same commit rule as big uploads
 * (./commit.ts), without a stream per upload per member.
 */
import { NotAMemberError, QuorumError, toError } from '../errors.ts'
import { monotonicNow } from '../util/time.ts'
import { hashChunk } from '../content/chunk-hash.ts'
import { chunkStream } from '../content/chunker.ts'
import { announceAbort, announceCommit, prepareQuorum } from './commit.ts'
import { createManifest } from '../content/manifest.ts'
import type { Channel, Channels } from './channel.ts'
import type { CopyAttempt, QuorumPlan } from './commit.ts'
import type { IngestComponents } from './ingest-components.ts'
import type { SpaceReservation } from '../store/local-store.ts'
import type { ChannelPut, PutHeader, UploadResult } from '../wire/messages.ts'
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

  async put (req: Omit<ChannelPut, 'u'>, options: AbortOptions): Promise<void> {
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
}

export interface SmallUpload {
  header: PutHeader
  chunkSize: number
  targets: string[]
  plan: QuorumPlan
  reservation?: SpaceReservation
  detectMime: (name: string, head: Uint8Array | undefined) => Promise<string>
}

export async function ingestSmall (c: IngestComponents & { channels: Channels }, up: SmallUpload, source: AsyncIterable<Uint8Array | Uint8ArrayList>, options: AbortOptions): Promise<UploadResult> {
  const { header, chunkSize, plan } = up
  let data: Uint8Array | undefined
  for await (const chunk of chunkStream(source, chunkSize, { maxBytes: header.size ?? chunkSize })) {
    if (data != null) throw new QuorumError('a one-chunk upload sent more than one chunk')
    data = chunk.slice() // its own buffer: a view would keep the whole body it was cut from
  }
  data ??= new Uint8Array(0)
  if (header.size != null && data.byteLength !== header.size) throw new QuorumError(`the upload ended after ${data.byteLength} of the ${header.size} bytes announced`)
  if (c.status.group !== header.group || c.status.state !== 'ACTIVE') throw new NotAMemberError(`this node cannot coordinate writes to ${header.group} (${c.status.state})`)
  const hashed = await hashChunk(data)
  const chunks = data.byteLength > 0 ? [hashed.digest] : []
  const manifest = await createManifest({ size: data.byteLength, chunkSize, chunks, name: header.name, mime: header.mime ?? await up.detectMime(header.name, data.subarray(0, 4100)) })
  const id = manifest.id.toString()
  const createdAt = Date.now()
  const ts = c.store.clock.next(c.store.index.get(id)?.ts)
  const key = { id, ts, origin: c.selfId }
  const prepare = { manifest: manifest.bytes, createdAt, ts, origin: c.selfId, copies: plan.copies, members: up.targets }
  const copies = up.targets.map(peer => new ChannelCopy(c.channels, peer))
  for (const d of chunks) c.store.pin(d)
  const endDeciding = c.store.beginDeciding(key)
  let localPrepared = false
  let committed = false
  let prepares: Array<Promise<void>> = []
  let local: Promise<void> | undefined
  try {
    local = (async () => {
      const staged = chunks.length === 0 || c.store.chunks.has(hashed.digest) ? [] : [await c.store.putChunk(hashed.digest, data, up.reservation, hashed.leaves)]
      try {
        await c.store.prepare({ ...key, group: header.group, manifest: manifest.bytes, createdAt, copies: plan.copies, members: up.targets, at: monotonicNow() }, staged, manifest)
      } finally {
        c.store.chunks.discard(staged) // a no-op once indexed; else its volume may be compacted again
      }
      localPrepared = true
    })()
    prepares = copies.map(async copy => copy.put({ group: header.group, chunkSize, chunk: data, prepare }, options))
    const ready = await prepareQuorum(local, copies, prepares, plan)
    await c.store.commitPrepared(key)
    committed = true
    announceCommit(copies, prepares, ready)
    return { id, size: data.byteLength, name: manifest.name, mime: manifest.mime, group: header.group, createdAt, replicas: [c.selfId, ...ready.map(r => r.peer)] }
  } catch (err) {
    await announceAbort(copies, prepares, local)
    if (localPrepared && !committed) await c.store.abortPrepared(key).catch(e => { c.logger.warn({ err: toError(e).message }, 'could not drop a prepared upload; the resolver will') })
    throw err
  } finally {
    endDeciding()
    c.store.unpin(chunks)
    if (!committed) await c.store.collect(chunks).catch(() => {})
  }
}
