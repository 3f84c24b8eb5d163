/**
 * `/dsm/replicate/2.0.0`: the coordinator of an upload streams every chunk to
 * the other members of the group as it reads it, then the prepare, then the
 * decision. One forced write per member (see replica/commit.ts):
 *
 *   prepare: a member checks that the manifest lists exactly the chunks it
 *            received, makes them and a prepared record durable in one group
 *            commit, and answers `prepared` — the file is still invisible;
 *   decide:  commit (the record becomes the file, not forced: the decision
 *            can be recovered from the coordinator or the group) or abort.
 *
 *   coordinator → member: header, chunk frames…, empty frame, prepare frame
 *   member → coordinator: { ok: { prepared } } | { error }  (an error may come
 *                         early, e.g. out of space: checked before each chunk)
 *   coordinator → member: decision { commit }, then it closes
 *
 * A member that never hears the decision (the coordinator died, the stream
 * broke) keeps its prepared record; the resolver decides it (replica/resolve.ts).
 */
import { streamHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { equals } from 'uint8arrays/equals'
import { MAX_CHUNK_SIZE_BYTES, MAX_CONTROL_FRAME_BYTES, MAX_MANIFEST_BYTES, TRANSFER_IDLE_TIMEOUT_MS } from '../constants.ts'
import { InvalidManifestError, NotAMemberError, toError } from '../errors.ts'
import { DECISION_TIMEOUT_MS } from './commit.ts'
import { IdleTimeout } from '../util/abort.ts'
import { monotonicNow } from '../util/time.ts'
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { FrameReader, writeFrame } from '../wire/frames.ts'
import { PROTOCOLS, PrepareFrameSchema, PreparedSchema, ReplicateHeaderSchema } from '../wire/messages.ts'
import { dialStream, refuseAndDrain } from '../wire/rpc.ts'
import { answerSchema, frameBytesFor, unwrapAnswer } from '../wire/answer.ts'
import { hashChunk } from '../content/chunk-hash.ts'
import { decodeManifest } from '../content/manifest.ts'
import { ChunkWriter } from '../store/chunk-writer.ts'
import { z } from 'zod'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { PrepareFrame, ReplicateHeader } from '../wire/messages.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions, Stream } from '@libp2p/interface'

const MAX_CHUNK_FRAME_BYTES = frameBytesFor(MAX_CHUNK_SIZE_BYTES)
const AnswerSchema = answerSchema(PreparedSchema)
const DecisionSchema = z.object({ commit: z.boolean() })
const EMPTY = new Uint8Array(0)

/** The coordinator's end of one replication stream. */
export class ReplicaSession {
  readonly peer: string
  /** Set once this member dropped out; it no longer counts as a copy. */
  failure?: Error
  /** The member holds every chunk and the prepared record durably, and waits for the decision. */
  prepared = false
  private readonly stream: Stream
  private readonly reader: FrameReader

  private constructor (peer: string, stream: Stream) {
    this.peer = peer
    this.stream = stream
    this.reader = new FrameReader(stream, { maxFrameBytes: MAX_CONTROL_FRAME_BYTES })
  }

  static async open (dialer: Dialer, peer: string, header: ReplicateHeader, options: AbortOptions): Promise<ReplicaSession> {
    const stream = await dialStream(dialer, peerIdFromString(peer), PROTOCOLS.replicate, options)
    const session = new ReplicaSession(peer, stream)
    await writeFrame(stream, encodeMessage(ReplicateHeaderSchema, header), options)
    return session
  }

  /** Send one chunk; a member that failed is dropped, never fatal for the others. */
  async sendChunk (chunk: Uint8Array, options: AbortOptions): Promise<void> {
    if (this.failure != null) return
    try {
      if (this.reader.ready()) await this.readAnswer(options)
      await writeFrame(this.stream, chunk, options)
    } catch (err) {
      this.fail(toError(err))
    }
  }

  /** End the chunks and send the prepare; resolves when the member holds it durably (not yet visible). */
  async prepare (frame: PrepareFrame, options: AbortOptions): Promise<void> {
    if (this.failure != null) throw this.failure
    try {
      await writeFrame(this.stream, EMPTY, options)
      await writeFrame(this.stream, encodeMessage(PrepareFrameSchema, frame), options)
      await this.readAnswer(options)
      this.prepared = true
    } catch (err) {
      this.fail(toError(err))
      throw this.failure ?? err
    }
  }

  /** Tell a prepared member the decision; it needs no answer (a lost one is recovered by the member). */
  async decide (commit: boolean): Promise<void> {
    if (this.failure != null) throw this.failure
    if (!this.prepared) throw new Error('no decision before the member prepared')
    const options = { signal: AbortSignal.timeout(DECISION_TIMEOUT_MS) }
    try {
      await writeFrame(this.stream, encodeMessage(DecisionSchema, { commit }), options)
      await this.stream.close(options)
    } catch (err) {
      this.fail(toError(err))
      throw this.failure ?? err
    }
  }

  abort (err: Error): void {
    this.fail(err)
  }

  private async readAnswer (options: AbortOptions): Promise<void> {
    unwrapAnswer(decodeMessage(AnswerSchema, await this.reader.readRequired(options), MAX_CONTROL_FRAME_BYTES), `replica ${this.peer.slice(-8)}`, { prefix: true })
  }

  private fail (err: Error): void {
    this.failure ??= err
    this.reader.release()
    if (this.stream.status === 'open') this.stream.abort(err)
  }
}

export interface ReplicateServerComponents {
  store: LocalStore
  status: LocalStatus
  logger: Logger
}

/** The member's end: store the chunks, check the manifest, prepare durably, then apply the decision. */
export async function serveReplicate (c: ReplicateServerComponents, stream: Stream, remote: string): Promise<void> {
  const idle = new IdleTimeout(TRANSFER_IDLE_TIMEOUT_MS, 'replication')
  const reader = new FrameReader(stream, { maxFrameBytes: Math.max(MAX_CHUNK_FRAME_BYTES, frameBytesFor(MAX_MANIFEST_BYTES)), highWaterBytes: 2 * MAX_CHUNK_FRAME_BYTES })
  const endTransfer = c.status.beginTransfer()
  const writer = new ChunkWriter(c.store)
  const digests = writer.digests
  const options = { signal: idle.signal }
  let prepared = false
  let aborted = false
  try {
    const header = decodeMessage(ReplicateHeaderSchema, await reader.readRequired(options), MAX_CONTROL_FRAME_BYTES)
    if (c.status.group !== header.group || (c.status.state !== 'ACTIVE' && c.status.state !== 'SYNCING')) {
      throw new NotAMemberError(`not a member of group ${header.group} (group ${c.status.group ?? 'none'}, ${c.status.state})`)
    }
    for (;;) {
      const frame = await reader.readRequired(options)
      idle.touch()
      if (frame.byteLength === 0) break
      if (frame.byteLength > header.chunkSize) throw new InvalidManifestError(`chunk of ${frame.byteLength} bytes exceeds the chunk size ${header.chunkSize}`)
      const hashed = await hashChunk(frame)
      await writer.put(hashed.digest, frame, { ...options, leaves: hashed.leaves })
    }
    const frame = decodeMessage(PrepareFrameSchema, await reader.readRequired(options), frameBytesFor(MAX_MANIFEST_BYTES))
    const manifest = await decodeManifest(frame.manifest)
    if (manifest.chunkSize !== header.chunkSize || manifest.chunks.length !== digests.length ||
      !manifest.chunks.every((d, i) => equals(d, digests[i] ?? EMPTY))) {
      throw new InvalidManifestError('the manifest does not list the chunks that were sent')
    }
    const key = { id: manifest.id.toString(), ts: frame.ts, origin: frame.origin }
    await c.store.prepare({ ...key, group: header.group, manifest: manifest.bytes, createdAt: frame.createdAt, copies: frame.copies, members: frame.members, at: monotonicNow() },
      await writer.flush(options), manifest)
    prepared = true
    await writeFrame(stream, encodeMessage(AnswerSchema, { ok: { prepared: true } }), options)
    // From here on the record is durable: a lost decision leaves it to the resolver, never to chance.
    const decision = await reader.read(options).then(f => f == null ? undefined : decodeMessage(DecisionSchema, f, MAX_CONTROL_FRAME_BYTES)).catch(() => undefined)
    if (decision?.commit === true) await c.store.commitPrepared(key)
    else if (decision?.commit === false) aborted = await c.store.abortPrepared(key)
    if (decision != null) await stream.close(options).catch(() => {})
    else stream.abort(new Error('no decision'))
  } catch (err) {
    const e = toError(err)
    c.logger.debug({ err: e.message, from: remote.slice(-8) }, 'replication refused')
    if (!prepared) await refuseAndDrain(stream, reader, e)
    else stream.abort(e)
  } finally {
    idle.clear()
    reader.release()
    await writer.flush().catch(() => {}) // let queued writes settle before collecting
    writer.release()
    // Never prepared here, or aborted: what it wrote is garbage (unless another file uses the chunks).
    if (!prepared || aborted) await c.store.collect(digests).catch(err => { c.logger.warn({ err: toError(err).message }, 'could not collect the chunks of a failed replication') })
    endTransfer()
  }
}

/** `/dsm/replicate`: a coordinator streams a big upload's chunks here, then its prepare. */
export function replicateHandler (c: ReplicateServerComponents): ProtocolHandler {
  return streamHandler(PROTOCOLS.replicate, async (stream, remote) => { await serveReplicate(c, stream, remote) })
}
