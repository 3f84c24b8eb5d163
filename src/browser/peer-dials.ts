/**
 * The dials a browser node makes to other tabs of a swarm: one at a time per
 * peer, and none again for a while to a peer whose last dial failed.
 *
 * A tab that closed stays on the trackers' lists until its entry expires
 * (SWARM_TTL_MS), and the lists put the freshest announces first: after a
 * crowd of viewers left, a tab dialing the first SWARM_MAX_PEER_CONNECTIONS
 * entries would dial the same departed tabs at every announce and never
 * reach the live holder further down (a bench tab found its first peer 7 s
 * late). A failed peer is passed over for PEER_REDIAL_AFTER_MS.
 */

/** A peer whose dial failed is not dialed again (nor counted as a holder) for this long. */
export const PEER_REDIAL_AFTER_MS = 15_000

export class PeerDials {
  /** Dials under way, by peer (they settle, never reject). */
  private readonly under = new Map<string, Promise<void>>()
  /** Peers whose last dial failed: when they may be dialed again (ms). */
  private readonly failedUntil = new Map<string, number>()
  private readonly now: () => number

  constructor (now: () => number = Date.now) {
    this.now = now
  }

  /** Whether a dial to `peer` failed lately (not worth dialing, nor waiting for). */
  failedLately (peer: string): boolean {
    const until = this.failedUntil.get(peer)
    if (until == null) return false
    if (until > this.now()) return true
    this.failedUntil.delete(peer)
    return false
  }

  /**
   * The peers to dial now, in the list's order: not connected, not being
   * dialed, not failed lately, with an address; at most `room` of them.
   */
  candidates<T extends { addrs: unknown[] }> (swarm: Iterable<[string, T]>, connected: (peer: string) => boolean, room: number): Array<[string, T]> {
    const out: Array<[string, T]> = []
    for (const entry of swarm) {
      if (out.length >= room) break
      const [peer, info] = entry
      if (info.addrs.length === 0 || connected(peer) || this.under.has(peer) || this.failedLately(peer)) continue
      out.push(entry)
    }
    return out
  }

  /** Track a dial to `peer` until it settles; a failure keeps the peer out for PEER_REDIAL_AFTER_MS. */
  track (peer: string, dial: Promise<unknown>, onError: (err: unknown) => void): void {
    // No longer under way when `onError` runs: a caller dialing the next peer from it has this one's slot.
    const settled = dial.then(() => {
      this.under.delete(peer)
      this.failedUntil.delete(peer)
    }, (err: unknown) => {
      this.under.delete(peer)
      this.failedUntil.set(peer, this.now() + PEER_REDIAL_AFTER_MS)
      onError(err)
    })
    this.under.set(peer, settled)
  }

  /** The dials under way to any of `peers`. */
  pending (peers: string[]): Array<Promise<void>> {
    return peers.flatMap(p => this.under.get(p) ?? [])
  }
}
