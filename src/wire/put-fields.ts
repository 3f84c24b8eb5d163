/**
 * A channel put's fields as a fixed binary layout (`/dsm/channel/3.0.0`,
 * ./channel-frames.ts), every upload's hot path on both nodes. In CBOR they
 * cost the coordinator ~50 µs to encode and the member ~60 µs to decode and
 * check with zod (issue 23's profiles, a 4 KiB upload); here a few µs. The
 * checks are the schema's (ChannelPutMetaSchema, with its patterns): a test
 * holds this decoder to accept exactly what that schema accepts.
 *
 *   varint u, varint chunkSize, varint createdAt, varint ts, varint copies,
 *   str group, str origin, u8 member count, str × count,
 *   varint manifest length, manifest, u8 flags (bit 0: a key record follows),
 *   [varint key record length, key record]
 *
 * A `str` is a u8 length and that many ASCII bytes; a varint is unsigned
 * LEB128, at most 8 bytes and at most 2^53 − 1.
 */
import { MAX_CHUNK_SIZE_BYTES, MAX_CONTROL_FRAME_BYTES } from '../constants.ts'
import { InvalidMessageError } from '../errors.ts'
import { GROUP_NAME_MAX_CHARS, GROUP_NAME_PATTERN, PEER_ID_MAX_CHARS, PEER_ID_PATTERN } from './messages.ts'
import type { ChannelPut } from './messages.ts'

export type PutFields = Omit<ChannelPut, 'chunk'>

/** A put's fields with its manifest and key record are small: at most this (as in 2.0.0). */
export const MAX_PUT_FIELDS_BYTES = MAX_CONTROL_FRAME_BYTES
const MAX_MEMBERS = 64
const MAX_COPIES = 64
const MAX_VARINT_BYTES = 8
const HAS_NAME = 1

/** Appends to a growing buffer (the fields are a few hundred bytes). */
export class ByteWriter {
  private buf = new Uint8Array(256)
  length = 0

  private room (n: number): void {
    if (this.length + n <= this.buf.byteLength) return
    const next = new Uint8Array(Math.max(this.buf.byteLength * 2, this.length + n))
    next.set(this.buf.subarray(0, this.length))
    this.buf = next
  }

  byte (b: number): void {
    this.room(1)
    this.buf[this.length++] = b
  }

  varint (n: number): void {
    this.room(MAX_VARINT_BYTES)
    let v = n
    while (v >= 0x80) {
      this.buf[this.length++] = (v % 0x80) | 0x80
      v = Math.floor(v / 0x80)
    }
    this.buf[this.length++] = v
  }

  bytes (b: Uint8Array): void {
    this.room(b.byteLength)
    this.buf.set(b, this.length)
    this.length += b.byteLength
  }

  /** A u8 length, then the string's char codes (ASCII by the patterns it must match). */
  str (s: string): void {
    this.byte(s.length)
    this.room(s.length)
    for (let i = 0; i < s.length; i++) this.buf[this.length++] = s.charCodeAt(i)
  }

  done (): Uint8Array {
    return this.buf.subarray(0, this.length)
  }
}

/** Reads what ByteWriter wrote; anything short, long or out of range is an InvalidMessageError. */
export class ByteReader {
  offset: number
  private readonly buf: Uint8Array

  constructor (buf: Uint8Array, offset = 0) {
    this.buf = buf
    this.offset = offset
  }

  byte (what: string): number {
    const b = this.buf[this.offset]
    if (b == null) throw new InvalidMessageError(`a put frame ends before its ${what}`)
    this.offset++
    return b
  }

  varint (what: string, min: number, max: number): number {
    let value = 0
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = this.byte(what)
      value += (b & 0x7f) * 2 ** (7 * i)
      if ((b & 0x80) === 0) {
        if (value < min || value > max || (i > 0 && b === 0)) throw new InvalidMessageError(`a put's ${what} ${value} is out of range (${min}–${max}, shortest form)`)
        return value
      }
    }
    throw new InvalidMessageError(`a put's ${what} is not a varint of at most ${MAX_VARINT_BYTES} bytes`)
  }

  bytes (what: string, max: number): Uint8Array {
    const n = this.varint(`${what}'s length`, 0, max)
    if (this.offset + n > this.buf.byteLength) throw new InvalidMessageError(`a put frame ends inside its ${what}`)
    const out = this.buf.subarray(this.offset, this.offset + n)
    this.offset += n
    return out
  }

  str (what: string, max: number, pattern: RegExp): string {
    const n = this.byte(`${what}'s length`)
    if (n === 0 || n > max || this.offset + n > this.buf.byteLength) throw new InvalidMessageError(`a put's ${what} of ${n} characters does not fit (1–${max}, within the frame)`)
    let s = ''
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.buf[this.offset + i] as number)
    this.offset += n
    if (!pattern.test(s)) throw new InvalidMessageError(`a put's ${what} "${s.slice(0, 40)}" is malformed`)
    return s
  }
}

export function writePutFields (w: ByteWriter, f: PutFields): void {
  const p = f.prepare
  w.varint(f.u)
  w.varint(f.chunkSize)
  w.varint(p.createdAt)
  w.varint(p.ts)
  w.varint(p.copies)
  w.str(f.group)
  w.str(p.origin)
  w.byte(p.members.length)
  for (const m of p.members) w.str(m)
  w.varint(p.manifest.byteLength)
  w.bytes(p.manifest)
  w.byte(p.name != null ? HAS_NAME : 0)
  if (p.name != null) {
    w.varint(p.name.byteLength)
    w.bytes(p.name)
  }
}

export function readPutFields (r: ByteReader): PutFields {
  const u = r.varint('number', 0, Number.MAX_SAFE_INTEGER)
  const chunkSize = r.varint('chunk size', 1, MAX_CHUNK_SIZE_BYTES)
  const createdAt = r.varint('creation time', 0, Number.MAX_SAFE_INTEGER)
  const ts = r.varint('stamp', 0, Number.MAX_SAFE_INTEGER)
  const copies = r.varint('copies', 1, MAX_COPIES)
  const group = r.str('group', GROUP_NAME_MAX_CHARS, GROUP_NAME_PATTERN)
  const origin = r.str('origin', PEER_ID_MAX_CHARS, PEER_ID_PATTERN)
  const count = r.byte('member count')
  if (count > MAX_MEMBERS) throw new InvalidMessageError(`a put names ${count} members (at most ${MAX_MEMBERS})`)
  const members: string[] = []
  for (let i = 0; i < count; i++) members.push(r.str('member', PEER_ID_MAX_CHARS, PEER_ID_PATTERN))
  const manifest = r.bytes('manifest', MAX_PUT_FIELDS_BYTES)
  const flags = r.byte('flags')
  if ((flags & ~HAS_NAME) !== 0) throw new InvalidMessageError(`a put's flags ${flags} are unknown`)
  const name = (flags & HAS_NAME) !== 0 ? r.bytes('key record', MAX_CONTROL_FRAME_BYTES) : undefined
  return { u, group, chunkSize, prepare: { manifest, createdAt, ts, origin, copies, members, ...(name != null ? { name } : {}) } }
}
