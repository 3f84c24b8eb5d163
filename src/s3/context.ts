/**
 * What an S3 operation works with: the request as parsed (bucket, key,
 * query, headers), the response to write, and the node's parts it needs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Located } from '../dht/locate.ts'
import type { Namespace } from '../replica/namespace.ts'
import type { UploadRequest } from '../replica/service.ts'
import type { UploadResult } from '../wire/messages.ts'
import type { Verified } from './sigv4.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface S3Node {
  names: Pick<Namespace, 'ownerOf' | 'createBucket' | 'deleteBucket' | 'bucket' | 'buckets' | 'getObject' | 'putObject' | 'deleteObject' | 'list' | 'get' | 'put' | 'remove' | 'listRaw' | 'bucketChecked'>
  upload (req: UploadRequest, source: AsyncIterable<Uint8Array>, options: AbortOptions): Promise<UploadResult>
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
