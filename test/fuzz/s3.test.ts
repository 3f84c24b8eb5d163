/**
 * Fuzzing the S3 listener of a running node (fast-check, fixed seed, bounded
 * runs): correctly signed requests with random methods, paths, S3 query
 * parameters, headers and XML bodies; aws-chunked bodies with broken framing;
 * unsigned garbage. The properties: never a 500 (only 501 NotImplemented and
 * 503 among 5xx), every error is S3's XML with a Code and the RequestId of
 * its x-amz-request-id header, a broken body stores nothing, and the node
 * stays up and keeps answering.
 */
import { createHash } from 'node:crypto'
import { Sha256 } from '@aws-crypto/sha256-js'
import { SignatureV4 } from '@smithy/signature-v4'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runs } from '../helpers/fuzz.ts'
import { createSimCluster } from '../sim/cluster.ts'
import type { SimCluster } from '../sim/cluster.ts'

const KEY = { accessKeyId: 'DSMFUZZKEY0000000001', secretAccessKey: 'dsm-fuzz-secret-access-key-0123456789abc' }
const signer = new SignatureV4({ credentials: KEY, region: 'us-east-1', service: 's3', sha256: Sha256, uriEscapePath: false })

interface Answer { status: number, body: string, requestId: string | null }

/** Sign (SigV4, payload hash as given) and send a request to the S3 listener at `base`. */
async function signed (base: string, method: string, path: string, query: Record<string, string>, headers: Record<string, string>, body?: Uint8Array, payloadHash?: string): Promise<Answer> {
  const url = new URL(base)
  const hash = payloadHash ?? createHash('sha256').update(body ?? new Uint8Array(0)).digest('hex')
  const req = await signer.sign({ method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path, query, headers: { host: url.host, 'x-amz-content-sha256': hash, ...headers }, ...(body != null ? { body } : {}) })
  const qs = new URLSearchParams(query).toString()
  const res = await fetch(`${base}${path}${qs !== '' ? `?${qs}` : ''}`, { method, headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'host')), ...(body != null && method !== 'GET' && method !== 'HEAD' ? { body: Buffer.from(body) } : {}) })
  return { status: res.status, body: await res.text(), requestId: res.headers.get('x-amz-request-id') }
}

function problems (method: string, a: Answer): string[] {
  const out: string[] = []
  if (a.status === 500 || (a.status > 501 && a.status !== 503)) out.push(`${a.status}: ${a.body.slice(0, 200)}`)
  if (a.status >= 400 && method !== 'HEAD') {
    if (!/<Error><Code>[A-Za-z]+<\/Code>/.test(a.body)) out.push(`not S3 error XML: ${a.body.slice(0, 200)}`)
    else if (a.requestId == null || !a.body.includes(`<RequestId>${a.requestId}</RequestId>`)) out.push('RequestId differs from x-amz-request-id')
  }
  return out
}

