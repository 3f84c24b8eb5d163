/**
 * Request/response over one libp2p stream: the dialer writes one request
 * frame, the listener answers with one response frame, either `{ ok }` or
 * `{ error: { code, message } }`. Frames are varint length-prefixed CBOR.
 * Protocols that stream (put, get, sync) use ./frames.ts directly.
 */
import { z } from 'zod'
import { DRAIN_AFTER_ERROR_TIMEOUT_MS, MAX_CONTROL_FRAME_BYTES, REQUEST_TIMEOUT_MS } from '../constants.ts'
import { DsmError, UnavailableError, toError } from '../errors.ts'
import { answerSchema, ErrorFrameSchema, errorFrame, unwrapAnswer } from './answer.ts'
import { decodeMessage, encodeMessage, encodeTrusted } from './codec.ts'
import type { Answer } from './answer.ts'
import { FrameReader, writeFrame } from './frames.ts'
import type { AbortOptions, PeerId, Stream, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Concurrent inbound streams of one dsm protocol per connection. */
export const MAX_INBOUND_STREAMS_PER_PEER = 32
export const MAX_OUTBOUND_STREAMS_PER_PEER = 64

export interface Dialer {
  dialProtocol(peer: PeerId | Multiaddr, protocols: string | string[], options?: AbortOptions): Promise<Stream>
}

/**
 * Open a protocol stream; a peer we cannot reach (dead, partitioned, refusing
 * the protocol) is an UnavailableError, which the HTTP API answers with 503:
 * the caller may retry, nothing was changed.
 */
export async function dialStream (dialer: Dialer, peer: PeerId | Multiaddr, protocol: string | string[], options: AbortOptions = {}): Promise<Stream> {
  try {
    return await dialer.dialProtocol(peer, protocol, options)
  } catch (err) {
    if (err instanceof DsmError) throw err
    const e = toError(err)
    throw new UnavailableError(`cannot open ${String(protocol)} to ${peer.toString().slice(-8)}: ${e.message}`, { cause: e })
  }
}

export interface Registrar {
  handle(protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>
  unhandle(protocol: string): Promise<void>
}

/** The default timeout applies only when the caller gave no signal of its own. */
export function withDefaultTimeout (options: AbortOptions | undefined, timeoutMs: number): AbortSignal {
  return options?.signal ?? AbortSignal.timeout(timeoutMs)
}

export interface RequestOptions extends AbortOptions {
  maxResponseBytes?: number
}

export async function request<Req, Res> (
  dialer: Dialer, peer: PeerId | Multiaddr, protocol: string,
  reqSchema: z.ZodType<Req>, req: Req, resSchema: z.ZodType<Res>, options: RequestOptions = {}
): Promise<Res> {
  const signal = withDefaultTimeout(options, REQUEST_TIMEOUT_MS)
  const stream = await dialStream(dialer, peer, protocol, { signal })
  try {
    const maxBytes = options.maxResponseBytes ?? MAX_CONTROL_FRAME_BYTES
    const reader = new FrameReader(stream, { maxFrameBytes: maxBytes })
    await writeFrame(stream, encodeMessage(reqSchema, req), { signal })
    const res = decodeMessage(answerSchema(resSchema), await reader.readRequired({ signal }), maxBytes)
    await stream.close({ signal })
    return unwrapAnswer(res, `${peer.toString().slice(-8)} on ${protocol}`)
  } catch (err) {
    stream.abort(toError(err))
    // The peer's own answer keeps its meaning; a stream that broke or timed out is "unavailable".
    if (err instanceof DsmError) throw err
    throw new UnavailableError(`${protocol} to ${peer.toString().slice(-8)} failed: ${toError(err).message}`, { cause: err })
  }
}

export interface ServeOptions {
  maxRequestBytes?: number
  timeoutMs?: number
  /**
   * Answers built from this node's own rows, large and frequent (a sync page: every upload, pulled by
   * each mate): sent without zod on the way out (../wire/codec.ts encodeTrusted); the peer still checks
   * every field on receipt.
   */
  trustedAnswers?: boolean
}

/** Register a handler that answers one request per stream. */
export async function serve<Req, Res> (
  registrar: Registrar, protocol: string, reqSchema: z.ZodType<Req>, resSchema: z.ZodType<Res>,
  handler: (req: Req, remote: PeerId, options: AbortOptions) => Promise<Res>, options: ServeOptions = {}
): Promise<void> {
  const maxBytes = options.maxRequestBytes ?? MAX_CONTROL_FRAME_BYTES
  const schema = answerSchema(resSchema)
  await registrar.handle(protocol, (stream, connection) => {
    const signal = AbortSignal.timeout(options.timeoutMs ?? REQUEST_TIMEOUT_MS)
    void (async () => {
      const reader = new FrameReader(stream, { maxFrameBytes: maxBytes })
      let answer: Answer<Res>
      try {
        const req = decodeMessage(reqSchema, await reader.readRequired({ signal }), maxBytes)
        answer = { ok: await handler(req, connection.remotePeer, { signal }) }
      } catch (err) {
        const e = toError(err)
        answer = { error: errorFrame(e) }
      }
      await writeFrame(stream, options.trustedAnswers === true && answer.error == null ? encodeTrusted(schema, answer) : encodeMessage(schema, answer), { signal })
      await stream.close({ signal })
    })().catch((err: unknown) => { stream.abort(toError(err)) })
  }, { maxInboundStreams: MAX_INBOUND_STREAMS_PER_PEER, maxOutboundStreams: MAX_OUTBOUND_STREAMS_PER_PEER })
}

/**
 * Answer a streaming request with an error, then discard what the sender
 * still sends until it hangs up (senders check for an early answer between
 * frames), so the error frame is read rather than lost in a reset.
 */
export async function refuseAndDrain (stream: Stream, reader: FrameReader, err: Error): Promise<void> {
  try {
    await writeFrame(stream, encodeMessage(z.object({ error: ErrorFrameSchema }), { error: errorFrame(err) }), { signal: AbortSignal.timeout(2_000) })
    const signal = AbortSignal.timeout(DRAIN_AFTER_ERROR_TIMEOUT_MS)
    while (await reader.read({ signal }) != null) { /* discard */ }
    await stream.close({ signal })
  } catch (closeErr) {
    stream.abort(toError(closeErr))
  }
}
