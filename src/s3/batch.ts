/**
 * DeleteObjects (POST /bucket?delete: up to 1,000 keys in one XML body,
 * Quiet mode) and CopyObject (PUT with x-amz-copy-source: the bytes copied
 * into a file of the new key's own, with the source's metadata, or the
 * request's with x-amz-metadata-directive: REPLACE; a copy onto itself only
 * changes the metadata).
 */
import { XMLParser } from 'fast-xml-parser'
import { checkedBody } from './body.ts'
import { answerLong, sendXml } from './answer.ts'
import { s3Errors, toS3Error } from './errors.ts'
import { fileNameFor, header, ownFile } from './context.ts'
import type { S3Node, S3Request } from './context.ts'
import type { ObjectRecord } from '../wire/names.ts'

/** S3's limit of keys per DeleteObjects. */
export const MAX_DELETE_KEYS = 1000
/** A DeleteObjects body with 1,000 keys of 1 KiB each fits in this. */
const MAX_DELETE_BODY_BYTES = 2 * 1024 * 1024

const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, isArray: (name) => name === 'Object', processEntities: true })

async function readAll (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const p of source) parts.push(p)
  return Buffer.concat(parts)
}

export async function deleteObjects (node: S3Node, req: S3Request, bucket: string): Promise<void> {
  const body = checkedBody(req, MAX_DELETE_BODY_BYTES)
  const text = (await readAll(body.source)).toString('utf8')
  let parsed: { Delete?: { Quiet?: string, Object?: Array<{ Key?: unknown }> } }
  try {
    parsed = parser.parse(text, true) as typeof parsed
  } catch {
    throw s3Errors.malformedXml()
  }
  const objects = parsed.Delete?.Object
  if (objects == null || objects.length === 0) throw s3Errors.malformedXml()
  if (objects.length > MAX_DELETE_KEYS) throw s3Errors.malformedXml()
  const keys = objects.map(o => o.Key)
  if (keys.some(k => typeof k !== 'string' || k === '')) throw s3Errors.malformedXml()
  const quiet = parsed.Delete?.Quiet === 'true'
  await node.names.bucketChecked(bucket, { signal: req.signal })
  const deleted: Array<{ Key: string }> = []
  const errors: Array<{ Key: string, Code: string, Message: string }> = []
  // One at a time: each is a replicated write; a failure is reported for its key, the others go on.
  for (const key of keys as string[]) {
    try {
      await node.names.deleteObject(bucket, key, { signal: req.signal })
      if (!quiet) deleted.push({ Key: key })
    } catch (err) {
      const e = toS3Error(err)
      errors.push({ Key: key, Code: e.code, Message: e.message })
    }
  }
  sendXml(req, 'DeleteResult', { ...(deleted.length > 0 ? { Deleted: deleted } : {}), ...(errors.length > 0 ? { Error: errors } : {}) })
}

/** `x-amz-copy-source`: /bucket/key or bucket/key, URL-encoded (a ?versionId is refused: no versions here). */
export function copySource (value: string): { bucket: string, key: string } {
  const decoded = decodeURIComponent(value.replace(/^\//, ''))
  if (decoded.includes('?versionId=')) throw s3Errors.notImplemented('versioned copy sources')
  const slash = decoded.indexOf('/')
  if (slash <= 0 || slash === decoded.length - 1) throw s3Errors.invalidArgument('x-amz-copy-source must be bucket/key')
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) }
}

export async function copyObject (node: S3Node, req: S3Request, bucket: string, key: string, userMeta: () => Record<string, string>): Promise<void> {
  const from = copySource(header(req, 'x-amz-copy-source') ?? '')
  const directive = header(req, 'x-amz-metadata-directive') ?? 'COPY'
  if (directive !== 'COPY' && directive !== 'REPLACE') throw s3Errors.invalidArgument('x-amz-metadata-directive must be COPY or REPLACE')
  for await (const _ of req.raw) { /* a copy has no body */ }
  await node.names.bucketChecked(bucket, { signal: req.signal })
  const source = await node.names.getObject(from.bucket, from.key, { signal: req.signal })
  if (source == null) throw s3Errors.noSuchKey(from.key)
  if (from.bucket === bucket && from.key === key && directive === 'COPY') {
    throw s3Errors.invalidRequest('This copy request is illegal because it is trying to copy an object to itself without changing the object\'s metadata.')
  }
  const ifMatch = header(req, 'x-amz-copy-source-if-match')
  const ifNoneMatch = header(req, 'x-amz-copy-source-if-none-match')
  if ((ifMatch != null && ifMatch !== source.etag && `"${ifMatch}"` !== source.etag) || (ifNoneMatch != null && (ifNoneMatch === source.etag || `"${ifNoneMatch}"` === source.etag))) {
    throw s3Errors.preconditionFailed()
  }
  const replace = directive === 'REPLACE'
  const meta = replace ? userMeta() : source.meta
  const mime = replace ? (header(req, 'content-type') ?? source.mime) : source.mime
  if (from.bucket === bucket && from.key === key) {
    // New metadata for the same bytes: the value keeps its file (and so does not free it).
    const record: ObjectRecord = { ...source, meta, mime, modified: Date.now() }
    await node.names.putObject(bucket, key, record, { signal: req.signal })
    sendXml(req, 'CopyObjectResult', { LastModified: new Date(record.modified).toISOString(), ETag: record.etag })
    return
  }
  // Another key gets a file of its own (each value owns its file: replica/reclaim.ts), in the source's group,
  // the bytes streamed through this node and verified as they are read. Answered at once and kept alive.
  const located = await node.open(source.file, { signal: req.signal })
  await answerLong(req, 'CopyObjectResult', async () => {
    const bytes = node.read(located, 0, source.size, { signal: req.signal })
    const uploaded = await node.upload({ ...ownFile(fileNameFor(key), mime), size: source.size, group: located.group }, bytes, { signal: req.signal })
    const { file: _, own: __, ...kept } = source
    const record: ObjectRecord = { ...kept, file: uploaded.id, own: true, meta, mime, modified: Date.now() }
    await node.names.putObject(bucket, key, record, { signal: req.signal })
    return { LastModified: new Date(record.modified).toISOString(), ETag: record.etag }
  })
}
