/**
 * Bucket operations: ListBuckets, CreateBucket (x-amz-acl public-read makes
 * it readable by anyone; other canned ACLs are accepted and ignored),
 * HeadBucket, DeleteBucket (empty only), GetBucketLocation, and the two
 * listings, ListObjectsV2 and ListObjects (v1).
 */
import { s3BucketName } from '../wire/names.ts'
import { sendXml } from './answer.ts'
import { s3Errors } from './errors.ts'
import { header } from './context.ts'
import { listKeys } from './listing.ts'
import type { S3Node, S3Request } from './context.ts'

/** Who owns everything: dsm has no per-user ownership (access keys are the cluster's). */
export const OWNER = { ID: 'dsm', DisplayName: 'dsm' }
/** What GetBucketLocation answers (one cluster, one region). */
export const DEFAULT_REGION = 'us-east-1'

const checkName = (name: string): boolean => s3BucketName.safeParse(name).success

export function checkBucketName (name: string): string {
  if (!s3BucketName.safeParse(name).success) throw s3Errors.invalidBucketName(name)
  return name
}

export async function listBuckets (node: S3Node, req: S3Request): Promise<void> {
  const allowed = req.auth?.key.buckets ?? []
  const buckets = (await node.names.buckets({ signal: req.signal })).filter(b => checkName(b.name) && (allowed.length === 0 || allowed.includes(b.name)))
  sendXml(req, 'ListAllMyBucketsResult', {
    Owner: OWNER,
    Buckets: { Bucket: buckets.map(b => ({ Name: b.name, CreationDate: new Date(b.record.created).toISOString() })) }
  })
}

export async function createBucket (node: S3Node, req: S3Request, bucket: string): Promise<void> {
  checkBucketName(bucket)
  // The body (CreateBucketConfiguration / LocationConstraint) names a region: one cluster, one region; read and ignored.
  for await (const _ of req.raw) { /* drain */ }
  await node.names.createBucket(bucket, { created: Date.now(), publicRead: header(req, 'x-amz-acl') === 'public-read' }, { signal: req.signal })
  req.res.writeHead(200, { Location: `/${bucket}`, 'Content-Length': '0' }).end()
}

export async function headBucket (node: S3Node, req: S3Request, bucket: string): Promise<void> {
  await node.names.bucket(bucket, { signal: req.signal })
  req.res.writeHead(200, { 'x-amz-bucket-region': DEFAULT_REGION, 'Content-Length': '0' }).end()
}

export async function deleteBucket (node: S3Node, req: S3Request, bucket: string): Promise<void> {
  await node.names.deleteBucket(bucket, { signal: req.signal })
  req.res.writeHead(204).end()
}

export async function bucketLocation (node: S3Node, req: S3Request, bucket: string): Promise<void> {
  await node.names.bucket(bucket, { signal: req.signal })
  // us-east-1 is S3's empty LocationConstraint.
  sendXml(req, 'LocationConstraint', { '#text': '' })
}

function maxKeysOf (req: S3Request): number {
  const raw = req.query.get('max-keys')
  if (raw == null) return 1000
  if (!/^\d+$/.test(raw)) throw s3Errors.invalidArgument('max-keys must be a non-negative integer')
  return Math.min(1000, Number(raw))
}

/** ListObjectsV2 (list-type=2) and ListObjects (v1, marker). */
export async function listObjects (node: S3Node, req: S3Request, bucket: string): Promise<void> {
  const v2 = req.query.get('list-type') === '2'
  const prefix = req.query.get('prefix') ?? ''
  const delimiter = req.query.get('delimiter') ?? ''
  const urlEncoded = req.query.get('encoding-type') === 'url'
  if (req.query.has('encoding-type') && !urlEncoded) throw s3Errors.invalidArgument('encoding-type must be url')
  const maxKeys = maxKeysOf(req)
  const token = req.query.get('continuation-token')
  let after = v2 ? (req.query.get('start-after') ?? '') : (req.query.get('marker') ?? '')
  if (v2 && token != null) {
    const decoded = Buffer.from(token, 'base64url').toString('utf8')
    if (!decoded.startsWith('dsm:')) throw s3Errors.invalidArgument('The continuation token provided is incorrect')
    after = decoded.slice(4)
  }
  await node.names.bucketChecked(bucket, { signal: req.signal })
  const result = await listKeys(async (from, limit) => node.names.list(bucket, from, limit, { signal: req.signal }), { prefix, delimiter, after, maxKeys })
  const enc = (s: string): string => urlEncoded ? encodeURIComponent(s).replace(/%2F/g, '/') : s
  const fetchOwner = req.query.get('fetch-owner') === 'true' || !v2
  const contents = result.contents.map(k => ({
    Key: enc(k.key),
    LastModified: new Date(k.record.modified).toISOString(),
    ETag: k.record.etag,
    Size: k.record.size,
    StorageClass: 'STANDARD',
    ...(fetchOwner ? { Owner: OWNER } : {})
  }))
  const common = result.commonPrefixes.map(p => ({ Prefix: enc(p) }))
  const body: Record<string, unknown> = {
    Name: bucket,
    Prefix: enc(prefix),
    ...(v2 ? {} : { Marker: enc(req.query.get('marker') ?? '') }),
    MaxKeys: maxKeys,
    ...(delimiter !== '' ? { Delimiter: enc(delimiter) } : {}),
    IsTruncated: result.truncated,
    ...(urlEncoded ? { EncodingType: 'url' } : {}),
    ...(contents.length > 0 ? { Contents: contents } : {}),
    ...(common.length > 0 ? { CommonPrefixes: common } : {})
  }
  if (v2) {
    body.KeyCount = contents.length + common.length
    if (token != null) body.ContinuationToken = token
    if (req.query.has('start-after')) body.StartAfter = enc(req.query.get('start-after') ?? '')
    if (result.truncated && result.next != null) body.NextContinuationToken = Buffer.from(`dsm:${result.next}`).toString('base64url')
  } else if (result.truncated && result.next != null && delimiter !== '') {
    body.NextMarker = enc(result.next)
  }
  sendXml(req, 'ListBucketResult', body)
}
