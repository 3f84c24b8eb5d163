/**
 * Heartbeat checks at the gossip boundary. A heartbeat must be signed by the
 * member it describes, small, well-formed and recent; anything else is
 * dropped and counted by reason (never thrown past the validator).
 */
import { HEARTBEAT_MAX_AGE_MS, HEARTBEAT_MAX_BYTES, HEARTBEAT_MAX_FUTURE_MS } from '../../constants.ts'
import { decodeMessage } from '../../wire/codec.ts'
import { HeartbeatSchema } from '../../wire/messages.ts'
import type { Heartbeat } from '../../wire/messages.ts'
import type { Message } from '@libp2p/gossipsub'

export const DROP_REASONS = ['unsigned', 'oversized', 'malformed', 'forged', 'stale', 'future', 'flood'] as const
export type DropReason = typeof DROP_REASONS[number]

export type HeartbeatCheck = { ok: true, heartbeat: Heartbeat } | { ok: false, reason: DropReason, detail: string }

export function checkHeartbeat (msg: Message, now: number): HeartbeatCheck {
  if (msg.type !== 'signed') return { ok: false, reason: 'unsigned', detail: 'heartbeat is not signed' }
  if (msg.data.byteLength > HEARTBEAT_MAX_BYTES) {
    return { ok: false, reason: 'oversized', detail: `${msg.data.byteLength} bytes > ${HEARTBEAT_MAX_BYTES}` }
  }
  let heartbeat: Heartbeat
  try {
    heartbeat = decodeMessage(HeartbeatSchema, msg.data, HEARTBEAT_MAX_BYTES)
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message }
  }
  // The gossipsub signature proves who sent it; the body must not claim to be someone else.
  const signer = msg.from.toString()
  if (heartbeat.peer !== signer) {
    return { ok: false, reason: 'forged', detail: `claims ${heartbeat.peer} but signed by ${signer}` }
  }
  if (heartbeat.ts < now - HEARTBEAT_MAX_AGE_MS) {
    return { ok: false, reason: 'stale', detail: `sent ${now - heartbeat.ts} ms ago` }
  }
  if (heartbeat.ts > now + HEARTBEAT_MAX_FUTURE_MS) {
    return { ok: false, reason: 'future', detail: `stamped ${heartbeat.ts - now} ms ahead of our clock` }
  }
  return { ok: true, heartbeat }
}
