/**
 * An S3 upload's body on its way to the store: decoded (aws-chunked, ./chunked.ts),
 * counted, hashed — MD5 for the ETag and Content-MD5, SHA-256 when the
 * signature covers the payload, the client's `x-amz-checksum-*` algorithm —
 * and checked at its end, before the last byte is handed on: a body that
 * does not match what the client declared fails the upload, and nothing is
 * acknowledged or stored.
 */
import { createHash } from 'node:crypto'
import { algorithmOf, checkChecksum, checksummer } from './checksums.ts'
import { decodeAwsChunked, streamingMode } from './chunked.ts'
import { s3Errors } from './errors.ts'
import { header } from './context.ts'
import type { ChecksumAlgorithm } from './checksums.ts'
import type { S3Request } from './context.ts'

export interface CheckedBody {
  source: AsyncIterable<Uint8Array>
  /** The payload's length (the decoded one for aws-chunked). */
  length: number
  /** Hex MD5 of the body, once it was read whole. */
  md5 (): string
  /** The verified checksum, once the body was read whole (returned on GET/HEAD when asked). */
  checksums (): Record<string, string>
}

/** A Content-MD5 header: 16 bytes of base64, or InvalidDigest. */
export function parseContentMd5 (value: string | undefined): string | undefined {
  if (value == null) return undefined
  if (Buffer.from(value, 'base64').byteLength !== 16) throw s3Errors.invalidDigest()
  return value
}

/** Which checksum the client computes: a header, a declared trailer, or the SDK's algorithm header. */
function checksumAlgorithm (req: S3Request): { algorithm: ChecksumAlgorithm, inHeader?: string } | undefined {
  for (const name of Object.keys(req.raw.headers)) {
    const alg = algorithmOf(name)
    if (alg != null) return { algorithm: alg, inHeader: header(req, name) ?? '' }
  }
  const trailer = header(req, 'x-amz-trailer')
  const fromTrailer = trailer != null ? algorithmOf(trailer.trim()) : undefined
  if (trailer != null && fromTrailer == null) throw s3Errors.invalidArgument(`x-amz-trailer ${trailer} is not a checksum dsm knows`)
  if (fromTrailer != null) return { algorithm: fromTrailer }
  const sdk = header(req, 'x-amz-sdk-checksum-algorithm')?.toLowerCase()
  if (sdk != null) {
    const alg = algorithmOf(`x-amz-checksum-${sdk}`)
    if (alg == null) throw s3Errors.invalidArgument(`x-amz-sdk-checksum-algorithm ${sdk} is not supported`)
  }
  return undefined
}

export function checkedBody (req: S3Request, maxBytes: number): CheckedBody {
  const mode = streamingMode(req.payloadHash)
  const lengthHeader = mode != null ? header(req, 'x-amz-decoded-content-length') : header(req, 'content-length')
  if (lengthHeader == null || !/^\d+$/.test(lengthHeader)) throw s3Errors.missingContentLength()
  const length = Number(lengthHeader)
  if (length > maxBytes) throw s3Errors.entityTooLarge()
  const contentMd5 = parseContentMd5(header(req, 'content-md5'))
  const sha256 = req.payloadHash != null && /^[0-9a-f]{64}$/.test(req.payloadHash) ? req.payloadHash : undefined
  const wanted = checksumAlgorithm(req)
  if (wanted != null && wanted.inHeader == null && mode !== 'signed-trailer' && mode !== 'unsigned-trailer') throw s3Errors.invalidRequest('a trailing checksum needs an aws-chunked body with trailers')
  const decoded = mode != null ? decodeAwsChunked(req.raw, mode, req.auth) : undefined
  const md5 = createHash('md5')
  const sha = sha256 != null ? createHash('sha256') : undefined
  const sum = wanted != null ? checksummer(wanted.algorithm) : undefined
  let md5hex: string | undefined
  const verified: Record<string, string> = {}
  async function * source (): AsyncGenerator<Uint8Array> {
    let size = 0
    for await (const piece of decoded?.payload ?? req.raw) {
      size += piece.byteLength
      if (size > length) throw s3Errors.invalidRequest('the body is longer than its declared length')
      md5.update(piece)
      sha?.update(piece)
      sum?.update(piece)
      yield piece
    }
    if (size < length) throw s3Errors.incompleteBody()
    const raw = md5.digest()
    if (contentMd5 != null && raw.toString('base64') !== contentMd5) throw s3Errors.badDigest()
    if (sha != null && sha.digest('hex') !== sha256) throw s3Errors.xAmzContentSha256Mismatch()
    if (wanted != null && sum != null) {
      const expected = wanted.inHeader ?? decoded?.trailers().get(`x-amz-checksum-${wanted.algorithm}`)
      if (expected == null) throw s3Errors.invalidRequest(`the x-amz-checksum-${wanted.algorithm} trailer is missing`)
      const actual = await sum.digest()
      checkChecksum(wanted.algorithm, expected, actual)
      verified[wanted.algorithm] = actual
    }
    md5hex = raw.toString('hex')
  }
  return {
    source: source(),
    length,
    md5: () => {
      if (md5hex == null) throw new Error('the body was not read to its end')
      return md5hex
    },
    checksums: () => verified
  }
}
