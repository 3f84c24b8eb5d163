/**
 * An S3 upload's body on its way to the store: counted, hashed (MD5 for the
 * ETag and Content-MD5, SHA-256 when the signature covers the payload), and
 * checked at its end — before the last byte is handed on, so a body that
 * does not match what the client declared fails the upload and nothing is
 * acknowledged or stored.
 */
import { createHash } from 'node:crypto'
import { s3Errors } from './errors.ts'

export interface BodyChecks {
  /** Bytes the client announced (Content-Length). */
  length: number
  /** Base64 MD5 from Content-MD5. */
  contentMd5?: string
  /** Hex SHA-256 the signature covers (x-amz-content-sha256). */
  sha256?: string
}

export interface CheckedBody {
  source: AsyncIterable<Uint8Array>
  /** Hex MD5 of the body, once it was read whole. */
  md5 (): string
}

export function checkedBody (body: AsyncIterable<Uint8Array>, checks: BodyChecks): CheckedBody {
  const md5 = createHash('md5')
  const sha = checks.sha256 != null ? createHash('sha256') : undefined
  let digest: string | undefined
  async function * source (): AsyncGenerator<Uint8Array> {
    let size = 0
    for await (const piece of body) {
      size += piece.byteLength
      if (size > checks.length) throw s3Errors.invalidRequest('the body is longer than its Content-Length')
      md5.update(piece)
      sha?.update(piece)
      yield piece
    }
    if (size < checks.length) throw s3Errors.incompleteBody()
    const raw = md5.digest()
    if (checks.contentMd5 != null && raw.toString('base64') !== checks.contentMd5) throw s3Errors.badDigest()
    if (sha != null && sha.digest('hex') !== checks.sha256) throw s3Errors.xAmzContentSha256Mismatch()
    digest = raw.toString('hex')
  }
  return {
    source: source(),
    md5: () => {
      if (digest == null) throw new Error('the body was not read to its end')
      return digest
    }
  }
}

/** A Content-MD5 header: 16 bytes of base64, or InvalidDigest. */
export function parseContentMd5 (value: string | undefined): string | undefined {
  if (value == null) return undefined
  if (Buffer.from(value, 'base64').byteLength !== 16) throw s3Errors.invalidDigest()
  return value
}
