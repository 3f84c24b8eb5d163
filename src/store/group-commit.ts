/**
 * Group commit: many writers share one forced write. `sync()` resolves once a
 * flush that *started after the call* has finished, so whatever the caller
 * wrote before calling is durable. While a flush runs, every caller that
 * arrives waits for the one flush that follows it — a burst of N writers costs
 * two flushes, not N. Only one flush runs at a time.
 *
 * A failed flush is final: after a failed fsync the kernel may have dropped
 * the pages it could not write, and a later fsync that succeeds would not
 * bring them back. Every later `sync()` rejects with the first failure, so
 * nothing written before it is ever acknowledged as durable.
 */
import { DiskSyncError } from '../errors.ts'

export class GroupCommit {
  /** Flushes done (for metrics and tests). */
  flushes = 0
  private readonly flush: () => Promise<void>
  /** Flushes begun so far; the one running (if any) is number `started`. */
  private started = 0
  private running = false
  /** Callers and the flush number that releases each: the first one to begin after its call. */
  private readonly waiters: Array<{ need: number, done: PromiseWithResolvers<void> }> = []
  private failure?: DiskSyncError

  constructor (flush: () => Promise<void>) {
    this.flush = flush
  }

  /** The flush failed once: nothing is made durable here any more. */
  get failed (): DiskSyncError | undefined { return this.failure }

  /** A flush is under way or wanted. */
  get busy (): boolean { return this.running || this.waiters.length > 0 }

  async sync (): Promise<void> {
    if (this.failure != null) throw this.failure
    const done = Promise.withResolvers<void>()
    // A flush running now may have begun before our write: only the next one to begin counts.
    this.waiters.push({ need: this.started + 1, done })
    if (!this.running) this.next()
    return done.promise
  }

  private next (): void {
    this.running = true
    const id = ++this.started
    let flushed: Promise<void>
    try {
      flushed = this.flush()
    } catch (err) {
      flushed = Promise.reject(err)
    }
    flushed.then(() => {
      this.flushes++
      this.running = false
      let i = 0
      while (i < this.waiters.length) {
        const w = this.waiters[i] as { need: number, done: PromiseWithResolvers<void> }
        if (w.need <= id) { w.done.resolve(); this.waiters.splice(i, 1) } else i++
      }
      if (this.waiters.length > 0) this.next()
    }, (err: unknown) => {
      this.running = false
      this.failure ??= new DiskSyncError(`a forced write failed; nothing more is acknowledged from this file: ${(err as Error).message}`, { cause: err })
      for (const w of this.waiters.splice(0)) w.done.reject(this.failure)
    })
  }
}
