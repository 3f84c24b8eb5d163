/**
 * `/dsm/channel/3.0.0`: small uploads between a coordinator and a member
 * over one long-lived stream, many at once. Opening a stream per upload
 * (protocol negotiation, a proof check, listeners and timers) cost more than
 * a whole 4 KiB upload; on the channel a one-chunk upload is one frame — its
 * chunk and its prepare (./replicate.ts has the same two phases for big
 * files) — answered by one frame once the member holds it durably, then one
 * decision frame that needs no answer (unless the upload carries a key
 * record: below).
 *
 *   coordinator → member: { put: { u, group, chunkSize, chunk, prepare } } | { decide: { u, commit, ack? } }
 *                         | { name: { u, req } }
 *   member → coordinator: { u, prepared } | { u, named } | { u, decided } | { u, error }
 *
 * An upload's prepare may carry an S3 key record that commits with it
 * (./carried-name.ts); its decision then asks for an answer (`ack`): whether
 * the member applied the record, or holds a newer stamp of the name.
 *
 * A member also pushes the S3 name operations it stamps to its mates here
 * (`name`: ./names.ts), one frame each way, rather than on a stream per push.
 *
 * A decision lost with the stream is recovered by the member's resolver
 * (./resolve.ts), as on the per-upload streams.
 */
import { streamHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { equals } from 'uint8arrays/equals'
import { MAX_CHUNK_SIZE_BYTES, MAX_CONTROL_FRAME_BYTES } from '../constants.ts'
import { InvalidManifestError, NotAMemberError, UnavailableError, remoteError, toError } from '../errors.ts'
import { raceSignal } from '../util/abort.ts'
import { monotonicNow } from '../util/time.ts'
import { decodeMessage } from '../wire/codec.ts'
import { FrameBatch } from '../wire/frame-batch.ts'
import { FrameReader } from '../wire/frames.ts'
import { PROTOCOLS } from '../wire/messages.ts'
import { CHANNEL_V3 } from '../wire/channel-frames.ts'
import { CHANNEL_V2 } from '../wire/channel-frames-v2.ts'
import type { ChannelCodec } from '../wire/channel-frames.ts'
import { NameOpSchema } from '../wire/names.ts'
import { isNewer } from '../store/file-index.ts'
import { dialStream } from '../wire/rpc.ts'
import { errorFrame, frameBytesFor } from '../wire/answer.ts'
import { hashChunk } from '../content/chunk-hash.ts'
import { decodeManifest } from '../content/manifest.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { StagedChunk } from '../store/chunk-store.ts'
import type { PreparedName, UploadKey } from '../store/prepared.ts'
import type { ChannelAnswer, ChannelDecided, ChannelPut, ChannelRequest } from '../wire/messages.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions, Stream } from '@libp2p/interface'

/** Uploads a member works on at once per channel; beyond, it stops reading (the coordinator waits). */
export const CHANNEL_MAX_IN_FLIGHT = 64
const MAX_CHANNEL_FRAME_BYTES = frameBytesFor(MAX_CHUNK_SIZE_BYTES)
/** Opening a channel, or one frame that cannot be written, gives up after this long. */
const CHANNEL_WRITE_TIMEOUT_MS = 10_000

/** The coordinator's end: one channel per member, opened on first use and again after it breaks. */
export class Channel {
  readonly peer: string
  private readonly dialer: Dialer
  private stream?: Promise<{ stream: Stream, reader: FrameReader, batch: FrameBatch, codec: ChannelCodec }>
  private next = 0
  private readonly waiting = new Map<number, PromiseWithResolvers<ChannelAnswer>>()

  constructor (dialer: Dialer, peer: string) {
    this.dialer = dialer
    this.peer = peer
  }

  /** Send a one-chunk upload; resolves once the member prepared it durably (returns its number for the decision). */
  async put (req: Omit<ChannelPut, 'u'>, options: AbortOptions): Promise<number> {
    const u = this.next++
    await this.ask(u, { put: { ...req, u } }, options)
    return u
  }

  /** Push an encoded name operation (NameApplyRequest); resolves with the mate's encoded answer. */
  async name (req: Uint8Array, options: AbortOptions): Promise<Uint8Array> {
    const u = this.next++
    const answer = await this.ask(u, { name: { u, req } }, options)
    if (answer.named == null) throw remoteError('ERR_PROTOCOL', `replica ${this.peer.slice(-8)} answered a name push with no answer`)
    return answer.named
  }

  private async ask (u: number, req: ChannelRequest, options: AbortOptions): Promise<ChannelAnswer> {
    const { batch, codec } = await this.open(options)
    const wait = Promise.withResolvers<ChannelAnswer>()
    // The channel may fail (and reject every waiter) while this frame still waits for the end of the turn
    // to be sent: the rejection is this call's to throw, after the write — not an unhandled one meanwhile.
    wait.promise.catch(() => {})
    this.waiting.set(u, wait)
    try {
      await batch.write(codec.encodeRequest(req), options)
      return await raceSignal(wait.promise, options.signal)
    } finally {
      this.waiting.delete(u)
    }
  }

  /** Tell the member the decision and wait for its answer: what it holds of the key record the upload carried. */
  async decideAndAsk (u: number, options: AbortOptions): Promise<ChannelDecided> {
    const answer = await this.ask(u, { decide: { u, commit: true, ack: true } }, options)
    if (answer.decided == null) throw remoteError('ERR_PROTOCOL', `replica ${this.peer.slice(-8)} answered a decision with no outcome`)
    return answer.decided
  }

  /** Tell the member the decision; nothing waits for it (a lost one is recovered by the member). */
  decide (u: number, commit: boolean): void {
    void this.stream?.then(async ({ batch, codec }) => batch.write(codec.encodeRequest({ decide: { u, commit } }), { timeoutMs: CHANNEL_WRITE_TIMEOUT_MS }))
      .catch(() => { /* the member's resolver asks us */ })
  }

  close (): void {
    void this.stream?.then(({ stream }) => { stream.abort(new Error('channel closed')) }, () => {})
    this.stream = undefined
  }

  /** The versions this end speaks, newest first (multistream-select takes the first the member speaks). */
  get protocols (): string[] {
    return [PROTOCOLS.channel, PROTOCOLS.channelV2]
  }

  private async open (options: AbortOptions): Promise<{ stream: Stream, reader: FrameReader, batch: FrameBatch, codec: ChannelCodec }> {
    this.stream ??= (async () => {
      // Its own deadline: the channel outlives the upload that happened to open it. A member not upgraded
      // yet speaks only 2.0.0 (a group is upgraded one node at a time).
      const stream = await dialStream(this.dialer, peerIdFromString(this.peer), this.protocols, { signal: AbortSignal.timeout(CHANNEL_WRITE_TIMEOUT_MS) })
      const codec = codecOf(stream.protocol)
      const reader = new FrameReader(stream, { maxFrameBytes: MAX_CONTROL_FRAME_BYTES })
      this.readAnswers(stream, reader, codec).catch(() => {})
      return { stream, reader, batch: new FrameBatch(stream), codec }
    })()
    const opening = this.stream
    try {
      return await opening
    } catch (err) {
      if (this.stream === opening) this.stream = undefined
      throw err
    }
  }

  private async readAnswers (stream: Stream, reader: FrameReader, codec: ChannelCodec): Promise<void> {
    let why: Error = new UnavailableError(`the channel to ${this.peer.slice(-8)} closed`)
    try {
      for (let frame = await reader.read(); frame != null; frame = await reader.read()) {
        const a: ChannelAnswer = codec.decodeAnswer(frame, MAX_CONTROL_FRAME_BYTES)
        if (a.u == null) {
          if (a.error != null) why = remoteError(a.error.code, `replica ${this.peer.slice(-8)}: ${a.error.message}`)
          break
        }
        const w = this.waiting.get(a.u)
        if (a.error != null) w?.reject(remoteError(a.error.code, `replica ${this.peer.slice(-8)}: ${a.error.message}`))
        else w?.resolve(a)
      }
    } catch (err) {
      why = new UnavailableError(`the channel to ${this.peer.slice(-8)} broke: ${toError(err).message}`)
    } finally {
      reader.release()
      if (this.stream != null) {
        const current = await this.stream.catch(() => undefined)
        if (current?.stream === stream) this.stream = undefined
      }
      for (const w of this.waiting.values()) w.reject(why)
      this.waiting.clear()
    }
  }
}

/** Channels of this node as a coordinator, one per member it writes to. */
export class Channels {
  private readonly dialer: Dialer
  private readonly byPeer = new Map<string, Channel>()

  constructor (dialer: Dialer) {
    this.dialer = dialer
  }

  to (peer: string): Channel {
    let c = this.byPeer.get(peer)
    if (c == null) {
      c = new Channel(this.dialer, peer)
      this.byPeer.set(peer, c)
    }
    return c
  }

  close (): void {
    for (const c of this.byPeer.values()) c.close()
    this.byPeer.clear()
  }
}

export interface ChannelServerComponents {
  store: LocalStore
  status: LocalStatus
  logger: Logger
  /** Apply a pushed name operation (encoded NameApplyRequest → encoded answer): ./names.ts. */
  applyName?: (req: Uint8Array) => Promise<Uint8Array>
}

/** The member's end: prepare each upload as it comes (several at once), answer, apply decisions. */
export async function serveChannel (c: ChannelServerComponents, stream: Stream, codec: ChannelCodec = CHANNEL_V3): Promise<void> {
  const reader = new FrameReader(stream, { maxFrameBytes: MAX_CHANNEL_FRAME_BYTES, highWaterBytes: 2 * MAX_CHANNEL_FRAME_BYTES })
  const prepared = new Map<number, Held>()
  const inFlight = new Set<Promise<void>>()
  // The answers of one turn go out as one write (../wire/frame-batch.ts).
  const batch = new FrameBatch(stream)
  const answer = async (a: ChannelAnswer): Promise<void> => {
    await batch.write(codec.encodeAnswer(a), { timeoutMs: CHANNEL_WRITE_TIMEOUT_MS }).catch(() => { /* the channel broke: the coordinator sees it */ })
  }
  try {
    for (let frame = await reader.read(); frame != null; frame = await reader.read()) {
      const req = codec.decodeRequest(frame, MAX_CHANNEL_FRAME_BYTES)
      let work: Promise<void>
      if (req.decide != null) {
        const { u, commit, ack } = req.decide
        const held = prepared.get(u)
        prepared.delete(u)
        const decide = async (): Promise<void> => { if (held != null) await (commit ? c.store.commitPrepared(held.key) : c.store.abortPrepared(held.key)) }
        // Applied without holding up the frames behind it: the decisions of one turn share a transaction
        // (awaiting each one here made every decision a transaction of its own). A decision that fails to
        // apply leaves the prepared record, which the resolver decides (./resolve.ts).
        work = ack !== true
          ? decide().catch((err: unknown) => { c.logger.warn({ err: toError(err).message, u }, 'could not apply a decision; the resolver will') })
          : decide()
            .then(async () => { await answer({ u, decided: decidedName(c, held) }) })
            .catch(async (err: unknown) => { await answer({ u, error: errorFrame(toError(err)) }) })
      } else if (req.name != null) {
        const { u, req: named } = req.name
        work = (c.applyName != null ? c.applyName(named) : Promise.reject(new UnavailableError('this node does not apply name operations')))
          .then(async out => { await answer({ u, named: out }) })
          .catch(async (err: unknown) => { await answer({ u, error: errorFrame(toError(err)) }) })
      } else if (req.put != null) {
        const put = req.put
        work = prepareOne(c, put)
          .then(async held => { prepared.set(put.u, held); await answer({ u: put.u, prepared: true }) })
          .catch(async (err: unknown) => { await answer({ u: put.u, error: errorFrame(toError(err)) }) })
      } else {
        continue
      }
      const settled = work.finally(() => { inFlight.delete(settled) })
      inFlight.add(settled)
      if (inFlight.size >= CHANNEL_MAX_IN_FLIGHT) await Promise.race(inFlight)
    }
    await Promise.allSettled(inFlight)
    await stream.close()
  } catch (err) {
    c.logger.debug({ err: toError(err).message }, 'upload channel ended')
    stream.abort(toError(err))
  } finally {
    reader.release()
  }
}

/** An upload prepared here, and the key record it carries. */
interface Held { key: UploadKey, name?: PreparedName }

/** What we hold of an upload's key record now that it was decided: it applied, or a newer stamp of the name. */
function decidedName (c: ChannelServerComponents, held: Held | undefined): ChannelDecided {
  const n = held?.name
  if (n == null) return { applied: false }
  const row = c.store.names.get(n.bucket, n.key)
  if (row == null) return { applied: false }
  if (row.ts === n.ts && row.origin === n.origin) return { applied: true }
  return { applied: false, ...(isNewer(row, n) ? { holds: { ts: row.ts, origin: row.origin } } : {}) }
}

/** The key record an upload carries, as this copy prepares it (never reclaiming: the coordinator's copy does). */
function carriedName (frame: Uint8Array | undefined): PreparedName | undefined {
  if (frame == null) return undefined
  const op = decodeMessage(NameOpSchema, frame, MAX_CONTROL_FRAME_BYTES)
  return { bucket: op.bucket, key: op.key, live: op.live, ts: op.ts, origin: op.origin, ...(op.value != null ? { value: op.value } : {}), reclaims: false }
}

/** Check one small upload against its manifest and prepare it durably here. */
async function prepareOne (c: ChannelServerComponents, put: ChannelPut): Promise<Held> {
  if (c.status.group !== put.group || (c.status.state !== 'ACTIVE' && c.status.state !== 'SYNCING')) {
    throw new NotAMemberError(`not a member of group ${put.group} (group ${c.status.group ?? 'none'}, ${c.status.state})`)
  }
  if (put.chunk.byteLength > put.chunkSize) throw new InvalidManifestError(`chunk of ${put.chunk.byteLength} bytes exceeds the chunk size ${put.chunkSize}`)
  const hashed = await hashChunk(put.chunk)
  const manifest = await decodeManifest(put.prepare.manifest)
  if (manifest.chunkSize !== put.chunkSize || manifest.chunks.length !== 1 || !equals(manifest.chunks[0] as Uint8Array, hashed.digest)) {
    throw new InvalidManifestError('the manifest does not list the chunk that was sent')
  }
  const key = { id: manifest.id.toString(), ts: put.prepare.ts, origin: put.prepare.origin }
  const name = carriedName(put.prepare.name)
  c.store.pin(hashed.digest)
  let staged: StagedChunk[] = []
  try {
    staged = await c.store.stageChunk(hashed.digest, put.chunk, undefined, hashed.leaves)
    await c.store.prepare({ ...key, group: put.group, manifest: manifest.bytes, createdAt: put.prepare.createdAt, copies: put.prepare.copies, members: put.prepare.members, at: monotonicNow(), ...(name != null ? { name } : {}) }, staged, manifest)
  } finally {
    c.store.unpin([hashed.digest])
    c.store.chunks.discard(staged) // a no-op once indexed; else its volume may be compacted again
  }
  return { key, ...(name != null ? { name } : {}) }
}

/** The frames of the negotiated channel version. */
function codecOf (protocol: string): ChannelCodec {
  return protocol === PROTOCOLS.channelV2 ? CHANNEL_V2 : CHANNEL_V3
}

/** `/dsm/channel` (3.0.0, and 2.0.0 for coordinators not upgraded yet): a coordinator's long-lived stream of one-chunk uploads. */
export function channelHandlers (c: ChannelServerComponents): ProtocolHandler[] {
  return [PROTOCOLS.channel, PROTOCOLS.channelV2].map(p => streamHandler(p, async (stream) => { await serveChannel(c, stream, codecOf(p)) }))
}
