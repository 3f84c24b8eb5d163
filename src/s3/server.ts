/**
 * The S3 listener of a node (`--s3 HOST:PORT`): any node answers any
 * request, like a gateway. Path-style (`/bucket/key`) and virtual-host-style
 * (`bucket.localhost`, `bucket.<--s3-domain>`) addressing; every request is
 * signed (AWS Signature V4, ./sigv4.ts) except reads of a public-read
 * bucket. Errors are S3's XML, with the request id of the
 * `x-amz-request-id` header. Deadlines and connection caps are the HTTP
 * API's (../http/limits.ts).
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { AddressInUseError } from '../errors.ts'
import { limitedServer } from '../http/limits.ts'
import { deleteObjects } from './batch.ts'
import { bucketLocation, checkBucketName, createBucket, deleteBucket, headBucket, listBuckets, listObjects } from './buckets.ts'
import { errorXml, s3Errors, toS3Error } from './errors.ts'
import { deleteObject, getObject, putObject, userMeta } from './objects.ts'
import { abortMultipartUpload, completeMultipartUpload, createMultipartUpload, listMultipartUploads, listParts, uploadPart } from './multipart.ts'
import { isSigned, verifySigV4 } from './sigv4.ts'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { HttpLimits } from '../http/limits.ts'
import type { HttpAddress, HttpServer } from '../http/server.ts'
import type { S3Node, S3Request } from './context.ts'
import type { S3Key } from './sigv4.ts'
import type { Logger } from '../logger.ts'

export interface S3ServerInit {
  at: HttpAddress
  limits: HttpLimits
  /** Host names under which `bucket.<name>` is virtual-host addressing (besides localhost). */
  domains?: string[]
  /** An access key id's secret and rights, if it is one of ours. */
  credentials: (accessKeyId: string) => Promise<S3Key | undefined>
  logger: Logger
}

/** Bucket subresources dsm does not implement: answered NotImplemented, never mistaken for a listing. */
const UNSUPPORTED_BUCKET_QUERIES = ['acl', 'policy', 'versioning', 'lifecycle', 'cors', 'website', 'tagging', 'logging', 'notification', 'replication', 'encryption', 'object-lock', 'versions', 'accelerate', 'requestPayment', 'ownershipControls', 'publicAccessBlock', 'inventory', 'metrics', 'analytics', 'intelligent-tiering']
const UNSUPPORTED_OBJECT_QUERIES = ['acl', 'tagging', 'retention', 'legal-hold', 'torrent', 'restore', 'select', 'attributes']

/** Split the request into bucket and key, path-style or virtual-host-style. */
function address (req: IncomingMessage, domains: string[]): { bucket?: string, key?: string, rawPath: string, query: string } {
  const url = req.url ?? '/'
  const q = url.indexOf('?')
  const rawPath = q === -1 ? url : url.slice(0, q)
  const query = q === -1 ? '' : url.slice(q + 1)
  const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase()
  const vhost = domains.find(d => host.endsWith(`.${d}`))
  const path = decodeURIComponent(rawPath)
  if (vhost != null) {
    const bucket = host.slice(0, -(vhost.length + 1))
    const key = path.slice(1)
    return { bucket, ...(key !== '' ? { key } : {}), rawPath, query }
  }
  const slash = path.indexOf('/', 1)
  if (path === '/' || path === '') return { rawPath, query }
  const bucket = slash === -1 ? path.slice(1) : path.slice(1, slash)
  const key = slash === -1 ? '' : path.slice(slash + 1)
  return { bucket, ...(key !== '' ? { key } : {}), rawPath, query }
}

function decodedQuery (query: string): Array<[string, string]> {
  if (query === '') return []
  return query.split('&').filter(p => p !== '').map(p => {
    const eq = p.indexOf('=')
    const dec = (s: string): string => decodeURIComponent(s.replace(/\+/g, '%20'))
    return eq === -1 ? [dec(p), ''] : [dec(p.slice(0, eq)), dec(p.slice(eq + 1))]
  })
}

