/**
 * AWS Signature Version 4, checked by signing the request again with the
 * secret we hold — `@smithy/signature-v4`, the signer the AWS SDKs use, so
 * canonicalisation (path, query, headers) is theirs, not a copy — and
 * comparing signatures in constant time. Header-signed requests and
 * presigned URLs (query) both; the payload hash is what the client declared
 * (`x-amz-content-sha256`: a hex digest the body is then checked against,
 * `UNSIGNED-PAYLOAD`, or a streaming mode whose chunks carry their own
 * signatures: ./chunked.ts).
 */
import { createHash, createHmac, createSecretKey, hash, timingSafeEqual } from 'node:crypto'
import { SignatureV4, getCanonicalQuery, getSigningKey } from '@smithy/signature-v4'
import { LRUCache } from 'lru-cache'
import { s3Errors } from './errors.ts'
import type { KeyObject } from 'node:crypto'
import type { HttpRequest } from '@smithy/types'

type SourceData = string | ArrayBuffer | ArrayBufferView

function bytesOf (data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return Buffer.from(data)
}

/**
 * HMAC keys as KeyObjects, made once per key: an HMAC with a raw key builds
 * one every time, 3–6× the cost of the HMAC itself (measured: ~10 µs against
 * 2–3 µs), and a request computes several. The signer's signing key is one
 * object per day and scope (it caches it), so a WeakMap finds it; string keys
 * (the secret of the first step) in a small LRU.
 */
const keyObjects = new WeakMap<object, KeyObject>()
const stringKeys = new LRUCache<string, KeyObject>({ max: 256 })

function hmacKey (secret: SourceData): KeyObject {
  if (typeof secret === 'string') {
    let k = stringKeys.get(secret)
    if (k == null) stringKeys.set(secret, k = createSecretKey(bytesOf(secret)))
    return k
  }
  let k = keyObjects.get(secret)
  if (k == null) keyObjects.set(secret, k = createSecretKey(Buffer.from(bytesOf(secret))))
  return k
}

/**
 * SHA-256 and HMAC-SHA256 for the signer from node:crypto (native): the
 * pure-JS hash the SDK ships for browsers cost a measurable share of every
 * S3 request's CPU here.
 */
export class NodeSha256 {
  private readonly secret?: KeyObject
  private hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>

  constructor (secret?: SourceData) {
    if (secret != null) this.secret = hmacKey(secret)
    this.hash = this.fresh()
  }

  private fresh (): ReturnType<typeof createHash> | ReturnType<typeof createHmac> {
    return this.secret != null ? createHmac('sha256', this.secret) : createHash('sha256')
  }

  update (data: SourceData): void { this.hash.update(bytesOf(data)) }
  async digest (): Promise<Uint8Array> { return this.hash.digest() }
  reset (): void { this.hash = this.fresh() }
}

/** Requests whose X-Amz-Date is further than this from our clock are refused (S3's 15 minutes). */
export const MAX_CLOCK_SKEW_MS = 15 * 60_000
/** Presigned URLs live 1 s to 7 days. */
export const PRESIGN_MIN_EXPIRES_S = 1
export const PRESIGN_MAX_EXPIRES_S = 7 * 24 * 3600

export interface Credentials { accessKeyId: string, secretAccessKey: string }
/** A key and what it may do: the buckets it may use (empty: all), reads, writes. */
export interface S3Key extends Credentials { buckets: string[], read: boolean, write: boolean }

/** What the signature covers, as the request arrived. */
export interface SignedRequest {
  method: string
  /** The path as sent (still percent-encoded). */
  rawPath: string
  /** Query parameters, decoded, in arrival order. */
  query: Array<[string, string]>
  /** Lower-cased header names. */
  headers: Record<string, string | string[] | undefined>
}

/** Who signed, and the parts a streaming body's chunk signatures chain from. */
export interface Verified {
  accessKeyId: string
  /** The declared payload hash (hex, UNSIGNED-PAYLOAD, or a STREAMING-* mode). */
  payloadHash: string
  signature: string
  /** yyyymmddThhmmssZ, and the scope date/region/service/aws4_request. */
  amzDate: string
  scope: string
  signer: SignatureV4
  region: string
  key: S3Key
}

interface Parsed { accessKeyId: string, date: string, region: string, service: string, signedHeaders: string[], signature: string, amzDate: string, expiresS?: number }

const AUTH_RE = /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/

function header (h: SignedRequest['headers'], name: string): string | undefined {
  const v = h[name]
  return Array.isArray(v) ? v.join(',') : v
}

