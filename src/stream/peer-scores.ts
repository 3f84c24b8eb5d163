/**
 * What this node remembers about peers that served bad bytes. Every chunk is
 * verified, so a lying or corrupt replica never gets a byte to a client; but
 * without memory each new read would ask it first again and pay a wasted
 * round trip (and a failover) every time. A penalty decays with a half-life,
 * so a replica whose disk was repaired earns its place back by itself.
 */
import { monotonicNow } from '../util/time.ts'

/** Several peers this misbehaving (failed verifications) are tried last on reads. */
export const PEER_SCORE_AVOID_BELOW = -10
/** Penalty for one chunk that failed verification: one strike puts a peer below the threshold. */
export const PEER_SCORE_BAD_CHUNK = -20
/** Half-life of a peer's penalty: a replica whose disk was repaired is trusted again. */
export const PEER_SCORE_HALF_LIFE_MS = 10 * 60_000

interface Entry { score: number, at: number }

export class PeerScores {
  private readonly entries = new Map<string, Entry>()
  private readonly now: () => number

  /** Decay runs on a monotonic clock: a wall clock set back would make a penalty grow instead of fade. */
  constructor (now: () => number = monotonicNow) {
    this.now = now
  }

  /** The peer sent a chunk that failed verification. */
  badChunk (peer: string): void {
    this.entries.set(peer, { score: this.score(peer) + PEER_SCORE_BAD_CHUNK, at: this.now() })
  }

  /** 0 for a peer with a clean record; negative, decaying towards 0, after misbehaviour. */
  score (peer: string): number {
    const e = this.entries.get(peer)
    if (e == null) return 0
    const score = e.score * 0.5 ** ((this.now() - e.at) / PEER_SCORE_HALF_LIFE_MS)
    if (score > -0.01) this.entries.delete(peer)
    return score > -0.01 ? 0 : score
  }

  /** Readers ask this peer only when no better replica is left. */
  avoided (peer: string): boolean {
    return this.score(peer) < PEER_SCORE_AVOID_BELOW
  }

  /** Peers with a record, for /api/peers and metrics. */
  snapshot (): Array<{ peerId: string, score: number }> {
    return [...this.entries.keys()].map(peerId => ({ peerId, score: this.score(peerId) })).filter(p => p.score < 0)
  }
}
