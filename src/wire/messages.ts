/**
 * Every dsm wire message and protocol id, in one place.
 * Schemas are strict about types and sizes; unknown fields are stripped so a
 * newer minor version can add optional fields without breaking older peers.
 */
import { z } from 'zod'
import { NODE_STATES } from '../node/state.ts'
import {
  GROUP_NAME_MAX_CHARS, HEARTBEAT_MAX_ADDRS, MULTIADDR_MAX_CHARS, PROTOCOL_PREFIX
} from '../constants.ts'

export const PROTOCOLS = {
  /** Request a peer's membership view (join and partition heal). */
  members: `${PROTOCOL_PREFIX}/members/1.0.0`,
  /** Tell a connected peer we are leaving (body: our OFFLINE heartbeat). */
  leave: `${PROTOCOL_PREFIX}/leave/1.0.0`
} as const

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const peerIdString = z.string().min(1).max(128).regex(/^[1-9A-HJ-NP-Za-km-z]+$/, 'a base58btc peer id')
export const groupName = z.string().min(1).max(GROUP_NAME_MAX_CHARS).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" or "-", not starting with a symbol')

export const SyncStatusSchema = z.object({
  /** Head of this member's group log (its latest local sequence number). */
  head: count,
  /** While SYNCING: files and bytes still to fetch. */
  filesToGo: count,
  bytesToGo: count
})
export type SyncStatus = z.infer<typeof SyncStatusSchema>

export const HeartbeatSchema = z.object({
  peer: peerIdString,
  addrs: z.array(z.string().min(1).max(MULTIADDR_MAX_CHARS)).max(HEARTBEAT_MAX_ADDRS),
  group: groupName.nullable(),
  state: z.enum(NODE_STATES),
  /** Capacity of the data dir's file system, and what is still free. */
  total: count,
  free: count,
  /** Active transfers (uploads + downloads being served). */
  load: count,
  version: z.string().max(32),
  /** Start time of the sender's process: orders heartbeats across restarts. */
  incarnation: count,
  /** Per-incarnation counter: a heartbeat not newer than the last one is stale. */
  seq: count,
  /** Sender's wall clock when sent (ms since epoch). */
  ts: count,
  sync: SyncStatusSchema,
  /** A spare holds no group and waits to be recruited by a group that lost a member. */
  spare: z.boolean()
})
export type Heartbeat = z.infer<typeof HeartbeatSchema>

export const MembersRequestSchema = z.object({})
export type MembersRequest = z.infer<typeof MembersRequestSchema>

export const MembersResponseSchema = z.object({
  members: z.array(z.object({
    heartbeat: HeartbeatSchema,
    /** How long ago the answering node heard this heartbeat. */
    ageMs: count
  })).max(10_000)
})
export type MembersResponse = z.infer<typeof MembersResponseSchema>

export const LeaveAckSchema = z.object({ ok: z.literal(true) })
export type LeaveAck = z.infer<typeof LeaveAckSchema>
