/**
 * Heartbeat checks at the gossip boundary. A heartbeat must be sealed by a
 * holder of the cluster secret (./seal.ts), signed by the member it
 * describes, small and well-formed; anything else is dropped and counted by
 * reason (never thrown past the validator). Freshness is not judged here by
 * the sender's clock: the view orders heartbeats by (incarnation, seq).
 */
import type { HeartbeatSeal } from './seal.ts'
import type { Heartbeat } from '../wire/messages.ts'
import type { Message } from '@libp2p/gossipsub'

export const DROP_REASONS = ['unsigned', 'oversized', 'malformed', 'unproven', 'forged', 'stale', 'flood'] as const
export type DropReason = typeof DROP_REASONS[number]

export type HeartbeatCheck = { ok: true, heartbeat: Heartbeat, sealed: Uint8Array } | { ok: false, reason: DropReason, detail: string }

export async function checkHeartbeat (msg: Message, seal: HeartbeatSeal): Promise<HeartbeatCheck> {
  if (msg.type !== 'signed') return { ok: false, reason: 'unsigned', detail: 'heartbeat is not signed' }
  return seal.open(msg.data, msg.from.toString())
}
