/**
 * Frames of the upload channel (`/dsm/channel/3.0.0`, replica/channel.ts).
 *
 * A put carries a whole one-chunk upload, up to a 1 MiB chunk. In CBOR the
 * chunk was encoded (a copy), decoded (another copy) and checked by zod,
 * every upload: at 1 MiB the copies' garbage collection was a third of a
 * member's CPU (docs/performance.md). So a put's chunk travels as raw bytes
 * after its fields, sent by reference and read as a view of the frame. Its
 * fields, a decision and a member's "prepared" — the frames every upload
 * sends — are fixed binary layouts (./put-fields.ts): CBOR and zod were
 * ~110 µs of CPU per 4 KiB upload across the two nodes (issue 23).
 *
 *   request 0x00 <CBOR ChannelControl>              a name push, or any decision
 *           0x01 <put fields> <chunk: the rest>
 *           0x02 <varint u> <u8 flags: 1 commit, 2 ack>
 *   answer  <CBOR ChannelAnswer>                     a map: its first byte is 0xa0–0xbf
 *           0x01 <varint u>                          prepared
 *
 * (An answer stays CBOR whole, as in 2.0.0: the guard that refuses an
 * unproven peer answers every protocol with the same CBOR error frame.)
 */
import { Uint8ArrayList } from 'uint8arraylist'
import { MAX_CHUNK_SIZE_BYTES, MAX_CONTROL_FRAME_BYTES } from '../constants.ts'
import { InvalidMessageError, MessageTooLargeError } from '../errors.ts'
import { decodeMessage, encodeTrusted } from './codec.ts'
import { ChannelAnswerSchema, ChannelControlSchema } from './messages.ts'
import { ByteReader, ByteWriter, readPutFields, writePutFields } from './put-fields.ts'
import type { ChannelAnswer, ChannelRequest } from './messages.ts'

/** One version's frames (2.0.0: ./channel-frames-v2.ts). */
export interface ChannelCodec {
  encodeRequest: (req: ChannelRequest) => Uint8ArrayList
  decodeRequest: (frame: Uint8Array, maxBytes: number) => ChannelRequest
  encodeAnswer: (a: ChannelAnswer) => Uint8Array | Uint8ArrayList
  decodeAnswer: (frame: Uint8Array, maxBytes: number) => ChannelAnswer
}

const CONTROL = 0x00
const PUT = 0x01
const DECIDE = 0x02
const PREPARED = 0x01
const COMMIT = 1
const ACK = 2

/** One request as the pieces of a frame's payload (a put's chunk by reference, not copied). */
export function encodeChannelRequest (req: ChannelRequest): Uint8ArrayList {
  const w = new ByteWriter()
  if (req.put != null) {
    const { chunk, ...fields } = req.put
    if (chunk.byteLength > MAX_CHUNK_SIZE_BYTES) throw new InvalidMessageError(`refusing to send a chunk of ${chunk.byteLength} bytes (at most ${MAX_CHUNK_SIZE_BYTES})`)
    w.byte(PUT)
    writePutFields(w, fields)
    return new Uint8ArrayList(w.done(), chunk)
  }
  const d = req.decide
  if (d != null && req.name == null) {
    w.byte(DECIDE)
    w.varint(d.u)
    w.byte((d.commit ? COMMIT : 0) | (d.ack === true ? ACK : 0))
    return new Uint8ArrayList(w.done())
  }
  return new Uint8ArrayList(Uint8Array.of(CONTROL), encodeTrusted(ChannelControlSchema, req))
}

/** A request from a frame's payload; a put's chunk is a view of `frame`. */
export function decodeChannelRequest (frame: Uint8Array, maxBytes: number): ChannelRequest {
  if (frame.byteLength > maxBytes) throw new MessageTooLargeError(`channel frame of ${frame.byteLength} bytes exceeds the limit of ${maxBytes}`)
  const kind = frame[0]
  if (kind === CONTROL) return decodeMessage(ChannelControlSchema, frame.subarray(1), MAX_CONTROL_FRAME_BYTES)
  const r = new ByteReader(frame, 1)
  if (kind === PUT) {
    const fields = readPutFields(r)
    const chunk = frame.subarray(r.offset)
    if (chunk.byteLength > MAX_CHUNK_SIZE_BYTES) throw new MessageTooLargeError(`a put's chunk of ${chunk.byteLength} bytes exceeds ${MAX_CHUNK_SIZE_BYTES}`)
    return { put: { ...fields, chunk } }
  }
  if (kind === DECIDE) {
    const u = r.varint('number', 0, Number.MAX_SAFE_INTEGER)
    const flags = r.byte('flags')
    if ((flags & ~(COMMIT | ACK)) !== 0 || r.offset !== frame.byteLength) throw new InvalidMessageError(`a malformed decision frame (flags ${flags}, ${frame.byteLength} bytes)`)
    return { decide: { u, commit: (flags & COMMIT) !== 0, ...((flags & ACK) !== 0 ? { ack: true as const } : {}) } }
  }
  throw new InvalidMessageError(kind == null ? 'empty channel frame' : `unknown channel frame kind ${kind}`)
}

/** A member's answer: "prepared" in a few bytes, the rest CBOR. */
export function encodeChannelAnswer (a: ChannelAnswer): Uint8Array | Uint8ArrayList {
  if (a.prepared === true && a.u != null && a.error == null && a.named == null && a.decided == null) {
    const w = new ByteWriter()
    w.byte(PREPARED)
    w.varint(a.u)
    return w.done()
  }
  return encodeTrusted(ChannelAnswerSchema, a)
}

export function decodeChannelAnswer (frame: Uint8Array, maxBytes: number): ChannelAnswer {
  if (frame.byteLength > maxBytes) throw new MessageTooLargeError(`channel answer of ${frame.byteLength} bytes exceeds the limit of ${maxBytes}`)
  if (frame[0] === PREPARED) {
    const r = new ByteReader(frame, 1)
    const u = r.varint('number', 0, Number.MAX_SAFE_INTEGER)
    if (r.offset !== frame.byteLength) throw new InvalidMessageError(`a "prepared" answer of ${frame.byteLength} bytes has bytes after its number`)
    return { u, prepared: true }
  }
  return decodeMessage(ChannelAnswerSchema, frame, maxBytes)
}

export const CHANNEL_V3: ChannelCodec = {
  encodeRequest: encodeChannelRequest,
  decodeRequest: decodeChannelRequest,
  encodeAnswer: encodeChannelAnswer,
  decodeAnswer: decodeChannelAnswer
}
