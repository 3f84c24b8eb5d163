/**
 * Multipart uploads. The upload and each part are rows of the bucket's
 * replicated table under the S3 layer's own keys (replica/namespace.ts
 * INTERNAL_KEY_PREFIX), so any node continues an upload another node began
 * and a member's death loses nothing: a retried part or completion simply
 * runs again. Each part is streamed into a dsm file of its own (never
 * buffered whole); completing streams the parts, in order, into the one dsm
 * file of the object and then drops them. The ETag is S3's:
 * MD5 of the parts' binary MD5s, then "-N".
 */
import { createHash, randomBytes } from 'node:crypto'
import { XMLParser } from 'fast-xml-parser'
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { MAX_NAME_VALUE_BYTES, PartRecordSchema, UploadRecordSchema } from '../wire/names.ts'
import { UPLOAD_KEY_PREFIX } from '../replica/upload-janitor.ts'
import { copySource } from './batch.ts'
import { checkedBody } from './body.ts'
import { answerLong, sendXml } from './answer.ts'
import { S3Error, s3Errors } from './errors.ts'
import { fileNameFor, header, ownFile } from './context.ts'
import type { S3Node, S3Request } from './context.ts'
import type { ObjectRecord, PartRecord, UploadRecord } from '../wire/names.ts'

/** Parts are numbered 1–10,000; each but the last is at least 5 MiB; each at most 5 GiB. */
export const MAX_PART_NUMBER = 10_000
export const MIN_PART_BYTES = 5 * 1024 * 1024
export const MAX_PART_BYTES = 5 * 1024 ** 3
/** A CompleteMultipartUpload body with 10,000 parts fits in this. */
const MAX_COMPLETE_BODY_BYTES = 2 * 1024 * 1024

const uploadKey = (id: string): string => `${UPLOAD_KEY_PREFIX}${id}`
const partKey = (id: string, n: number): string => `${uploadKey(id)}/${String(n).padStart(5, '0')}`
const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, isArray: (name) => name === 'Part', processEntities: true })

const noSuchUpload = (): S3Error => new S3Error('NoSuchUpload', 404, 'The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.')

async function uploadOf (node: S3Node, req: S3Request, bucket: string, key: string): Promise<{ id: string, upload: UploadRecord }> {
  const id = req.query.get('uploadId') ?? ''
  if (!/^[0-9a-f]{32}$/.test(id)) throw noSuchUpload()
  const value = await node.names.get(bucket, uploadKey(id), { signal: req.signal })
  if (value == null) throw noSuchUpload()
  const upload = decodeMessage(UploadRecordSchema, value, MAX_NAME_VALUE_BYTES)
  if (upload.key !== key) throw noSuchUpload()
  return { id, upload }
}

async function partsOf (node: S3Node, req: S3Request, bucket: string, id: string): Promise<Map<number, PartRecord>> {
  const parts = new Map<number, PartRecord>()
  let after = `${uploadKey(id)}/`
  for (;;) {
    const page = await node.names.listRaw(bucket, after, 1000, { signal: req.signal, prefix: `${uploadKey(id)}/` })
    for (const row of page.rows) parts.set(Number(row.key.slice(-5)), decodeMessage(PartRecordSchema, row.value, MAX_NAME_VALUE_BYTES))
    if (page.next == null) return parts
    after = page.next
  }
}

export async function createMultipartUpload (node: S3Node, req: S3Request, bucket: string, key: string, meta: Record<string, string>): Promise<void> {
  for await (const _ of req.raw) { /* no body */ }
  const id = randomBytes(16).toString('hex')
  const upload: UploadRecord = { key, created: Date.now(), mime: header(req, 'content-type') ?? 'binary/octet-stream', meta }
  await node.names.put(bucket, uploadKey(id), encodeMessage(UploadRecordSchema, upload), { signal: req.signal })
  sendXml(req, 'InitiateMultipartUploadResult', { Bucket: bucket, Key: key, UploadId: id })
}

function partNumberOf (req: S3Request): number {
  const raw = req.query.get('partNumber') ?? ''
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_PART_NUMBER) throw s3Errors.invalidArgument(`Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`)
  return n
}

