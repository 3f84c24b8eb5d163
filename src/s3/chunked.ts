/**
 * `Content-Encoding: aws-chunked` bodies, the framing S3 clients use for
 * streaming uploads and for trailing checksums:
 *
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD          <hex>;chunk-signature=<sig>\r\n<data>\r\n … 0;chunk-signature=<sig>\r\n\r\n
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER  … 0;chunk-signature=<sig>\r\n<trailers>x-amz-trailer-signature:<sig>\r\n\r\n
 *   STREAMING-UNSIGNED-PAYLOAD-TRAILER          <hex>\r\n<data>\r\n … 0\r\n<trailers>\r\n
 *
 * Each chunk's signature chains from the previous one (the first from the
 * request's), over the chunk's SHA-256; the trailer's over its lines. The
 * decoder yields the payload as it arrives and throws — before the end, so
 * nothing is acknowledged — on bad framing, a bad chunk signature, or a
 * size that is not the one declared. Trailers are returned for checking.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { s3Errors, S3Error } from './errors.ts'
import type { Verified } from './sigv4.ts'

/** A chunk header line is short; a longer one is an attack or garbage. */
const MAX_HEADER_LINE_BYTES = 4096
/** Trailers are a few checksum lines. */
const MAX_TRAILER_BYTES = 16 * 1024
/** S3 accepts chunks up to this (and the SDKs send 64 KiB); larger is refused. */
const MAX_CHUNK_BYTES = 16 * 1024 * 1024
const EMPTY_SHA256 = createHash('sha256').update('').digest('hex')

export type StreamingMode = 'signed' | 'signed-trailer' | 'unsigned-trailer'

export function streamingMode (payloadHash: string | undefined): StreamingMode | undefined {
  switch (payloadHash) {
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD': return 'signed'
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER': return 'signed-trailer'
    case 'STREAMING-UNSIGNED-PAYLOAD-TRAILER': return 'unsigned-trailer'
    default: return undefined
  }
}

function malformed (why: string): S3Error {
  return new S3Error('IncompleteBody', 400, `malformed aws-chunked body: ${why}`)
}

export interface Decoded {
  payload: AsyncIterable<Uint8Array>
  /** The trailer lines (lower-cased names), once the payload was read to its end. */
  trailers (): Map<string, string>
}

export function decodeAwsChunked (body: AsyncIterable<Uint8Array>, mode: StreamingMode, auth: Verified | undefined): Decoded {
  if (mode !== 'unsigned-trailer' && auth == null) throw s3Errors.accessDenied('a signed streaming body needs a signed request')
  const trailers = new Map<string, string>()
  let done = false
  const buf = new Uint8ArrayList()
  const it = body[Symbol.asyncIterator]()
  let ended = false
  const more = async (): Promise<boolean> => {
    if (ended) return false
    const next = await it.next()
    if (next.done === true) { ended = true; return false }
    buf.append(next.value)
    return true
  }
  const line = async (max: number): Promise<string> => {
    for (;;) {
      const bytes = buf.subarray()
      const at = bytes.indexOf(0x0a)
      if (at !== -1) {
        if (at === 0 || bytes[at - 1] !== 0x0d) throw malformed('lines must end with CRLF')
        const text = Buffer.from(bytes.subarray(0, at - 1)).toString('latin1')
        buf.consume(at + 1)
        return text
      }
      if (buf.byteLength > max) throw malformed('a header line is too long')
      if (!await more()) throw s3Errors.incompleteBody()
    }
  }
  const exactly = async (n: number): Promise<Uint8Array> => {
    while (buf.byteLength < n) if (!await more()) throw s3Errors.incompleteBody()
    const out = buf.subarray(0, n)
    buf.consume(n)
    return out
  }
  let previous = auth?.signature ?? ''
  const signChunk = async (hash: string): Promise<string> => {
    const a = auth as Verified
    return a.signer.sign(['AWS4-HMAC-SHA256-PAYLOAD', a.amzDate, a.scope, previous, EMPTY_SHA256, hash].join('\n'), { signingDate: dateOf(a.amzDate) })
  }
  const same = (a: string, b: string): boolean => /^[0-9a-f]{64}$/.test(b) && timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'))
  async function * payload (): AsyncGenerator<Uint8Array> {
    for (;;) {
      const header = await line(MAX_HEADER_LINE_BYTES)
      const m = /^([0-9a-fA-F]{1,8})(?:;chunk-signature=([0-9a-f]{64}))?$/.exec(header)
      if (m == null) throw malformed('bad chunk header')
      const size = Number.parseInt(m[1] ?? '', 16)
      if (size > MAX_CHUNK_BYTES) throw malformed('chunk too large')
      const signed = mode !== 'unsigned-trailer'
      if (signed !== (m[2] != null)) throw malformed(signed ? 'chunk without its signature' : 'unexpected chunk signature')
      const data = await exactly(size)
      if (signed) {
        const expected = await signChunk(createHash('sha256').update(data).digest('hex'))
        if (!same(expected, m[2] ?? '')) throw s3Errors.signatureDoesNotMatch()
        previous = m[2] ?? ''
      }
      if (size === 0) break
      if (await line(2) !== '') throw malformed('chunk data must end with CRLF')
      yield data
    }
    if (mode === 'signed') {
      if (await line(2) !== '') throw malformed('the last chunk must end with an empty line')
    } else {
      await readTrailers()
    }
    done = true
  }
  const readTrailers = async (): Promise<void> => {
    let size = 0
    const lines: string[] = []
    for (;;) {
      const l = await line(MAX_TRAILER_BYTES)
      size += l.length
      if (size > MAX_TRAILER_BYTES) throw malformed('trailers too long')
      if (l === '') break
      lines.push(l)
    }
    let signature: string | undefined
    for (const l of lines) {
      const colon = l.indexOf(':')
      if (colon <= 0) throw malformed('bad trailer line')
      const name = l.slice(0, colon).trim().toLowerCase()
      const value = l.slice(colon + 1).trim()
      if (name === 'x-amz-trailer-signature') signature = value
      else trailers.set(name, value)
    }
    if (mode === 'signed-trailer') {
      const a = auth as Verified
      const canonical = [...trailers].map(([k, v]) => `${k}:${v}\n`).join('')
      const expected = await a.signer.sign(['AWS4-HMAC-SHA256-TRAILER', a.amzDate, a.scope, previous, createHash('sha256').update(canonical).digest('hex')].join('\n'), { signingDate: dateOf(a.amzDate) })
      if (signature == null || !same(expected, signature)) throw s3Errors.signatureDoesNotMatch()
    }
  }
  return {
    payload: payload(),
    trailers: () => {
      if (!done) throw new Error('the body was not read to its end')
      return trailers
    }
  }
}

function dateOf (amzDate: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate)
  return new Date(Date.UTC(Number(m?.[1]), Number(m?.[2]) - 1, Number(m?.[3]), Number(m?.[4]), Number(m?.[5]), Number(m?.[6])))
}
