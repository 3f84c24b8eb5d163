/**
 * Heartbeats per sender, as a token bucket: an honest node publishes one per
 * interval plus one per state change (a few in a burst when it joins); a
 * peer publishing far more is flooding, and its extra heartbeats are dropped
 * (and, when it sent them to us itself, rejected so gossipsub scores it down).
 */
import { LRUCache } from 'lru-cache'

/** Heartbeats a member may send in a burst (joining: several state changes at once). */
export const HEARTBEAT_BURST = 20
/** Sustained heartbeats per second a member may send before the excess counts as a flood. */
export const HEARTBEAT_REFILL_PER_S = 5

interface Bucket { tokens: number, at: number }

export class HeartbeatRateLimit {
  /** Bounded: a flood of fresh peer ids cannot grow it without limit. */
  private readonly buckets = new LRUCache<string, Bucket>({ max: 10_000 })

  /** Spend one heartbeat of `peer`'s allowance; false when it has none left. */
  take (peer: string, now: number): boolean {
    const b = this.buckets.get(peer) ?? { tokens: HEARTBEAT_BURST, at: now }
    b.tokens = Math.min(HEARTBEAT_BURST, b.tokens + (now - b.at) / 1000 * HEARTBEAT_REFILL_PER_S)
    b.at = now
    const ok = b.tokens >= 1
    if (ok) b.tokens -= 1
    this.buckets.set(peer, b)
    return ok
  }
}