export async function uploadPart (node: S3Node, req: S3Request, bucket: string, key: string): Promise<void> {
  const n = partNumberOf(req)
  const { id } = await uploadOf(node, req, bucket, key)
  let part: PartRecord
  if (header(req, 'x-amz-copy-source') != null) {
    part = await copyPart(node, req, key, n)
  } else {
    const body = checkedBody(req, MAX_PART_BYTES)
    const uploaded = await node.upload({ ...ownFile(partName(key, n)), size: body.length }, body.source, { signal: req.signal })
    part = { file: uploaded.id, own: true, size: body.length, etag: `"${body.md5()}"`, modified: Date.now() }
  }
  await node.names.put(bucket, partKey(id, n), encodeMessage(PartRecordSchema, part), { signal: req.signal })
  if (header(req, 'x-amz-copy-source') != null) {
    sendXml(req, 'CopyPartResult', { LastModified: new Date(part.modified).toISOString(), ETag: part.etag })
  } else {
    req.res.writeHead(200, { ETag: part.etag, 'Content-Length': '0' }).end()
  }
}

function partName (key: string, n: number): string {
  return `${fileNameFor(key).slice(0, 180)}.part${n}`
}

/** UploadPartCopy: a part made of (a range of) another object's bytes, streamed through this node. */
async function copyPart (node: S3Node, req: S3Request, key: string, n: number): Promise<PartRecord> {
  const from = copySource(header(req, 'x-amz-copy-source') ?? '')
  const record = await node.names.getObject(from.bucket, from.key, { signal: req.signal })
  if (record == null) throw s3Errors.noSuchKey(from.key)
  for await (const _ of req.raw) { /* no body */ }
  const range = header(req, 'x-amz-copy-source-range')
  const m = range != null ? /^bytes=(\d+)-(\d+)$/.exec(range) : undefined
  if (range != null && (m == null || Number(m[1]) > Number(m[2]) || Number(m[2]) >= record.size)) throw s3Errors.invalidArgument('x-amz-copy-source-range must be bytes=first-last within the source')
  const offset = m != null ? Number(m[1]) : 0
  const length = m != null ? Number(m[2]) - offset + 1 : record.size
  const located = await node.open(record.file, { signal: req.signal })
  const md5 = createHash('md5')
  const bytes = node.read(located, offset, length, { signal: req.signal })
  const uploaded = await node.upload({ ...ownFile(partName(key, n)), size: length }, (async function * () {
    for await (const piece of bytes) { md5.update(piece); yield piece }
  })(), { signal: req.signal })
  return { file: uploaded.id, own: true, size: length, etag: `"${md5.digest('hex')}"`, modified: Date.now() }
}

export async function listParts (node: S3Node, req: S3Request, bucket: string, key: string): Promise<void> {
  const { id } = await uploadOf(node, req, bucket, key)
  const marker = Number(req.query.get('part-number-marker') ?? '0')
  const max = Math.min(1000, Number(req.query.get('max-parts') ?? '1000'))
  if (!Number.isInteger(marker) || !Number.isInteger(max) || max < 0) throw s3Errors.invalidArgument('part-number-marker and max-parts must be integers')
  const all = [...(await partsOf(node, req, bucket, id))].filter(([n]) => n > marker).sort((a, b) => a[0] - b[0])
  const page = all.slice(0, max)
  const truncated = all.length > page.length
  sendXml(req, 'ListPartsResult', {
    Bucket: bucket,
    Key: key,
    UploadId: id,
    PartNumberMarker: marker,
    ...(truncated ? { NextPartNumberMarker: page.at(-1)?.[0] ?? marker } : {}),
    MaxParts: max,
    IsTruncated: truncated,
    ...(page.length > 0 ? { Part: page.map(([n, p]) => ({ PartNumber: n, LastModified: new Date(p.modified).toISOString(), ETag: p.etag, Size: p.size })) } : {})
  })
}

export async function abortMultipartUpload (node: S3Node, req: S3Request, bucket: string, key: string): Promise<void> {
  const { id } = await uploadOf(node, req, bucket, key)
  await dropUpload(node, req, bucket, id)
  req.res.writeHead(204).end()
}

async function dropUpload (node: S3Node, req: S3Request, bucket: string, id: string): Promise<void> {
  for (const n of (await partsOf(node, req, bucket, id)).keys()) await node.names.remove(bucket, partKey(id, n), { signal: req.signal })
  await node.names.remove(bucket, uploadKey(id), { signal: req.signal })
}

