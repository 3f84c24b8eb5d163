/**
 * aws-chunked bodies (src/s3/chunked.ts), the signed modes the SDKs can
 * send (chunk signatures chained from the request's, a signed trailer):
 * decoded byte-identical when every signature holds, refused when one chunk,
 * one signature or the framing is wrong.
 */
import { createHash } from 'node:crypto'
import { Sha256 } from '@aws-crypto/sha256-js'
import { SignatureV4 } from '@smithy/signature-v4'
import { describe, expect, it } from 'vitest'
import { decodeAwsChunked } from '../../src/s3/chunked.ts'
import { randomBytes } from '../helpers/data.ts'
import type { Verified } from '../../src/s3/sigv4.ts'

const AMZ_DATE = '20261206T120000Z'
const SCOPE = '20261206/us-east-1/s3/aws4_request'
const SEED = 'a'.repeat(64)
const signer = new SignatureV4({ credentials: { accessKeyId: 'K', secretAccessKey: 'S'.repeat(40) }, region: 'us-east-1', service: 's3', sha256: Sha256, uriEscapePath: false })
const auth: Verified = { accessKeyId: 'K', payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', signature: SEED, amzDate: AMZ_DATE, scope: SCOPE, signer, region: 'us-east-1', key: { accessKeyId: 'K', secretAccessKey: 'S'.repeat(40), buckets: [], read: true, write: true } }
const hex = (d: Uint8Array | string): string => createHash('sha256').update(d).digest('hex')
const date = new Date(Date.UTC(2026, 11, 6, 12))

/** Encode `chunks` as a signed aws-chunked body (optionally with a signed trailer), as a client does. */
async function encode (chunks: Uint8Array[], trailer?: Record<string, string>): Promise<Buffer> {
  const parts: Buffer[] = []
  let previous = SEED
  for (const data of [...chunks, new Uint8Array(0)]) {
    const sig = await signer.sign(['AWS4-HMAC-SHA256-PAYLOAD', AMZ_DATE, SCOPE, previous, hex(''), hex(data)].join('\n'), { signingDate: date })
    parts.push(Buffer.from(`${data.byteLength.toString(16)};chunk-signature=${sig}\r\n`), Buffer.from(data))
    if (data.byteLength > 0) parts.push(Buffer.from('\r\n'))
    previous = sig
  }
  if (trailer == null) {
    parts.push(Buffer.from('\r\n'))
  } else {
    const lines = Object.entries(trailer).map(([k, v]) => `${k}:${v}\n`).join('')
    const sig = await signer.sign(['AWS4-HMAC-SHA256-TRAILER', AMZ_DATE, SCOPE, previous, hex(lines)].join('\n'), { signingDate: date })
    parts.push(Buffer.from(Object.entries(trailer).map(([k, v]) => `${k}:${v}\r\n`).join('') + `x-amz-trailer-signature:${sig}\r\n\r\n`))
  }
  return Buffer.concat(parts)
}

async function decodeAll (body: Buffer, mode: 'signed' | 'signed-trailer', pieces = 7): Promise<{ bytes: Buffer, trailers: Map<string, string> }> {
  const step = Math.ceil(body.byteLength / pieces)
  const source = (async function * () { for (let at = 0; at < body.byteLength; at += step) yield body.subarray(at, at + step) })()
  const decoded = decodeAwsChunked(source, mode, auth)
  const out: Uint8Array[] = []
  for await (const p of decoded.payload) out.push(p)
  return { bytes: Buffer.concat(out), trailers: decoded.trailers() }
}

describe('aws-chunked, signed', () => {
  const data = randomBytes(200_000, 4)
  const chunks = [data.subarray(0, 65_536), data.subarray(65_536, 131_072), data.subarray(131_072)]

  it('decodes a body whose chunk signatures chain from the request\'s, in any split', async () => {
    for (const pieces of [1, 3, 1000]) expect((await decodeAll(await encode(chunks), 'signed', pieces)).bytes).toEqual(Buffer.from(data))
  })

  it('returns a signed trailer', async () => {
    const { bytes, trailers } = await decodeAll(await encode(chunks, { 'x-amz-checksum-crc32': 'AbCdEf==' }), 'signed-trailer')
    expect(bytes).toEqual(Buffer.from(data))
    expect(trailers.get('x-amz-checksum-crc32')).toBe('AbCdEf==')
  })

  it('refuses a changed byte, a changed signature, a forged trailer and broken framing', async () => {
    const good = await encode(chunks)
    const flipped = Buffer.from(good)
    const at = flipped.indexOf('\r\n') + 2 + 100
    flipped[at] = (flipped[at] ?? 0) ^ 1
    await expect(decodeAll(flipped, 'signed')).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' })
    const resigned = Buffer.from(good.toString('latin1').replace(/chunk-signature=([0-9a-f])/, (_m, d: string) => `chunk-signature=${d === '0' ? '1' : '0'}`), 'latin1')
    await expect(decodeAll(resigned, 'signed')).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' })
    const withTrailer = (await encode(chunks, { 'x-amz-checksum-crc32': 'AbCdEf==' })).toString('latin1').replace('AbCdEf==', 'AAAAAA==')
    await expect(decodeAll(Buffer.from(withTrailer, 'latin1'), 'signed-trailer')).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' })
    await expect(decodeAll(good.subarray(0, good.byteLength - 40), 'signed')).rejects.toMatchObject({ code: 'IncompleteBody' })
    await expect(decodeAll(Buffer.from('zz;chunk-signature=00\r\n'), 'signed')).rejects.toMatchObject({ code: 'IncompleteBody' })
  })
})
