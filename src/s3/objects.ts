/**
 * Object operations: PutObject (Content-MD5 checked, ETag = MD5 hex),
 * GetObject / HeadObject (Range, If-Match / If-None-Match /
 * If-Modified-Since / If-Unmodified-Since, response-* overrides) and
 * DeleteObject. An object's bytes are one dsm file (verified, replicated,
 * streamable at /files/<id> too); its key → record lives in the bucket's
 * namespace (replica/namespace.ts).
 */
import { parseRange } from '../util/range.ts'
import { sendBytes } from './answer.ts'
import { copyObject } from './batch.ts'
import { checkedBody } from './body.ts'
import { s3Errors } from './errors.ts'
import { fileNameFor, header, ownFile } from './context.ts'
import type { S3Node, S3Request } from './context.ts'
import { ObjectRecordSchema } from '../wire/names.ts'
import { encodeMessage } from '../wire/codec.ts'
import type { ObjectRecord } from '../wire/names.ts'

/** The largest single PutObject S3 takes (5 GiB); bigger objects need multipart. */
export const MAX_PUT_OBJECT_BYTES = 5 * 1024 ** 3

const RESPONSE_OVERRIDES: Array<[string, string]> = [
  ['response-content-type', 'content-type'],
  ['response-content-language', 'content-language'],
  ['response-expires', 'expires'],
  ['response-cache-control', 'cache-control'],
  ['response-content-disposition', 'content-disposition'],
  ['response-content-encoding', 'content-encoding']
]

export function userMeta (req: S3Request): Record<string, string> {
  const meta: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.raw.headers)) {
    if (name.startsWith('x-amz-meta-') && value != null) meta[name.slice('x-amz-meta-'.length)] = Array.isArray(value) ? value.join(',') : value
  }
  if (Buffer.byteLength(JSON.stringify(meta)) > 2048) throw s3Errors.metadataTooLarge()
  return meta
}

export async function putObject (node: S3Node, req: S3Request, bucket: string, key: string): Promise<void> {
  if (header(req, 'x-amz-copy-source') != null) return copyObject(node, req, bucket, key, () => userMeta(req))
  const body = checkedBody(req, MAX_PUT_OBJECT_BYTES)
  const meta = userMeta(req)
  // The bucket first: a PUT into no bucket stores nothing.
  const { group } = await node.names.bucketChecked(bucket, { signal: req.signal })
  const mime = header(req, 'content-type') ?? 'binary/octet-stream'
  let record: ObjectRecord | undefined
  const recordFor = (file: string): ObjectRecord => {
    const checksums = body.checksums()
    record ??= { file, own: true, size: body.length, etag: `"${body.md5()}"`, mime, meta, modified: Date.now(), ...(Object.keys(checksums).length > 0 ? { checksums } : {}) }
    return record
  }
  // The record rides in the file's commit when the coordinator can carry it (replica/carried-name.ts); else it is written after.
  const name = { bucket, key, group, value: (file: string) => encodeMessage(ObjectRecordSchema, recordFor(file)) }
  const uploaded = await node.upload({ ...ownFile(fileNameFor(key), mime), size: body.length }, body.source, { signal: req.signal, name })
  const written = recordFor(uploaded.id)
  if (uploaded.named !== true) await node.names.putObject(bucket, key, written, { signal: req.signal })
  req.res.writeHead(200, { ETag: written.etag, 'Content-Length': '0', ...checksumHeaders(written) }).end()
}

/** `x-amz-checksum-<alg>` headers for the checksums an object was uploaded with. */
function checksumHeaders (record: ObjectRecord): Record<string, string> {
  return Object.fromEntries(Object.entries(record.checksums ?? {}).map(([alg, v]) => [`x-amz-checksum-${alg}`, v]))
}

