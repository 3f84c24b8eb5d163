/**
 * S3's errors: a code, a status, a message, sent as S3's XML with the
 * request id (the same as the `x-amz-request-id` header, as clients check).
 * dsm's own errors (a quorum out of reach, a full disk, a file gone) map to
 * the S3 code a client knows how to handle.
 */
import { XMLBuilder } from 'fast-xml-parser'
import { DsmError } from '../errors.ts'

/** An error S3 clients understand: `code` is S3's (NoSuchKey, AccessDenied, …). */
export class S3Error extends DsmError {
  static override name = 'S3Error'
  override name = 'S3Error'
  readonly status: number
  /** Extra XML elements some errors carry (e.g. BucketName, Key). */
  readonly extra: Record<string, string>

  constructor (code: string, status: number, message: string, extra: Record<string, string> = {}) {
    super(message)
    this.code = code
    this.status = status
    this.extra = extra
  }
}

export const s3Errors = {
  accessDenied: (why = 'Access Denied'): S3Error => new S3Error('AccessDenied', 403, why),
  signatureDoesNotMatch: (): S3Error => new S3Error('SignatureDoesNotMatch', 403, 'The request signature we calculated does not match the signature you provided. Check your key and signing method.'),
  invalidAccessKeyId: (): S3Error => new S3Error('InvalidAccessKeyId', 403, 'The AWS Access Key Id you provided does not exist in our records.'),
  timeTooSkewed: (): S3Error => new S3Error('RequestTimeTooSkewed', 403, 'The difference between the request time and the current time is too large.'),
  noSuchBucket: (bucket: string): S3Error => new S3Error('NoSuchBucket', 404, 'The specified bucket does not exist', { BucketName: bucket }),
  noSuchKey: (key: string): S3Error => new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { Key: key }),
  bucketExists: (bucket: string): S3Error => new S3Error('BucketAlreadyOwnedByYou', 409, 'Your previous request to create the named bucket succeeded and you already own it.', { BucketName: bucket }),
  bucketNotEmpty: (bucket: string): S3Error => new S3Error('BucketNotEmpty', 409, 'The bucket you tried to delete is not empty', { BucketName: bucket }),
  invalidBucketName: (bucket: string): S3Error => new S3Error('InvalidBucketName', 400, 'The specified bucket is not valid.', { BucketName: bucket }),
  keyTooLong: (): S3Error => new S3Error('KeyTooLongError', 400, 'Your key is too long'),
  invalidArgument: (message: string): S3Error => new S3Error('InvalidArgument', 400, message),
  invalidRequest: (message: string): S3Error => new S3Error('InvalidRequest', 400, message),
  badDigest: (): S3Error => new S3Error('BadDigest', 400, 'The Content-MD5 you specified did not match what we received.'),
  invalidDigest: (): S3Error => new S3Error('InvalidDigest', 400, 'The Content-MD5 you specified is not valid.'),
  invalidRange: (size: number): S3Error => new S3Error('InvalidRange', 416, 'The requested range is not satisfiable', { ActualObjectSize: String(size) }),
  preconditionFailed: (): S3Error => new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold'),
  notImplemented: (what: string): S3Error => new S3Error('NotImplemented', 501, `${what} is not implemented by dsm`),
  methodNotAllowed: (): S3Error => new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.'),
  malformedXml: (): S3Error => new S3Error('MalformedXML', 400, 'The XML you provided was not well-formed or did not validate against our published schema.'),
  metadataTooLarge: (): S3Error => new S3Error('MetadataTooLarge', 400, 'Your metadata headers exceed the maximum allowed metadata size.'),
  entityTooLarge: (): S3Error => new S3Error('EntityTooLarge', 400, 'Your proposed upload exceeds the maximum allowed size.'),
  incompleteBody: (): S3Error => new S3Error('IncompleteBody', 400, 'You did not provide the number of bytes specified by the Content-Length HTTP header.'),
  missingContentLength: (): S3Error => new S3Error('MissingContentLength', 411, 'You must provide the Content-Length HTTP header.'),
  xAmzContentSha256Mismatch: (): S3Error => new S3Error('XAmzContentSHA256Mismatch', 400, 'The provided \'x-amz-content-sha256\' header does not match what was computed.'),
  badChecksum: (algorithm: string): S3Error => new S3Error('BadDigest', 400, `The ${algorithm} you specified did not match the calculated checksum.`),
  unsupportedExpect: (): S3Error => new S3Error('InvalidRequest', 400, 'Only Expect: 100-continue is supported.'),
  slowDown: (message: string): S3Error => new S3Error('ServiceUnavailable', 503, message),
  internal: (message: string): S3Error => new S3Error('InternalError', 500, message)
}

