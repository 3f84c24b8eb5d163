/**
 * Members' addresses from their heartbeats, into the peer store so a member
 * can be dialled by peer id. A heartbeat repeats the same addresses every
 * period; merging them into the peer store each time (a datastore write and
 * events) was 8 % of a 100-node cluster's CPU, so only changes are written,
 * plus a refresh now and then in case the peer store aged them out.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerStore } from '@libp2p/interface'

/** A member's unchanged heartbeat addresses are written to the peer store again after this long. */
export const ADDRS_REFRESH_MS = 10 * 60_000

/** Bounded: a node forgets what it wrote for this many peers beyond the newest (it then writes again). */
const MAX_REMEMBERED_PEERS = 10_000

export function addrBook (peerStore: Pick<PeerStore, 'merge'>, refreshMs = ADDRS_REFRESH_MS): (peer: string, addrs: string[]) => Promise<void> {
  const written = new Map<string, { key: string, at: number }>()
  return async (peer, addrs) => {
    const key = addrs.join(' ')
    const now = Date.now()
    const last = written.get(peer)
    if (last != null && last.key === key && now - last.at < refreshMs) return
    await peerStore.merge(peerIdFromString(peer), { multiaddrs: addrs.map(a => multiaddr(a)) })
    written.delete(peer)
    written.set(peer, { key, at: now })
    if (written.size > MAX_REMEMBERED_PEERS) written.delete(written.keys().next().value as string)
  }
}
