/**
 * What an S3 operation works with: the request as parsed (bucket, key,
 * query, headers), the response to write, and the node's parts it needs.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Located } from '../dht/locate.ts'
import type { Namespace } from '../replica/namespace.ts'
import type { UploadRequest } from '../replica/service.ts'
import type { IngestOptions } from '../replica/ingest.ts'
import type { UploadResult } from '../wire/messages.ts'
import type { Verified } from './sigv4.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface S3Node {
  names: Pick<Namespace, 'ownerOf' | 'createBucket' | 'deleteBucket' | 'bucket' | 'buckets' | 'getObject' | 'putObject' | 'deleteObject' | 'list' | 'get' | 'put' | 'remove' | 'listRaw' | 'bucketChecked'>
  /** `options.name`: the key record to write with the file when it can ride in its commit (the result says `named`). */
  upload (req: UploadRequest, source: AsyncIterable<Uint8Array>, options: IngestOptions): Promise<UploadResult>
  open (id: string, options: AbortOptions): Promise<Located>
  read (located: Located, offset: number, length: number, options: AbortOptions): AsyncIterable<Uint8Array>
}

export interface S3Request {
  id: string
  method: string
  bucket?: string
  key?: string
  query: URLSearchParams
  /** Query parameters in arrival order (the signature covers them so). */
  rawQuery: Array<[string, string]>
  rawPath: string
  raw: IncomingMessage
  res: ServerResponse
  /** Who signed it (undefined: anonymous). */
  accessKeyId?: string
  /** The declared payload hash when signed in headers. */
  payloadHash?: string
  /** The checked signature (what a streaming body's chunk signatures chain from). */
  auth?: Verified
  signal: AbortSignal
}

export function header (req: S3Request, name: string): string | undefined {
  const v = req.raw.headers[name]
  return Array.isArray(v) ? v.join(',') : v
}

/** A dsm file name for an object: its key's last segment, made a valid name (the key itself stays in the namespace). */
export function fileNameFor (key: string): string {
  const last = key.split('/').filter(s => s !== '').at(-1) ?? 'object'
  // eslint-disable-next-line no-control-regex
  const clean = last.replace(/[\\/\x00-\x1f\x7f]/g, '_').slice(0, 200)
  return clean === '.' || clean === '..' || clean === '' ? 'object' : clean
}

/**
 * What an object's (or a part's) bytes are uploaded as: a file named after
 * the key, tagged so that it is a file of its own (content/manifest.ts) that
 * its value owns and frees (replica/reclaim.ts); the value says `own: true`.
 */
export function ownFile (name: string, mime?: string): Pick<UploadRequest, 'name' | 'tag' | 'mime'> {
  return { name, tag: nextTag(), ...(mime != null && /^[\w.+-]+\/[\w.+-]+$/.test(mime) ? { mime } : {}) }
}

/**
 * Tags unique across the cluster and time: 96 random bits drawn once per
 * process, then a counter (drawing 12 random bytes per object cost more
 * than the rest of the tag's work together).
 */
const TAG_PREFIX = randomBytes(12).toString('base64url')
let tagCounter = 0

function nextTag (): string {
  return `${TAG_PREFIX}${(tagCounter++).toString(36)}`
}