async function route (node: S3Node, r: S3Request): Promise<void> {
  const { method, bucket, key, query } = r
  if (bucket == null) {
    if (method === 'GET') return listBuckets(node, r)
    throw s3Errors.methodNotAllowed()
  }
  // The cluster's own tables (a name no S3 client can give) are not buckets here.
  checkBucketName(bucket)
  if (key == null) {
    const unsupported = UNSUPPORTED_BUCKET_QUERIES.find(q => query.has(q))
    if (unsupported != null) throw s3Errors.notImplemented(`?${unsupported}`)
    if (method === 'PUT') return createBucket(node, r, bucket)
    if (method === 'HEAD') return headBucket(node, r, bucket)
    if (method === 'DELETE') return deleteBucket(node, r, bucket)
    if (method === 'GET' && query.has('location')) return bucketLocation(node, r, bucket)
    if (method === 'GET' && query.has('uploads')) return listMultipartUploads(node, r, bucket)
    if (method === 'GET') return listObjects(node, r, bucket)
    if (method === 'POST' && query.has('delete')) return deleteObjects(node, r, bucket)
    throw s3Errors.methodNotAllowed()
  }
  const unsupported = UNSUPPORTED_OBJECT_QUERIES.find(q => query.has(q))
  if (unsupported != null) throw s3Errors.notImplemented(`?${unsupported}`)
  if (Buffer.byteLength(key) > 1024) throw s3Errors.keyTooLong()
  // NUL starts the S3 layer's own rows in a bucket's table (replica/namespace.ts INTERNAL_KEY_PREFIX).
  if (key.includes('\u0000')) throw s3Errors.invalidArgument('an object key must not contain NUL')
  if (method === 'POST' && query.has('uploads')) return createMultipartUpload(node, r, bucket, key, userMeta(r))
  if (query.has('uploadId')) {
    if (method === 'PUT') return uploadPart(node, r, bucket, key)
    if (method === 'GET') return listParts(node, r, bucket, key)
    if (method === 'DELETE') return abortMultipartUpload(node, r, bucket, key)
    if (method === 'POST') return completeMultipartUpload(node, r, bucket, key)
  }
  if (method === 'PUT') return putObject(node, r, bucket, key)
  if (method === 'GET') return getObject(node, r, bucket, key, false)
  if (method === 'HEAD') return getObject(node, r, bucket, key, true)
  if (method === 'DELETE') return deleteObject(node, r, bucket, key)
  throw s3Errors.methodNotAllowed()
}

