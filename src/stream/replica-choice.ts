/**
 * Which replicas a read asks, in order: ACTIVE members of the file's group,
 * least loaded first (load from their heartbeats), then those we already
 * hold a connection to (a new one costs both ends a handshake, identify and
 * gossip and DHT set-up — more than a small read), then lowest round-trip
 * time (measured by libp2p's connection monitor), then peer id. The local
 * copy, when there is one, always comes before them. Replicas that served
 * bytes failing verification lately (./peer-scores.ts) come last: still a
 * last resort, since every byte is verified anyway.
 */
import type { MemberRecord } from '../membership/view.ts'

export interface ReplicaPreferences {
  rttOf: (peerId: string) => number | undefined
  /** Served bad bytes lately. */
  avoided?: (peerId: string) => boolean
  /** We hold a connection to it. */
  connected?: (peerId: string) => boolean
}

export function orderReplicas (members: MemberRecord[], prefs: ReplicaPreferences): MemberRecord[] {
  const rtt = (m: MemberRecord): number => prefs.rttOf(m.peerId) ?? Number.POSITIVE_INFINITY
  const bad = (m: MemberRecord): number => prefs.avoided?.(m.peerId) === true ? 1 : 0
  const cold = (m: MemberRecord): number => prefs.connected?.(m.peerId) === false ? 1 : 0
  return members
    .filter(m => !m.self && m.state === 'ACTIVE')
    .sort((a, b) => bad(a) - bad(b) || a.load - b.load || cold(a) - cold(b) || rtt(a) - rtt(b) || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0))
}
