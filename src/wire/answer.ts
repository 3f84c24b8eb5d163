/**
 * The answer every dsm protocol sends back: `{ ok }` or `{ error: { code,
 * message } }` (a named dsm error keeps its code across the wire), and the
 * room a frame needs around its payload. One definition for every protocol:
 * request/response (./rpc.ts), and the streaming ones (put, replicate, get,
 * channel) and the guard that refuses unproven peers.
 */
import { z } from 'zod'
import { FRAME_OVERHEAD_BYTES } from '../constants.ts'
import { DsmError, remoteError } from '../errors.ts'

export const ErrorFrameSchema = z.object({ code: z.string().max(64), message: z.string().max(4096) })
export type ErrorFrame = z.infer<typeof ErrorFrameSchema>

export type Answer<T> = { ok?: T, error?: ErrorFrame }

/** `{ ok?: T, error? }` for the schema of T. */
export function answerSchema<T> (ok: z.ZodType<T>): z.ZodType<Answer<T>> {
  return z.object({ ok: ok.optional(), error: ErrorFrameSchema.optional() })
}

/** An error as sent on the wire: named dsm errors keep their code. */
export function errorFrame (err: Error): ErrorFrame {
  return { code: err instanceof DsmError ? err.code : 'ERR_INTERNAL', message: err.message.slice(0, 4096) }
}

/**
 * The `ok` of an answer; its error re-thrown as the named error it was
 * (RemoteError with the peer's code), an empty answer as ERR_PROTOCOL.
 * `who` names the peer in an empty answer's message, and prefixes its error's
 * message when `prefix` is set (an error the user reads as is keeps its words).
 */
export function unwrapAnswer<T> (answer: Answer<T>, who: string, options: { prefix?: boolean } = {}): T {
  if (answer.error != null) throw remoteError(answer.error.code, options.prefix === true ? `${who}: ${answer.error.message}` : answer.error.message)
  if (answer.ok === undefined) throw remoteError('ERR_PROTOCOL', `${who} answered nothing`)
  return answer.ok
}

/** The largest frame that carries a payload of `payloadBytes` (CBOR keys and lengths around it). */
export function frameBytesFor (payloadBytes: number): number {
  return payloadBytes + FRAME_OVERHEAD_BYTES
}
