/**
 * Which replicas a read asks, in order: ACTIVE members of the file's group,
 * least loaded first (load from their heartbeats), then lowest round-trip
 * time (measured by libp2p's connection monitor), then peer id. The local
 * copy, when there is one, always comes before them.
 */
import type { MemberRecord } from '../node/membership/view.ts'

export function orderReplicas (members: MemberRecord[], rttOf: (peerId: string) => number | undefined): MemberRecord[] {
  const rtt = (m: MemberRecord): number => rttOf(m.peerId) ?? Number.POSITIVE_INFINITY
  return members
    .filter(m => !m.self && m.state === 'ACTIVE')
    .sort((a, b) => a.load - b.load || rtt(a) - rtt(b) || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0))
}
