/**
 * Which replicas a read asks, in order: ACTIVE members of the file's group,
 * least loaded first (load from their heartbeats), then lowest round-trip
 * time (measured by libp2p's connection monitor), then peer id. The local
 * copy, when there is one, always comes before them. Replicas that served
 * bytes failing verification lately (./peer-scores.ts) come last: still a
 * last resort, since every byte is verified anyway.
 */
import type { MemberRecord } from '../node/membership/view.ts'

export function orderReplicas (members: MemberRecord[], rttOf: (peerId: string) => number | undefined, avoided: (peerId: string) => boolean = () => false): MemberRecord[] {
  const rtt = (m: MemberRecord): number => rttOf(m.peerId) ?? Number.POSITIVE_INFINITY
  const bad = (m: MemberRecord): number => avoided(m.peerId) ? 1 : 0
  return members
    .filter(m => !m.self && m.state === 'ACTIVE')
    .sort((a, b) => bad(a) - bad(b) || a.load - b.load || rtt(a) - rtt(b) || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0))
}
