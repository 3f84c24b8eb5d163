/**
 * The upload channel's 2.0.0 frames, still spoken so that a group upgrades
 * one node at a time (docs/operations.md): a node of this version serves
 * 2.0.0 to an older coordinator, and falls back to it when a member does not
 * speak 3.0.0 yet (replica/channel.ts). Drop it once no 2.0.0 node is left.
 *
 *   request 0x00 <CBOR ChannelControl>                      decide | name
 *           0x01 <varint n> <CBOR ChannelPutMeta: n bytes> <chunk: the rest>
 *   answer  <CBOR ChannelAnswer>
 */
import { Uint8ArrayList } from 'uint8arraylist'
import { encode as encodeVarint } from 'uint8-varint'
import { MAX_CHUNK_SIZE_BYTES, MAX_CONTROL_FRAME_BYTES } from '../constants.ts'
import { InvalidMessageError, MessageTooLargeError } from '../errors.ts'
import { decodeMessage, encodeTrusted } from './codec.ts'
import { ChannelAnswerSchema, ChannelControlSchema, ChannelPutMetaSchema } from './messages.ts'
import type { ChannelCodec } from './channel-frames.ts'
import type { ChannelRequest } from './messages.ts'

const CONTROL = 0x00
const PUT = 0x01
/** A put's fields are small: its manifest, stamp and members. */
const MAX_PUT_META_BYTES = MAX_CONTROL_FRAME_BYTES

function encodeRequest (req: ChannelRequest): Uint8ArrayList {
  if (req.put == null) return new Uint8ArrayList(Uint8Array.of(CONTROL), encodeTrusted(ChannelControlSchema, req))
  const { chunk, ...meta } = req.put
  if (chunk.byteLength > MAX_CHUNK_SIZE_BYTES) throw new InvalidMessageError(`refusing to send a chunk of ${chunk.byteLength} bytes (at most ${MAX_CHUNK_SIZE_BYTES})`)
  const fields = encodeTrusted(ChannelPutMetaSchema, meta)
  return new Uint8ArrayList(Uint8Array.of(PUT), encodeVarint(fields.byteLength), fields, chunk)
}

function decodeRequest (frame: Uint8Array, maxBytes: number): ChannelRequest {
  if (frame.byteLength > maxBytes) throw new MessageTooLargeError(`channel frame of ${frame.byteLength} bytes exceeds the limit of ${maxBytes}`)
  const kind = frame[0]
  if (kind === CONTROL) return decodeMessage(ChannelControlSchema, frame.subarray(1), MAX_CONTROL_FRAME_BYTES)
  if (kind !== PUT) throw new InvalidMessageError(kind == null ? 'empty channel frame' : `unknown channel frame kind ${kind}`)
  const [n, at] = fieldsLength(frame)
  if (n > MAX_PUT_META_BYTES || at + n > frame.byteLength) throw new InvalidMessageError(`a put's fields of ${n} bytes do not fit its frame of ${frame.byteLength}`)
  const meta = decodeMessage(ChannelPutMetaSchema, frame.subarray(at, at + n), MAX_PUT_META_BYTES)
  const chunk = frame.subarray(at + n)
  if (chunk.byteLength > MAX_CHUNK_SIZE_BYTES) throw new MessageTooLargeError(`a put's chunk of ${chunk.byteLength} bytes exceeds ${MAX_CHUNK_SIZE_BYTES}`)
  return { put: { ...meta, chunk } }
}

/** The varint after the kind byte: [value, offset of what follows]. At most 4 bytes (fields are small). */
function fieldsLength (frame: Uint8Array): [number, number] {
  let value = 0
  for (let i = 1; i < Math.min(frame.byteLength, 5); i++) {
    const b = frame[i] as number
    value += (b & 0x7f) * 2 ** (7 * (i - 1))
    if ((b & 0x80) === 0) return [value, i + 1]
  }
  throw new InvalidMessageError('a put frame without a valid length of its fields')
}

export const CHANNEL_V2: ChannelCodec = {
  encodeRequest,
  decodeRequest,
  encodeAnswer: (a) => encodeTrusted(ChannelAnswerSchema, a),
  decodeAnswer: (frame, maxBytes) => decodeMessage(ChannelAnswerSchema, frame, maxBytes)
}
