/** Which HTTP status each named dsm error maps to. */
import { DsmError } from '../errors.ts'

const STATUS_BY_NAME: Record<string, number> = {
  BadRequestError: 400,
  InvalidGroupNameError: 400,
  InvalidMessageError: 400,
  NotFoundError: 404,
  GroupNotFoundError: 404,
  MessageTooLargeError: 413,
  NotStartedError: 503,
  TimeoutError: 504
}

export function statusOf (err: Error & { statusCode?: number }): number {
  if (err instanceof DsmError) return STATUS_BY_NAME[err.name] ?? 500
  // Fastify's own errors (bad JSON, body too large, validation) carry a 4xx statusCode.
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600) return err.statusCode
  return 500
}
