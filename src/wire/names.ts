/**
 * Messages of the S3 namespace (replica/names.ts): what a bucket's and an
 * object's record hold, the requests a node sends a member of the bucket's
 * group, the push of a stamped operation to mates, and the name log's sync.
 */
import { z } from 'zod'
import { decodeMessage } from './codec.ts'
import { bytesSchema, count, fileId, groupName, stamp } from './messages.ts'

/** S3 bucket names: 3–63 of a-z 0-9 . -, starting and ending with a letter or digit. */
export const s3BucketName = z.string().min(3).max(63).regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, 'an S3 bucket name (3-63 of a-z 0-9 . -)')
/**
 * The cluster's own table of S3 access keys (replica/access-keys.ts) lives in
 * a bucket no S3 client can name (a leading dot is not a bucket name).
 */
export const ACCESS_KEYS_BUCKET = '.access-keys'
/**
 * Every group's own table of video packages and their jobs (wire/media.ts):
 * written and read in a group named by the caller (the source file's), with
 * no bucket record.
 */
export const GROUP_TABLE_BUCKET = '.media'
/** A bucket of the namespace: an S3 bucket, or the cluster's own tables. */
export const bucketName = z.union([s3BucketName, z.literal(ACCESS_KEYS_BUCKET), z.literal(GROUP_TABLE_BUCKET)])
/** S3 keys: 1–1024 bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024
export const objectKey = z.string().min(1).refine(k => Buffer.byteLength(k) <= MAX_KEY_BYTES, `at most ${MAX_KEY_BYTES} bytes`)
/** A name's record (a bucket's settings, an object's metadata), encoded: bounded like S3's 2 KiB of user metadata plus the rest. */
export const MAX_NAME_VALUE_BYTES = 16 * 1024
/** Rows one list or sync answer carries at most. */
export const MAX_NAME_ROWS = 1000

export const ObjectRecordSchema = z.object({
  /** The dsm file holding the bytes. */
  file: fileId,
  size: count,
  /** Quoted as S3 sends it: "<md5 hex>" or "<md5 of part md5s>-<parts>". */
  etag: z.string().min(2).max(80),
  mime: z.string().max(255),
  /** x-amz-meta-* (names lowercased, without the prefix). */
  meta: z.record(z.string().max(128), z.string().max(2048)),
  /** Last-Modified, ms since the epoch. */
  modified: count,
  /** Checksums given at upload (crc32, crc32c, crc64nvme, sha1, sha256: base64), returned when asked. */
  checksums: z.record(z.string().max(16), z.string().max(128)).optional(),
  /** The file is this value's alone (a tagged file): deleted once the value is replaced or removed. */
  own: z.literal(true).optional()
})
export type ObjectRecord = z.infer<typeof ObjectRecordSchema>

export const BucketRecordSchema = z.object({
  created: count,
  /** Anyone may read its objects (x-amz-acl: public-read). */
  publicRead: z.boolean()
})
export type BucketRecord = z.infer<typeof BucketRecordSchema>

const nameRowFields = {
  bucket: bucketName,
  /** '' for the bucket's own record. */
  key: z.string().refine(k => Buffer.byteLength(k) <= MAX_KEY_BYTES),
  live: z.boolean(),
  value: bytesSchema.refine(b => b.byteLength <= MAX_NAME_VALUE_BYTES, 'name record too large').optional(),
  ...stamp
}
export const NameOpSchema = z.object(nameRowFields)
export type NameOpWire = z.infer<typeof NameOpSchema>
export const NameRowSchema = z.object({ ...nameRowFields, seq: count })
export type NameRowWire = z.infer<typeof NameRowSchema>

