/**
 * Group commit: many writers share one forced write. `sync()` resolves once a
 * flush that started after the call has finished, so whatever the caller
 * wrote before calling is durable. While a flush runs, every caller that
 * arrives waits for the one flush that follows it — a burst of N writers costs
 * two flushes, not N.
 */
export class GroupCommit {
  /** Flushes done (for metrics and tests). */
  flushes = 0
  private readonly flush: () => Promise<void>
  private running?: Promise<void>
  private queued?: Promise<void>

  constructor (flush: () => Promise<void>) {
    this.flush = flush
  }

  async sync (): Promise<void> {
    if (this.running == null) return this.start()
    // A flush in flight may have started before our write: the next one covers it (shared by everyone waiting).
    this.queued ??= this.running.then(() => undefined, () => undefined).then(async () => {
      this.queued = undefined
      return this.start()
    })
    return this.queued
  }

  private async start (): Promise<void> {
    const run = (async () => {
      try {
        await this.flush()
        this.flushes++
      } finally {
        this.running = undefined
      }
    })()
    this.running = run
    return run
  }
}