export async function completeMultipartUpload (node: S3Node, req: S3Request, bucket: string, key: string): Promise<void> {
  const { id, upload } = await uploadOf(node, req, bucket, key)
  const body = checkedBody(req, MAX_COMPLETE_BODY_BYTES)
  const chunks: Uint8Array[] = []
  for await (const p of body.source) chunks.push(p)
  let parsed: { CompleteMultipartUpload?: { Part?: Array<{ PartNumber?: unknown, ETag?: unknown }> } }
  try {
    parsed = parser.parse(Buffer.concat(chunks).toString('utf8'), true) as typeof parsed
  } catch {
    throw s3Errors.malformedXml()
  }
  const listed = parsed.CompleteMultipartUpload?.Part ?? []
  if (listed.length === 0) throw s3Errors.malformedXml()
  const stored = await partsOf(node, req, bucket, id)
  const numbers = listed.map(p => Number(p.PartNumber))
  if (numbers.some(n => !Number.isInteger(n))) throw s3Errors.malformedXml()
  // The order first (S3 checks it before the parts themselves).
  if (numbers.some((n, i) => i > 0 && n <= (numbers[i - 1] as number))) {
    throw new S3Error('InvalidPartOrder', 400, 'The list of parts was not in ascending order. The parts list must be specified in order by part number.')
  }
  const chosen: PartRecord[] = []
  for (const [i, p] of listed.entries()) {
    const n = numbers[i] as number
    const part = stored.get(n)
    const etag = String(p.ETag ?? '').replace(/^"?(.*?)"?$/, '"$1"')
    if (part == null || part.etag !== etag) throw new S3Error('InvalidPart', 400, `One or more of the specified parts could not be found (part ${n}), or its entity tag did not match.`)
    if (i < listed.length - 1 && part.size < MIN_PART_BYTES) throw new S3Error('EntityTooSmall', 400, `Your proposed upload is smaller than the minimum allowed object size (part ${n}: ${part.size} bytes; each part but the last must be at least 5 MiB).`)
    chosen.push(part)
  }
  const size = chosen.reduce((a, p) => a + p.size, 0)
  // The object is one dsm file: the parts' bytes (each verified as it is read) streamed in order.
  const located = await Promise.all(chosen.map(async p => node.open(p.file, { signal: req.signal })))
  const joined = (async function * () {
    for (const [i, l] of located.entries()) yield * node.read(l, 0, chosen[i]?.size ?? 0, { signal: req.signal })
  })()
  // Long completions: answered at once and kept alive, as S3 does (./answer.ts).
  await answerLong(req, 'CompleteMultipartUploadResult', async () => {
    const uploaded = await node.upload({ ...ownFile(fileNameFor(key), upload.mime), size }, joined, { signal: req.signal })
    const etag = `"${createHash('md5').update(Buffer.concat(chosen.map(p => Buffer.from(p.etag.slice(1, -1), 'hex')))).digest('hex')}-${chosen.length}"`
    const record: ObjectRecord = { file: uploaded.id, own: true, size, etag, mime: upload.mime, meta: upload.meta, modified: Date.now() }
    await node.names.putObject(bucket, key, record, { signal: req.signal })
    await dropUpload(node, req, bucket, id)
    return { Location: `/${bucket}/${key}`, Bucket: bucket, Key: key, ETag: etag }
  })
}

export async function listMultipartUploads (node: S3Node, req: S3Request, bucket: string): Promise<void> {
  const prefix = UPLOAD_KEY_PREFIX
  const uploads: Array<{ Key: string, UploadId: string, Initiated: string }> = []
  let after = prefix
  for (;;) {
    const page = await node.names.listRaw(bucket, after, 1000, { signal: req.signal, prefix })
    for (const row of page.rows) {
      const id = row.key.slice(prefix.length)
      if (id.includes('/')) continue
      const u = decodeMessage(UploadRecordSchema, row.value, MAX_NAME_VALUE_BYTES)
      uploads.push({ Key: u.key, UploadId: id, Initiated: new Date(u.created).toISOString() })
    }
    if (page.next == null) break
    after = page.next
  }
  const keyPrefix = req.query.get('prefix') ?? ''
  const shown = uploads.filter(u => u.Key.startsWith(keyPrefix)).sort((a, b) => Buffer.compare(Buffer.from(a.Key), Buffer.from(b.Key)))
  sendXml(req, 'ListMultipartUploadsResult', { Bucket: bucket, KeyMarker: '', UploadIdMarker: '', MaxUploads: 1000, IsTruncated: false, ...(shown.length > 0 ? { Upload: shown } : {}) })
}