/** What a node asks a member of the bucket's group. Writes are stamped there and pushed to its mates. */
export const NamesRequestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('write'), bucket: bucketName, key: z.string().refine(k => Buffer.byteLength(k) <= MAX_KEY_BYTES), live: z.boolean(), value: bytesSchema.refine(b => b.byteLength <= MAX_NAME_VALUE_BYTES).optional(), ifAbsent: z.boolean().optional(), ifEmpty: z.boolean().optional() }),
  z.object({ op: z.literal('get'), bucket: bucketName, key: z.string().refine(k => Buffer.byteLength(k) <= MAX_KEY_BYTES) }),
  z.object({ op: z.literal('list'), bucket: bucketName, after: z.string().refine(k => Buffer.byteLength(k) <= MAX_KEY_BYTES), limit: z.number().int().positive().max(MAX_NAME_ROWS) }),
  z.object({ op: z.literal('buckets') })
])
export type NamesRequest = z.infer<typeof NamesRequestSchema>

export const NamesResponseSchema = z.object({
  /** get: the row, tombstones included (the reader merges stamps); absent: never written. */
  row: NameRowSchema.optional(),
  /** list: rows after `after` in key order, tombstones included; buckets: the bucket records held. */
  rows: z.array(NameRowSchema).max(MAX_NAME_ROWS).optional(),
  /** list: whether rows stopped at the limit. */
  more: z.boolean().optional(),
  /** write: the stamp given, and the members that hold it durably (this one included). */
  written: z.object({ ...stamp, copies: z.number().int().positive().max(64) }).optional()
})
export type NamesResponse = z.infer<typeof NamesResponseSchema>

export const NameApplyRequestSchema = z.object({ group: groupName, op: NameOpSchema })
export type NameApplyRequest = z.infer<typeof NameApplyRequestSchema>
export const NameApplyResponseSchema = z.object({
  effect: z.enum(['applied', 'ignored']),
  /** Ignored: the stamp of the operation the member holds for that name instead (the writer stamps after it). */
  holds: z.object(stamp).optional()
})

export type NameApplyResponse = z.infer<typeof NameApplyResponseSchema>

export const NameSyncRequestSchema = z.object({ group: groupName, since: count, limit: z.number().int().positive().max(MAX_NAME_ROWS) })
export const NameSyncResponseSchema = z.object({ entries: z.array(NameRowSchema).max(MAX_NAME_ROWS), head: count, more: z.boolean() })

/** A multipart upload in progress (kept in its bucket's table, under the S3 layer's own keys). */
export const UploadRecordSchema = z.object({
  key: objectKey,
  created: count,
  mime: z.string().max(255),
  meta: z.record(z.string().max(128), z.string().max(2048))
})
export type UploadRecord = z.infer<typeof UploadRecordSchema>

/** One uploaded part: its bytes are a dsm file of their own until the upload completes. */
export const PartRecordSchema = z.object({
  file: fileId,
  size: count,
  /** Quoted MD5 hex of the part. */
  etag: z.string().min(2).max(80),
  modified: count,
  /** The file is this part's alone (see ObjectRecord.own). */
  own: z.literal(true).optional()
})
export type PartRecord = z.infer<typeof PartRecordSchema>

/** What any value that owns its file says (an object's or a part's record). */
const OwnedFileSchema = z.object({ file: fileId, own: z.literal(true) })

/**
 * The file a name's value owns (freed when the value is replaced or removed),
 * or undefined: a value of another kind, or a file it may share (written
 * before files were tagged). Never throws: a value it cannot read owns nothing.
 */
export function ownedFile (value: Uint8Array | undefined): string | undefined {
  if (value == null) return undefined
  try {
    return decodeMessage(OwnedFileSchema, value, MAX_NAME_VALUE_BYTES).file
  } catch {
    return undefined
  }
}

/** An S3 access key, as stored: its secret only sealed with the cluster secret (never in clear at rest). */
export const AccessKeyRecordSchema = z.object({
  /** The secret access key, boxed once per cluster secret held (net/cluster-secret.ts box). */
  sealed: z.array(bytesSchema.refine(b => b.byteLength <= 256)).min(1).max(4),
  /** Buckets it may use; empty: every bucket. */
  buckets: z.array(s3BucketName).max(100),
  read: z.boolean(),
  write: z.boolean(),
  created: count,
  name: z.string().max(128).optional()
})
export type AccessKeyRecord = z.infer<typeof AccessKeyRecordSchema>
