/**
 * A hybrid logical clock for group operations: wall-clock milliseconds that
 * never go backwards and always move past every timestamp seen. Operations on
 * a file are ordered by (ts, origin), last writer wins; because a delete is
 * stamped after the add it removes, it wins even when clocks disagree.
 */
export class HybridClock {
  private last = 0
  private readonly wall: () => number

  constructor (wall: () => number = Date.now) {
    this.wall = wall
  }

  /** A timestamp greater than any issued or observed so far (and than `after`). */
  next (after = 0): number {
    this.last = Math.max(this.wall(), this.last + 1, after + 1)
    return this.last
  }

  observe (ts: number): void {
    if (ts > this.last) this.last = ts
  }
}