/** Evaluate S3's conditional headers: a status to answer instead (304, 412), or undefined to go on. */
function preconditions (req: S3Request, record: ObjectRecord): number | undefined {
  const ifMatch = header(req, 'if-match')
  const ifNoneMatch = header(req, 'if-none-match')
  const since = header(req, 'if-modified-since')
  const unmodified = header(req, 'if-unmodified-since')
  const seconds = Math.floor(record.modified / 1000) * 1000
  const matches = (list: string): boolean => list.split(',').map(s => s.trim()).some(t => t === '*' || t === record.etag || `"${t}"` === record.etag)
  if (ifMatch != null && !matches(ifMatch)) return 412
  if (ifMatch == null && unmodified != null && !Number.isNaN(Date.parse(unmodified)) && seconds > Date.parse(unmodified)) return 412
  if (ifNoneMatch != null && matches(ifNoneMatch)) return 304
  if (ifNoneMatch == null && since != null && !Number.isNaN(Date.parse(since)) && seconds <= Date.parse(since)) return 304
  return undefined
}

/** A record's own response headers, made once per record (records are shared while their value stands). */
const headersOf = new WeakMap<ObjectRecord, Readonly<Record<string, string>>>()

/** The response headers of an object: a copy of its own, for this response to add to. */
function objectHeaders (record: ObjectRecord): Record<string, string> {
  let h = headersOf.get(record)
  if (h == null) {
    const made: Record<string, string> = {
      ETag: record.etag,
      'Last-Modified': new Date(record.modified).toUTCString(),
      'Content-Type': record.mime,
      'Accept-Ranges': 'bytes'
    }
    for (const [k, v] of Object.entries(record.meta)) made[`x-amz-meta-${k}`] = v
    headersOf.set(record, h = made)
  }
  return { ...h }
}

export async function getObject (node: S3Node, req: S3Request, bucket: string, key: string, head: boolean): Promise<void> {
  const record = await node.names.getObject(bucket, key, { signal: req.signal })
  if (record == null) throw s3Errors.noSuchKey(key)
  const headers = objectHeaders(record)
  const status = preconditions(req, record)
  if (status === 412) throw s3Errors.preconditionFailed()
  if (status === 304) {
    req.res.writeHead(304, { ETag: record.etag, 'Last-Modified': headers['Last-Modified'] as string }).end()
    return
  }
  for (const [param, name] of RESPONSE_OVERRIDES) {
    const v = req.query.get(param)
    if (v != null) headers[name] = v
  }
  const range = parseRange(header(req, 'range'), record.size)
  if (range.kind === 'unsatisfiable') throw s3Errors.invalidRange(record.size)
  // One range only (S3 ignores the others); a multi-range header is served whole, as S3 does.
  const one = range.kind === 'partial' && range.ranges.length === 1 ? range.ranges[0] : undefined
  const offset = one?.start ?? 0
  const length = one != null ? one.end - one.start + 1 : record.size
  headers['Content-Length'] = String(length)
  if (one != null) headers['Content-Range'] = `bytes ${one.start}-${one.end}/${record.size}`
  // The object's checksums are of the whole object: sent (when asked) only with the whole object.
  if (one == null && header(req, 'x-amz-checksum-mode') === 'ENABLED') Object.assign(headers, checksumHeaders(record))
  if (head) {
    req.res.writeHead(one != null ? 206 : 200, headers).end()
    return
  }
  const located = await node.open(record.file, { signal: req.signal })
  if (length === 0) { req.res.writeHead(one != null ? 206 : 200, headers).end(); return }
  await sendBytes(req, one != null ? 206 : 200, headers, node.read(located, offset, length, { signal: req.signal }), length)
}

export async function deleteObject (node: S3Node, req: S3Request, bucket: string, key: string): Promise<void> {
  // S3 answers 204 whether or not the key existed; a missing bucket is still NoSuchBucket.
  await node.names.bucketChecked(bucket, { signal: req.signal })
  await node.names.deleteObject(bucket, key, { signal: req.signal })
  req.res.writeHead(204).end()
}
