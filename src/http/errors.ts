/** Which HTTP status each dsm error code maps to (by code, so errors relayed from other nodes keep theirs). */
import { DsmError } from '../errors.ts'

const STATUS_BY_CODE: Record<string, number> = {
  ERR_BAD_REQUEST: 400,
  ERR_INVALID_MESSAGE: 400,
  ERR_INVALID_FILE_ID: 400,
  ERR_INVALID_FILE_NAME: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_URL_EXPIRED: 403,
  ERR_BAD_SIGNATURE: 403,
  ERR_NOT_FOUND: 404,
  ERR_GROUP_NOT_FOUND: 404,
  ERR_FILE_NOT_FOUND: 404,
  ERR_NO_SUCH_PACKAGE: 404,
  ERR_REQUEST_TIMEOUT: 408,
  ERR_NOT_A_MEMBER: 409,
  ERR_MESSAGE_TOO_LARGE: 413,
  ERR_RANGE_NOT_SATISFIABLE: 416,
  ERR_INVALID_MANIFEST: 502,
  ERR_CORRUPT_CHUNK: 502,
  ERR_QUORUM: 503,
  ERR_NO_GROUP: 503,
  ERR_UNAVAILABLE: 503,
  ERR_UNDECIDED: 503,
  ERR_PEER_UNAUTHORIZED: 503,
  ERR_NOT_STARTED: 503,
  ERR_TIMEOUT: 504,
  ERR_INSUFFICIENT_STORAGE: 507,
  // Client errors Fastify or Node detect before our code runs.
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_URI_TOO_LONG: 414,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_HEADERS_TOO_LARGE: 431
}

/** Our code for a 4xx status raised by the framework. */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'ERR_BAD_REQUEST',
  404: 'ERR_NOT_FOUND',
  405: 'ERR_METHOD_NOT_ALLOWED',
  413: 'ERR_MESSAGE_TOO_LARGE',
  414: 'ERR_URI_TOO_LONG',
  415: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  431: 'ERR_HEADERS_TOO_LARGE'
}

/** The status and code an error is answered with. */
export function errorAnswer (err: Error & { statusCode?: number }): { status: number, code: string } {
  if (err instanceof DsmError) return { status: STATUS_BY_CODE[err.code] ?? 500, code: err.code }
  const status = statusOf(err)
  // A framework 4xx we have no name for is still the client's error: 400.
  if (status >= 400 && status < 500) return CODE_BY_STATUS[status] != null ? { status, code: CODE_BY_STATUS[status] as string } : { status: 400, code: 'ERR_BAD_REQUEST' }
  return { status: 500, code: 'ERR_INTERNAL' }
}

export function statusOf (err: Error & { statusCode?: number }): number {
  if (err instanceof DsmError) return STATUS_BY_CODE[err.code] ?? 500
  // Fastify's own errors (bad JSON, body too large, validation) carry a 4xx statusCode.
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600) return err.statusCode
  return 500
}
