/**
 * The manifest core's hot path: a check and a DAG-CBOR encoder for exactly
 * its shape, in place of zod and the generic encoder. Every upload built one
 * manifest on the coordinator (zod, then @ipld/dag-cbor) and decoded it on
 * each member (zod, then an encode again to prove it canonical): ~35 µs of
 * CPU per upload on each node (issue 23's profiles of 4 KiB uploads).
 *
 * Neither replaces the schema: `isManifestCore` says yes only to values the
 * schema accepts (a property test holds it to that), and anything else goes
 * through the schema, whose error the caller reports. `encodeManifestCore`
 * writes the bytes @ipld/dag-cbor writes (a property test compares them):
 * keys by length then bytes, integers and lengths in their shortest form.
 */
import { CHUNK_LEAF_BYTES, MAX_CHUNK_SIZE_BYTES, MAX_TAG_CHARS } from '../constants.ts'
import { MIME_PATTERN, fileNameProblem } from './names.ts'

/** The manifest core's fields (the schema in ./manifest.ts is the reference). */
export interface ManifestCoreShape {
  v: 1
  size: number
  chunkSize: number
  leafSize: number
  chunks: Uint8Array[]
  name: string
  mime: string
  tag?: string
}

const DIGEST_BYTES = 32
const MAX_MIME_CHARS = 255
const TAG_PATTERN = /^[\x21-\x7e]+$/
const KEYS = new Set(['v', 'size', 'chunkSize', 'leafSize', 'chunks', 'name', 'mime', 'tag'])
const utf8 = new TextEncoder()

const isCount = (n: unknown, min: number, max: number): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= min && n <= max

/** True only for a manifest core the schema accepts as it is; false means "ask the schema". */
export function isManifestCore (value: unknown): value is ManifestCoreShape {
  if (typeof value !== 'object' || value == null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  const m = value as Record<string, unknown>
  for (const k of Object.keys(m)) if (!KEYS.has(k)) return false
  if (m.v !== 1 || m.leafSize !== CHUNK_LEAF_BYTES) return false
  if (!isCount(m.size, 0, Number.MAX_SAFE_INTEGER) || !isCount(m.chunkSize, 1, MAX_CHUNK_SIZE_BYTES)) return false
  const chunks = m.chunks
  if (!Array.isArray(chunks) || chunks.length !== Math.ceil(m.size / m.chunkSize)) return false
  for (const d of chunks) if (!(d instanceof Uint8Array) || d.byteLength !== DIGEST_BYTES) return false
  if (typeof m.name !== 'string' || fileNameProblem(m.name) != null) return false
  if (typeof m.mime !== 'string' || m.mime.length > MAX_MIME_CHARS || !MIME_PATTERN.test(m.mime)) return false
  if ('tag' in m && (typeof m.tag !== 'string' || m.tag.length < 1 || m.tag.length > MAX_TAG_CHARS || !TAG_PATTERN.test(m.tag))) return false
  return true
}

/** Writes CBOR into one buffer, grown when needed. */
class Out {
  buf = new Uint8Array(256)
  at = 0

  room (n: number): void {
    if (this.at + n <= this.buf.byteLength) return
    const next = new Uint8Array(Math.max(2 * this.buf.byteLength, this.at + n))
    next.set(this.buf.subarray(0, this.at))
    this.buf = next
  }

  /** Major type and argument, in the shortest form. */
  head (major: number, n: number): void {
    this.room(9)
    const b = this.buf
    const m = major << 5
    if (n < 24) {
      b[this.at++] = m | n
    } else if (n < 0x100) {
      b[this.at++] = m | 24
      b[this.at++] = n
    } else if (n < 0x10000) {
      b[this.at++] = m | 25
      b[this.at++] = n >>> 8
      b[this.at++] = n & 0xff
    } else if (n < 0x100000000) {
      b[this.at++] = m | 26
      this.u32(n)
    } else {
      b[this.at++] = m | 27
      this.u32(Math.floor(n / 0x100000000))
      this.u32(n >>> 0)
    }
  }

  private u32 (n: number): void {
    const b = this.buf
    b[this.at++] = n >>> 24
    b[this.at++] = (n >>> 16) & 0xff
    b[this.at++] = (n >>> 8) & 0xff
    b[this.at++] = n & 0xff
  }

  bytes (x: Uint8Array): void {
    this.room(x.byteLength)
    this.buf.set(x, this.at)
    this.at += x.byteLength
  }

  /** A text string; ASCII (every key, most names and types) without a TextEncoder call. */
  text (s: string): void {
    let ascii = true
    for (let i = 0; i < s.length && ascii; i++) ascii = s.charCodeAt(i) < 0x80
    if (!ascii) {
      const b = utf8.encode(s)
      this.head(3, b.byteLength)
      this.bytes(b)
      return
    }
    this.head(3, s.length)
    this.room(s.length)
    for (let i = 0; i < s.length; i++) this.buf[this.at++] = s.charCodeAt(i)
  }

  /** A key and its value: a text string or an unsigned integer. */
  field (key: string, value: string | number): void {
    this.text(key)
    if (typeof value === 'string') this.text(value)
    else this.head(0, value)
  }
}

/** The core's DAG-CBOR bytes (keys in DAG-CBOR's order: by length, then bytewise). */
export function encodeManifestCore (m: ManifestCoreShape): Uint8Array {
  const out = new Out()
  out.head(5, m.tag != null ? 8 : 7)
  out.field('v', m.v)
  if (m.tag != null) out.field('tag', m.tag)
  out.field('mime', m.mime)
  out.field('name', m.name)
  out.field('size', m.size)
  out.text('chunks')
  out.head(4, m.chunks.length)
  for (const d of m.chunks) {
    out.head(2, d.byteLength)
    out.bytes(d)
  }
  out.field('leafSize', m.leafSize)
  out.field('chunkSize', m.chunkSize)
  return out.buf.subarray(0, out.at)
}
