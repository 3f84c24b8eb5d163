/**
 * The SigV4 check (src/s3/sigv4.ts) against the SDK's own signer
 * (@smithy/signature-v4, pure-JS hashes): random requests — header values
 * with runs of blanks and line breaks, repeated and reserved query
 * characters, any signed subset of headers — signed by the SDK are accepted
 * whether signed in headers or presigned, and changing one signed header,
 * the query, the path or the secret is refused with SignatureDoesNotMatch.
 */
import { Sha256 } from '@aws-crypto/sha256-js'
import { SignatureV4 } from '@smithy/signature-v4'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { verifySigV4 } from '../../src/s3/sigv4.ts'
import type { S3Key, SignedRequest } from '../../src/s3/sigv4.ts'
import type { HttpRequest } from '@smithy/types'

const KEY: S3Key = { accessKeyId: 'AKIDTESTKEY000000001', secretAccessKey: 'secret/key+with=chars0123456789abcdefgh', buckets: [], read: true, write: true }
const NOW = Date.UTC(2026, 11, 6, 12, 30)
const lookup = async (id: string): Promise<S3Key | undefined> => id === KEY.accessKeyId ? KEY : undefined

const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/)
const headerValue = fc.stringMatching(/^[ -~\t]{0,24}$/).map(v => v.replace(/^[ \t]+|[ \t]+$/g, '') === '' ? `v${v}` : v)
const queryPart = fc.string({ unit: fc.constantFrom('a', 'Z', '0', '-', '_', '.', '~', ' ', '/', '+', '=', '&', '%', 'é', '*'), maxLength: 8 })
const request = fc.record({
  method: fc.constantFrom('GET', 'PUT', 'HEAD', 'DELETE', 'POST'),
  path: fc.array(fc.stringMatching(/^[A-Za-z0-9._~-]{1,8}$/), { minLength: 1, maxLength: 3 }).map(p => '/' + p.join('/')),
  query: fc.array(fc.tuple(queryPart.filter(k => k !== '' && !k.startsWith('X-Amz')), queryPart), { maxLength: 4 }),
  extra: fc.dictionary(token.map(t => `x-amz-meta-${t}`), headerValue, { maxKeys: 4 }),
  payload: fc.constantFrom('UNSIGNED-PAYLOAD', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
})

type Shape = typeof request extends fc.Arbitrary<infer T> ? T : never

function smithyRequest (r: Shape): HttpRequest {
  const query: Record<string, string | string[]> = {}
  for (const [k, v] of r.query) {
    const prev = query[k]
    query[k] = prev == null ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  return { method: r.method, protocol: 'http:', hostname: 'node.example:9000', path: r.path, query, headers: { host: 'node.example:9000', 'x-amz-content-sha256': r.payload, ...r.extra } }
}

/** What the S3 server sees of a request the SDK signed: the path as sent, the query decoded, headers lower-cased. */
function asArrived (signed: HttpRequest, r: Shape): SignedRequest {
  const query: Array<[string, string]> = []
  for (const [k, v] of Object.entries(signed.query ?? {})) {
    for (const one of Array.isArray(v) ? v : [v ?? '']) query.push([k, one])
  }
  const headers: SignedRequest['headers'] = {}
  for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = v
  return { method: r.method, rawPath: r.path, query, headers }
}

const signer = new SignatureV4({ credentials: KEY, region: 'us-east-1', service: 's3', sha256: Sha256, uriEscapePath: false })

describe('SigV4 check against the SDK signer', () => {
  it('accepts what the SDK signs, in headers and presigned, and refuses any change', async () => {
    await fc.assert(fc.asyncProperty(request, fc.nat(), async (r, pick) => {
      const signed = await signer.sign(smithyRequest(r), { signingDate: new Date(NOW) })
      const arrived = asArrived(signed, r)
      const ok = await verifySigV4(arrived, lookup, NOW)
      expect(ok.accessKeyId).toBe(KEY.accessKeyId)
      expect(ok.payloadHash).toBe(r.payload)
      // One signed header changed (X-Amz-Date is checked as a date first: AccessDenied when malformed).
      const signedNames = (/SignedHeaders=([^,]+)/.exec(String(arrived.headers.authorization))?.[1]?.split(';') ?? []).filter(n => n !== 'x-amz-date')
      const victim = signedNames[pick % signedNames.length] ?? 'host'
      const tampered = { ...arrived, headers: { ...arrived.headers, [victim]: `${String(arrived.headers[victim])}x` } }
      await expect(verifySigV4(tampered, lookup, NOW)).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' })
      await expect(verifySigV4({ ...arrived, rawPath: `${r.path}x` }, lookup, NOW)).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' })
      await expect(verifySigV4({ ...arrived, query: [...arrived.query, ['added', '1']] }, lookup, NOW)).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' })
      await expect(verifySigV4(arrived, async () => ({ ...KEY, secretAccessKey: `${KEY.secretAccessKey}x` }), NOW)).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' })

      const presigned = await signer.presign(smithyRequest({ ...r, payload: 'UNSIGNED-PAYLOAD' }), { signingDate: new Date(NOW), expiresIn: 600 })
      const viaQuery = asArrived(presigned, r)
      delete viaQuery.headers['x-amz-content-sha256']
      expect((await verifySigV4(viaQuery, lookup, NOW)).payloadHash).toBe('UNSIGNED-PAYLOAD')
      await expect(verifySigV4({ ...viaQuery, rawPath: `${r.path}x` }, lookup, NOW)).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' })
    }), { numRuns: 200 })
  })

  it('refuses an unknown key, a skewed clock and an unsigned Host', async () => {
    const r: Shape = { method: 'GET', path: '/b/k', query: [], extra: {}, payload: 'UNSIGNED-PAYLOAD' }
    const arrived = asArrived(await signer.sign(smithyRequest(r), { signingDate: new Date(NOW) }), r)
    await expect(verifySigV4(arrived, async () => undefined, NOW)).rejects.toMatchObject({ code: 'InvalidAccessKeyId' })
    await expect(verifySigV4(arrived, lookup, NOW + 16 * 60_000)).rejects.toMatchObject({ code: 'RequestTimeTooSkewed' })
    const noHost = asArrived(await signer.sign(smithyRequest(r), { signingDate: new Date(NOW), unsignableHeaders: new Set(['host']) }), r)
    await expect(verifySigV4(noHost, lookup, NOW)).rejects.toMatchObject({ code: 'AccessDenied' })
  })
})