function parseAmzDate (s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s)
  if (m == null) throw s3Errors.accessDenied('X-Amz-Date must be yyyymmddThhmmssZ')
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]))
}

function fromHeader (req: SignedRequest): Parsed | undefined {
  const auth = header(req.headers, 'authorization')
  if (auth == null) return undefined
  const m = AUTH_RE.exec(auth)
  if (m == null) throw s3Errors.accessDenied('the Authorization header is not AWS4-HMAC-SHA256 (Signature V2 is not supported)')
  const amzDate = header(req.headers, 'x-amz-date') ?? ''
  return { accessKeyId: m[1] ?? '', date: m[2] ?? '', region: m[3] ?? '', service: m[4] ?? '', signedHeaders: (m[5] ?? '').split(';'), signature: m[6] ?? '', amzDate }
}

function fromQuery (req: SignedRequest): Parsed | undefined {
  const q = new Map(req.query)
  if (q.get('X-Amz-Algorithm') == null) return undefined
  if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') throw s3Errors.accessDenied('X-Amz-Algorithm must be AWS4-HMAC-SHA256')
  const cred = /^([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request$/.exec(q.get('X-Amz-Credential') ?? '')
  const signature = q.get('X-Amz-Signature') ?? ''
  const expires = Number(q.get('X-Amz-Expires'))
  if (cred == null || !/^[0-9a-f]{64}$/.test(signature)) throw s3Errors.accessDenied('malformed presigned URL')
  if (!Number.isInteger(expires) || expires < PRESIGN_MIN_EXPIRES_S || expires > PRESIGN_MAX_EXPIRES_S) {
    throw s3Errors.accessDenied(`X-Amz-Expires must be between ${PRESIGN_MIN_EXPIRES_S} and ${PRESIGN_MAX_EXPIRES_S} seconds`)
  }
  return { accessKeyId: cred[1] ?? '', date: cred[2] ?? '', region: cred[3] ?? '', service: cred[4] ?? '', signedHeaders: (q.get('X-Amz-SignedHeaders') ?? '').split(';'), signature, amzDate: q.get('X-Amz-Date') ?? '', expiresS: expires }
}

/** Whether a request carries a signature at all (an anonymous one may still read a public bucket). */
export function isSigned (req: SignedRequest): boolean {
  return header(req.headers, 'authorization') != null || req.query.some(([k]) => k === 'X-Amz-Algorithm')
}

/**
 * Signers, one per key and region: a signer caches its signing key (four
 * HMACs, derived once per day and scope), so a signer made per request
 * derived it again every time. Keyed by the secret too: a key whose secret
 * changed gets a signer of its own.
 */
const signers = new LRUCache<string, SignatureV4>({ max: 256 })

function signerFor (creds: Credentials, region: string): SignatureV4 {
  const id = `${creds.accessKeyId}\0${creds.secretAccessKey}\0${region}`
  let signer = signers.get(id)
  if (signer == null) {
    signer = new SignatureV4({ credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey }, region, service: 's3', sha256: NodeSha256, uriEscapePath: false, applyChecksum: false })
    signers.set(id, signer)
  }
  return signer
}

/**
 * Check a request's signature against the secret of its access key.
 * Throws S3's AccessDenied / InvalidAccessKeyId / SignatureDoesNotMatch /
 * RequestTimeTooSkewed; resolves with what the body checks need.
 */
export async function verifySigV4 (req: SignedRequest, lookup: (accessKeyId: string) => Promise<S3Key | undefined>, now = Date.now()): Promise<Verified> {
  const parsed = fromHeader(req) ?? fromQuery(req)
  if (parsed == null) throw s3Errors.accessDenied('the request is not signed')
  const creds = await lookup(parsed.accessKeyId)
  if (creds == null) throw s3Errors.invalidAccessKeyId()
  if (parsed.service !== 's3') throw s3Errors.accessDenied('the credential scope is not for s3')
  const signedAt = parseAmzDate(parsed.amzDate)
  if (!parsed.amzDate.startsWith(parsed.date)) throw s3Errors.accessDenied('the credential date is not the X-Amz-Date')
  if (parsed.expiresS != null) {
    if (now > signedAt + parsed.expiresS * 1000) throw s3Errors.accessDenied('Request has expired')
    if (signedAt - now > MAX_CLOCK_SKEW_MS) throw s3Errors.timeTooSkewed()
  } else if (Math.abs(now - signedAt) > MAX_CLOCK_SKEW_MS) {
    throw s3Errors.timeTooSkewed()
  }
  if (!parsed.signedHeaders.includes('host')) throw s3Errors.accessDenied('the signature must cover the Host header')
  const payloadHash = parsed.expiresS != null ? 'UNSIGNED-PAYLOAD' : (header(req.headers, 'x-amz-content-sha256') ?? 'UNSIGNED-PAYLOAD')
  const signer = signerFor(creds, parsed.region)
  const headers: Record<string, string> = {}
  for (const name of parsed.signedHeaders) headers[name] = header(req.headers, name) ?? ''
  const query: Record<string, string | string[]> = {}
  for (const [k, v] of req.query) {
    if (parsed.expiresS != null && k === 'X-Amz-Signature') continue
    const prev = query[k]
    query[k] = prev == null ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  const toSign: HttpRequest = { method: req.method, protocol: 'http:', hostname: headers.host ?? '', path: req.rawPath, query, headers: { ...headers, 'x-amz-content-sha256': payloadHash } }
  if (parsed.expiresS != null && !parsed.signedHeaders.includes('x-amz-content-sha256')) delete toSign.headers['x-amz-content-sha256']
  const expected = await expectedSignature(signer, creds, toSign, parsed, payloadHash)
  if (!timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(parsed.signature, 'hex'))) throw s3Errors.signatureDoesNotMatch()
  return { accessKeyId: parsed.accessKeyId, payloadHash, signature: parsed.signature, amzDate: parsed.amzDate, scope: `${parsed.date}/${parsed.region}/s3/aws4_request`, signer, region: parsed.region, key: creds }
}

/** Signing keys (four HMACs each) by key, secret, day and region. */
const signingKeys = new LRUCache<string, KeyObject>({ max: 256 })

async function signingKeyFor (creds: Credentials, date: string, region: string): Promise<KeyObject> {
  const id = `${creds.accessKeyId}\0${creds.secretAccessKey}\0${date}\0${region}`
  let key = signingKeys.get(id)
  if (key == null) signingKeys.set(id, key = createSecretKey(await getSigningKey(NodeSha256, creds, date, region, 's3')))
  return key
}

/** A header value as SigV4 canonicalises it: line breaks and runs of blanks made one space, trimmed. */
function canonicalValue (value: string): string {
  return value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').trim()
}

/**
 * The signature of a header-signed request: the canonical request and the
 * string to sign of SigV4, over exactly the headers the client signed (the
 * query canonicalised and the signing key derived by the SDK's signer's own
 * functions). Built here rather than by `signer.sign`, which clones and
 * re-canonicalises the whole request: a third of an S3 GET's SigV4 cost.
 */
async function headerSignature (creds: Credentials, request: HttpRequest, parsed: Parsed, payloadHash: string): Promise<string> {
  const names = [...parsed.signedHeaders].sort()
  const value = (name: string): string => name === 'x-amz-content-sha256' ? payloadHash : canonicalValue(String(request.headers[name] ?? ''))
  const canonical = `${request.method}\n${request.path}\n${getCanonicalQuery(request)}\n${names.map(n => `${n}:${value(n)}`).join('\n')}\n\n${names.join(';')}\n${payloadHash}`
  const scope = `${parsed.date}/${parsed.region}/s3/aws4_request`
  const toSign = `AWS4-HMAC-SHA256\n${parsed.amzDate}\n${scope}\n${hash('sha256', canonical, 'hex')}`
  return createHmac('sha256', await signingKeyFor(creds, parsed.date, parsed.region)).update(toSign).digest('hex')
}

async function expectedSignature (signer: SignatureV4, creds: Credentials, request: HttpRequest, parsed: Parsed, payloadHash: string): Promise<string> {
  if (parsed.expiresS == null) return headerSignature(creds, request, parsed, payloadHash)
  // A presigned URL's signature covers its query as sent (minus the signature; the X-Amz-* parameters the
  // signer adds itself are taken out and put back by it) and UNSIGNED-PAYLOAD, carried by a header that is
  // neither signed nor moved into the query.
  const q = { ...request.query }
  for (const k of ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature']) delete q[k]
  const payload = new Set(['x-amz-content-sha256'])
  const presigned = await signer.presign({ ...request, query: q, headers: { ...request.headers, 'x-amz-content-sha256': payloadHash } },
    { signingDate: new Date(parseAmzDate(parsed.amzDate)), expiresIn: parsed.expiresS, signableHeaders: new Set(parsed.signedHeaders), unsignableHeaders: payload, unhoistableHeaders: payload })
  const sig = presigned.query?.['X-Amz-Signature']
  return typeof sig === 'string' ? sig : ''
}