/** dsm's code → S3's, for errors raised below the S3 layer (or relayed from another node). */
const BY_DSM_CODE: Record<string, (err: Error) => S3Error> = {
  ERR_NO_SUCH_BUCKET: () => new S3Error('NoSuchBucket', 404, 'The specified bucket does not exist'),
  ERR_BUCKET_EXISTS: () => new S3Error('BucketAlreadyOwnedByYou', 409, 'Your previous request to create the named bucket succeeded and you already own it.'),
  ERR_BUCKET_NOT_EMPTY: () => new S3Error('BucketNotEmpty', 409, 'The bucket you tried to delete is not empty'),
  ERR_FILE_NOT_FOUND: (e) => new S3Error('NoSuchKey', 404, e.message),
  ERR_MESSAGE_TOO_LARGE: () => s3Errors.entityTooLarge(),
  ERR_INSUFFICIENT_STORAGE: (e) => new S3Error('ServiceUnavailable', 503, `insufficient storage: ${e.message}`),
  ERR_REQUEST_TIMEOUT: () => new S3Error('RequestTimeout', 400, 'Your socket connection to the server was not read from or written to within the timeout period.'),
  ERR_INVALID_FILE_NAME: (e) => s3Errors.invalidArgument(e.message),
  ERR_BAD_REQUEST: (e) => s3Errors.invalidArgument(e.message),
  ERR_RANGE_NOT_SATISFIABLE: (e) => new S3Error('InvalidRange', 416, e.message)
}

/** A retryable failure of the cluster (quorum, unavailable, undecided) is S3's 503: SDKs retry it. */
const UNAVAILABLE = new Set(['ERR_QUORUM', 'ERR_UNAVAILABLE', 'ERR_UNDECIDED', 'ERR_NO_GROUP', 'ERR_NOT_STARTED', 'ERR_PEER_UNAUTHORIZED', 'ERR_TIMEOUT', 'ERR_NOT_A_MEMBER'])

export function toS3Error (err: unknown): S3Error {
  if (err instanceof S3Error) return err
  const e = err instanceof Error ? err : new Error(String(err))
  const code = (e as { code?: string }).code ?? ''
  const mapped = BY_DSM_CODE[code]
  if (mapped != null) return mapped(e)
  if (UNAVAILABLE.has(code)) return new S3Error('ServiceUnavailable', 503, e.message)
  return s3Errors.internal(e instanceof DsmError ? e.message : `internal error: ${e.message}`)
}

const builder = new XMLBuilder({ ignoreAttributes: false, suppressEmptyNode: false, format: false })

export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

/** S3's XML document for `root`, with the XML declaration. */
export function xml (root: string, body: unknown): string {
  return `${XML_DECLARATION}${xmlElement(root, body)}`
}

/** The root element alone (written after a declaration sent earlier). */
export function xmlElement (root: string, body: unknown): string {
  return builder.build({ [root]: body }) as string
}

export function errorXml (err: S3Error, resource: string, requestId: string): string {
  return xml('Error', { Code: err.code, Message: err.message, ...err.extra, Resource: resource, RequestId: requestId })
}
