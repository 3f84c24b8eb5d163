/**
 * `/dsm/put/1.0.0`: a node that is not a member of the target group streams
 * an upload to a member, which coordinates it (./ingest.ts).
 *
 *   client → coordinator: header, data frames…, empty frame
 *   coordinator → client: { ok: UploadResult } | { error } (an error may come
 *   early, e.g. out of space: the client checks between frames)
 */
import { streamHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { Uint8ArrayList } from 'uint8arraylist'
import { MAX_CONTROL_FRAME_BYTES, TRANSFER_IDLE_TIMEOUT_MS } from '../constants.ts'
import { RemoteError, UnavailableError, toError } from '../errors.ts'
import { IdleTimeout } from '../util/abort.ts'
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { FrameReader, writeFrame } from '../wire/frames.ts'
import { PROTOCOLS, PutHeaderSchema, UploadResultSchema } from '../wire/messages.ts'
import { dialStream, refuseAndDrain } from '../wire/rpc.ts'
import { answerSchema, frameBytesFor, unwrapAnswer } from '../wire/answer.ts'
import type { PutHeader, UploadResult } from '../wire/messages.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions, Stream } from '@libp2p/interface'

/** Raw data frames of an upload stream. */
export const MAX_DATA_FRAME_BYTES = 1024 * 1024

const AnswerSchema = answerSchema(UploadResultSchema)
const EMPTY = new Uint8Array(0)
/** How long a failed upload stream is searched for the coordinator's answer. */
const ANSWER_AFTER_FAILURE_MS = 2_000

export type Ingest = (header: PutHeader, source: AsyncIterable<Uint8Array>, options: AbortOptions) => Promise<UploadResult>

/** The coordinator's end: feed the data frames to `ingest`, answer with its result. */
export async function servePut (stream: Stream, ingest: Ingest): Promise<void> {
  const idle = new IdleTimeout(TRANSFER_IDLE_TIMEOUT_MS, 'upload')
  const reader = new FrameReader(stream, { maxFrameBytes: frameBytesFor(MAX_DATA_FRAME_BYTES) })
  const options = { signal: idle.signal }
  try {
    const header = decodeMessage(PutHeaderSchema, await reader.readRequired(options), MAX_CONTROL_FRAME_BYTES)
    const source = (async function * () {
      for (;;) {
        const frame = await reader.readRequired(options)
        idle.touch()
        if (frame.byteLength === 0) return
        yield frame
      }
    })()
    const result = await ingest(header, source, options)
    await writeFrame(stream, encodeMessage(AnswerSchema, { ok: result }), options)
    await stream.close(options)
  } catch (err) {
    await refuseAndDrain(stream, reader, toError(err))
  } finally {
    idle.clear()
    reader.release()
  }
}

/**
 * The client's end: stream `source` to a coordinator and return its answer.
 * `peer` may name several: the first one a stream opens to takes it (nothing
 * of the body is read before, so a member that died and is not yet OFFLINE in
 * our view costs a dial, not the upload).
 */
export async function putRemote (dialer: Dialer, peer: string | string[], header: PutHeader, source: AsyncIterable<Uint8Array | Uint8ArrayList>, options: AbortOptions = {}): Promise<UploadResult> {
  // Encoded first: an invalid header is our caller's error, not the coordinator failing.
  const headerFrame = encodeMessage(PutHeaderSchema, header)
  const pieces = source[Symbol.asyncIterator]()
  let sourceDone = false
  let sourceFailed = false
  let stream: Stream | undefined
  let reader: FrameReader | undefined
  try {
    stream = await openFirst(dialer, Array.isArray(peer) ? peer : [peer], options)
    reader = new FrameReader(stream, { maxFrameBytes: MAX_CONTROL_FRAME_BYTES })
    await writeFrame(stream, headerFrame, options)
    for (;;) {
      let next: IteratorResult<Uint8Array | Uint8ArrayList>
      try {
        next = await pieces.next()
      } catch (err) {
        sourceFailed = true
        throw err
      }
      if (next.done === true) {
        sourceDone = true
        break
      }
      // An early answer is always an error (the coordinator refused mid-way).
      if (reader.ready()) return await readAnswer(reader, options)
      const list = next.value instanceof Uint8ArrayList ? next.value : new Uint8ArrayList(next.value)
      for (let at = 0; at < list.byteLength; at += MAX_DATA_FRAME_BYTES) {
        await writeFrame(stream, list.subarray(at, Math.min(list.byteLength, at + MAX_DATA_FRAME_BYTES)), options)
      }
    }
    await writeFrame(stream, EMPTY, options)
    const result = await readAnswer(reader, options)
    await stream.close(options)
    return result
  } catch (err) {
    // A coordinator that refused mid-way answers, then stops reading: our write may fail before we saw the
    // answer. Its answer (e.g. ERR_QUORUM) says more than "the stream broke", so look for it first.
    if (!sourceFailed && !(err instanceof RemoteError) && reader != null) {
      const answered = await readAnswer(reader, { signal: AbortSignal.timeout(ANSWER_AFTER_FAILURE_MS) }).then(() => undefined, (e: unknown) => e)
      if (answered instanceof RemoteError) {
        stream?.abort(answered)
        throw answered
      }
    }
    stream?.abort(toError(err))
    // The coordinator's own answer and our sender's failure keep their meaning; a broken stream is "unavailable".
    if (sourceFailed || err instanceof RemoteError || err instanceof UnavailableError) throw err
    throw new UnavailableError(`the coordinator ${peer.slice(-8)} of ${header.group} failed during the upload (${toError(err).message}); not acknowledged — retry`)
  } finally {
    reader?.release()
    // Release the body we stopped reading (an HTTP request: its connection must not wedge).
    if (!sourceDone && !sourceFailed) await pieces.return?.()
  }
}

async function readAnswer (reader: FrameReader, options: AbortOptions): Promise<UploadResult> {
  return unwrapAnswer(decodeMessage(AnswerSchema, await reader.readRequired(options), MAX_CONTROL_FRAME_BYTES), 'the coordinator')
}

/** `/dsm/put`: a peer hands this node (its group's coordinator) an upload. */
export function putHandler (ingest: Ingest): ProtocolHandler {
  return streamHandler(PROTOCOLS.put, async (stream) => { await servePut(stream, ingest) })
}

/** A put stream to the first of `peers` that opens one. */
async function openFirst (dialer: Dialer, peers: string[], options: AbortOptions): Promise<Stream> {
  let last: unknown
  for (const p of peers) {
    try {
      return await dialStream(dialer, peerIdFromString(p), PROTOCOLS.put, options)
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      last = err
    }
  }
  throw last ?? new UnavailableError('no coordinator to send the upload to')
}