/** What a key may do: its buckets (none listed: all), reads (GET, HEAD) and writes (the rest). */
function checkRights (key: S3Key, r: S3Request): void {
  const read = r.method === 'GET' || r.method === 'HEAD'
  if (read ? !key.read : !key.write) throw s3Errors.accessDenied(`this key may not ${read ? 'read' : 'write'}`)
  // ListBuckets is filtered to the key's buckets instead (./buckets.ts).
  if (r.bucket != null && key.buckets.length > 0 && !key.buckets.includes(r.bucket)) throw s3Errors.accessDenied(`this key may not use bucket ${r.bucket}`)
  const source = r.raw.headers['x-amz-copy-source']
  if (typeof source === 'string' && key.buckets.length > 0) {
    const from = decodeURIComponent(source.replace(/^\//, '')).split('/')[0] ?? ''
    if (!key.buckets.includes(from) || !key.read) throw s3Errors.accessDenied(`this key may not read bucket ${from}`)
  }
}

/** Anonymous requests may only read objects of a public-read bucket. */
async function authorize (node: S3Node, r: S3Request, init: S3ServerInit): Promise<void> {
  if (isSigned({ method: r.method, rawPath: r.rawPath, query: r.rawQuery, headers: r.raw.headers })) {
    const verified = await verifySigV4({ method: r.method, rawPath: r.rawPath, query: r.rawQuery, headers: r.raw.headers }, init.credentials)
    r.accessKeyId = verified.accessKeyId
    r.payloadHash = verified.payloadHash
    r.auth = verified
    checkRights(verified.key, r)
    return
  }
  const read = r.method === 'GET' || r.method === 'HEAD'
  if (read && r.bucket != null && r.key != null && (await node.names.bucketChecked(r.bucket, { signal: r.signal })).record.publicRead) return
  throw s3Errors.accessDenied()
}

function sendError (r: S3Request, thrown: unknown, logger: Logger): void {
  const err = toS3Error(thrown)
  if (err.status >= 500) logger.warn({ err: err.message, method: r.method, bucket: r.bucket, requestId: r.id }, 's3 request failed')
  const res = r.res
  if (res.headersSent) { res.destroy(); return }
  const body = r.method === 'HEAD' ? '' : errorXml(err, r.rawPath, r.id)
  // A body we did not read (a refused upload) must not wedge the connection.
  if (!r.raw.complete) res.setHeader('Connection', 'close')
  res.writeHead(err.status, { 'Content-Type': 'application/xml', 'Content-Length': String(Buffer.byteLength(body)) }).end(body)
}

/**
 * Request ids: unique per process run (a random prefix made once, then a
 * counter) — randomBytes per request was 1.2 % of a node's CPU under GETs.
 */
const ID_PREFIX = randomBytes(5).toString('hex').toUpperCase()
let idCounter = 0
function requestId (): string {
  return `${ID_PREFIX}${(++idCounter).toString(16).toUpperCase().padStart(6, '0')}`
}

export async function startS3Server (node: S3Node, init: S3ServerInit): Promise<HttpServer> {
  const domains = ['localhost', ...(init.domains ?? [])]
  const handler = (raw: IncomingMessage, res: ServerResponse): void => {
    const id = requestId()
    const controller = new AbortController()
    res.once('close', () => { if (!res.writableFinished) controller.abort(new Error('the client went away')) })
    res.setHeader('x-amz-request-id', id)
    res.setHeader('x-amz-id-2', id)
    res.setHeader('Server', 'dsm')
    let r: S3Request | undefined
    ;(async () => {
      const where = address(raw, domains)
      const rawQuery = decodedQuery(where.query)
      r = { id, method: raw.method ?? 'GET', ...(where.bucket != null ? { bucket: where.bucket } : {}), ...(where.key != null ? { key: where.key } : {}), query: new URLSearchParams(rawQuery), rawQuery, rawPath: where.rawPath, raw, res, signal: controller.signal }
      await authorize(node, r, init)
      await route(node, r)
    })().catch((err: unknown) => {
      const req = r ?? { id, method: raw.method ?? 'GET', query: new URLSearchParams(), rawQuery: [], rawPath: raw.url ?? '/', raw, res, signal: controller.signal }
      sendError(req, err instanceof URIError ? s3Errors.invalidArgument('bad percent-encoding in the URL') : err, init.logger)
    })
  }
  const server: Server = limitedServer(init.limits, handler)
  // Node answers any Expect but 100-continue with a bare 417; S3 clients get S3's error.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const body = errorXml(s3Errors.unsupportedExpect(), req.url ?? '/', 'EXPECT')
    res.writeHead(400, { 'Content-Type': 'application/xml', Connection: 'close' }).end(body)
  })
  server.listen(init.at.port, init.at.host)
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => {
    const e = err as NodeJS.ErrnoException
    throw e.code === 'EADDRINUSE' ? new AddressInUseError(`the S3 address ${init.at.host}:${init.at.port} is in use`) : e
  })])
  const bound = server.address()
  const port = typeof bound === 'object' && bound != null ? bound.port : init.at.port
  return {
    address: { host: init.at.host, port },
    url: `http://${init.at.host.includes(':') ? `[${init.at.host}]` : init.at.host}:${port}`,
    close: async () => {
      server.closeIdleConnections()
      const closed = new Promise<void>(resolve => { server.close(() => { resolve() }) })
      server.closeAllConnections()
      await closed
    }
  }
}