const QUERY_NAMES = ['list-type', 'max-keys', 'prefix', 'delimiter', 'start-after', 'continuation-token', 'marker', 'encoding-type', 'fetch-owner', 'uploads', 'uploadId', 'partNumber', 'delete', 'location', 'acl', 'versioning', 'response-content-type', 'x-id']
const HEADER_NAMES = ['range', 'if-match', 'if-none-match', 'if-modified-since', 'content-md5', 'x-amz-copy-source', 'x-amz-metadata-directive', 'x-amz-acl', 'content-type', 'x-amz-meta-a', 'x-amz-checksum-crc32', 'x-amz-trailer', 'x-amz-copy-source-range', 'x-amz-checksum-mode']
const valueArb = fc.oneof(fc.constantFrom('', '2', '-1', 'abc', '1000000', 'bytes=0-10', 'bytes=99999999-', '"etag"', '*', 'ZZZ==', 'fuzz/x', '/fuzz/a', 'REPLACE', 'public-read', 'ENABLED', 'x-amz-checksum-crc32', 'video/mp4', '%zz'), fc.string({ maxLength: 40 }))
const xmlArb = fc.oneof(
  fc.constant('<Delete><Object><Key>a</Key></Object></Delete>'),
  fc.constant('<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>'),
  fc.constant('<Delete><Quiet>true</Quiet></Delete>'),
  fc.constant('<<<'), fc.constant('<Delete><Object><Key><![CDATA[x]]></Key></Object>'),
  fc.string({ maxLength: 200 })
)
const keyArb = fc.oneof(fc.constantFrom('a', 'x/y z', 'é', '%2F', '..', 'a'.repeat(1100), 'k\u0001', 'uploads'), fc.string({ minLength: 1, maxLength: 30 }).map(s => s.replace(/[?#]/g, '_')))

describe('fuzz: the S3 listener', () => {
  let c: SimCluster
  let base = ''
  beforeAll(async () => {
    c = await createSimCluster({ nodes: 2, groupSize: 2, configure: () => ({ s3: { host: '127.0.0.1', port: 0 }, s3AccessKeyId: KEY.accessKeyId, s3SecretAccessKey: KEY.secretAccessKey }) })
    await c.ready()
    base = c.node(0).s3?.url ?? ''
    expect((await signed(base, 'PUT', '/fuzz', {}, {})).status).toBe(200)
    expect((await signed(base, 'PUT', '/fuzz/a', {}, {}, new TextEncoder().encode('hello'))).status).toBe(200)
  }, 120_000)
  afterAll(async () => { await c.close() })

  it('signed requests with random methods, paths, queries, headers and XML bodies: never a 500, always S3 error XML', async () => {
    const requestArb = fc.record({
      method: fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'DELETE'),
      bucket: fc.constantFrom('fuzz', 'nope-bucket', 'Bad_Name', '.access-keys', ''),
      key: fc.option(keyArb, { nil: undefined }),
      query: fc.dictionary(fc.constantFrom(...QUERY_NAMES), valueArb, { maxKeys: 4 }),
      headers: fc.dictionary(fc.constantFrom(...HEADER_NAMES), valueArb.filter(v => /^[\x20-\x7e]*$/.test(v)), { maxKeys: 4 }),
      body: fc.option(xmlArb, { nil: undefined })
    })
    await fc.assert(fc.asyncProperty(requestArb, async (r) => {
      const path = `/${r.bucket}${r.key != null ? `/${encodeURIComponent(r.key).replace(/%2F/g, '/')}` : ''}`
      const body = r.body != null && r.method !== 'GET' && r.method !== 'HEAD' ? new TextEncoder().encode(r.body) : undefined
      const answer = await signed(base, r.method, path, r.query, r.headers, body)
      expect(problems(r.method, answer), `${r.method} ${path} ${JSON.stringify(r.query)} ${JSON.stringify(r.headers)}`).toEqual([])
    }), runs(150))
    // Still up, and what was there is still there.
    const still = await signed(base, 'GET', '/fuzz/a', {}, {})
    expect(still).toMatchObject({ status: 200, body: 'hello' })
  })

  it('aws-chunked bodies with broken framing are refused (4xx, S3 XML) and store nothing', async () => {
    const good = 'a;chunk-signature=x\r\n0123456789\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n'
    const framingArb = fc.oneof(
      fc.constantFrom('zz\r\nabc\r\n0\r\n\r\n', 'a\r\n0123\r\n', '5\r\n0123456789\r\n0\r\n\r\n', '0\r\n', '\r\n', 'ffffffff\r\n', good, 'a\n0123456789\n0\n\n'),
      fc.string({ maxLength: 80 })
    )
    let n = 0
    await fc.assert(fc.asyncProperty(framingArb, async (framing) => {
      const key = `chunked-${n++}`
      const body = new TextEncoder().encode(framing)
      const answer = await signed(base, 'PUT', `/fuzz/${key}`, {}, { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': '10', 'x-amz-trailer': 'x-amz-checksum-crc32' }, body, 'STREAMING-UNSIGNED-PAYLOAD-TRAILER')
      expect(problems('PUT', answer)).toEqual([])
      expect(answer.status, framing).toBeGreaterThanOrEqual(400)
      expect((await signed(base, 'HEAD', `/fuzz/${key}`, {}, {})).status).toBe(404)
    }), runs(60))
  })

  it('unsigned garbage is AccessDenied, as S3 XML', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom('GET', 'PUT', 'DELETE', 'POST'), fc.string({ maxLength: 30 }), async (method, tail) => {
      const res = await fetch(`${base}/fuzz/${encodeURIComponent(tail)}?${encodeURIComponent(tail)}=1`, { method, ...(method === 'PUT' || method === 'POST' ? { body: tail } : {}) })
      const text = await res.text()
      expect(res.status).toBe(403)
      expect(problems(method, { status: res.status, body: text, requestId: res.headers.get('x-amz-request-id') })).toEqual([])
    }), runs(40))
  })
})
