/**
 * The dsm wire codec: every message is one CBOR value (RFC 8949, via `cborg`,
 * strict mode) validated against a zod schema on receipt.
 *
 * Why not protobuf: protons emits TypeScript enums and namespaces, which Node's
 * type stripping cannot run, and dsm runs its sources directly. CBOR carries
 * binary fields natively (chunk bytes, hashes) and cborg rejects non-canonical
 * or ambiguous input; the schemas give every decoder the same strict checks and
 * a clear error. Frames on streams are varint length-prefixed (see ./frames.ts).
 */
import { decode, encode } from 'cborg'
import type { z } from 'zod'
import { InvalidMessageError, MessageTooLargeError } from '../errors.ts'
import { formatZodError } from '../util/zod.ts'
import type { Uint8ArrayList } from 'uint8arraylist'

const DECODE_OPTIONS = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
  useMaps: false
} as const

export function encodeMessage<T> (schema: z.ZodType<T>, value: T): Uint8Array {
  // Validating on the way out keeps a bug on our side from reaching a peer.
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    throw new InvalidMessageError(`refusing to send an invalid message: ${formatZodError(parsed.error)}`)
  }
  return encode(parsed.data, { ignoreUndefinedProperties: true })
}

/**
 * Encode without validating: for the upload channel's frames (a put's fields, its decision, a member's
 * answer), built every upload by our own code from values already checked, and validated by the peer on
 * receipt. zod on the way out cost the coordinator ~10 µs per 4 KiB upload (a profile of issue 23).
 * `_schema` names what the value must be (the type checker holds the code to it).
 */
export function encodeTrusted<T> (_schema: z.ZodType<T>, value: T): Uint8Array {
  return encode(value, { ignoreUndefinedProperties: true })
}

export function decodeMessage<T> (schema: z.ZodType<T>, bytes: Uint8Array | Uint8ArrayList, maxBytes: number): T {
  if (bytes.byteLength > maxBytes) {
    throw new MessageTooLargeError(`message of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes}`)
  }
  let value: unknown
  try {
    value = decode(bytes instanceof Uint8Array ? bytes : bytes.subarray(), DECODE_OPTIONS)
  } catch (err) {
    // cborg throws plain Errors (and RangeError on absurd nesting): make them ours.
    throw new InvalidMessageError(`undecodable CBOR: ${(err as Error).message}`)
  }
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    throw new InvalidMessageError(`malformed message: ${formatZodError(parsed.error)}`)
  }
  return parsed.data
}
