/**
 * A background pass run every `intervalMs` (and whenever kicked), one at a
 * time and owned: `stop()` aborts the pass under way and waits for it. A
 * pass that fails is reported (unless stopping made it fail) and the next
 * one runs on time. Whether a pass has work (the node's state, whose turn
 * it is) is the pass's own first check.
 */
export class Periodic {
  private readonly intervalMs: number
  private readonly pass: (signal: AbortSignal) => Promise<void>
  private readonly onError: (err: Error) => void
  private timer?: ReturnType<typeof setInterval>
  private controller?: AbortController
  private running?: Promise<void>

  constructor (intervalMs: number, pass: (signal: AbortSignal) => Promise<void>, onError: (err: Error) => void) {
    this.intervalMs = intervalMs
    this.pass = pass
    this.onError = onError
  }

  start (): void {
    if (this.timer != null) return
    this.controller = new AbortController()
    this.timer = setInterval(() => { this.kick() }, this.intervalMs)
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    this.controller?.abort()
    await this.running
  }

  /** Run a pass now, unless one is under way or the task is stopped. */
  kick (): void {
    const signal = this.controller?.signal
    if (signal == null || signal.aborted || this.running != null) return
    this.running = this.pass(signal)
      .catch((err: unknown) => { if (!signal.aborted) this.onError(err instanceof Error ? err : new Error(String(err))) })
      .finally(() => { this.running = undefined })
  }
}
