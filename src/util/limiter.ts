/**
 * At most `concurrency` tasks run at once; up to `maxWaiting` more wait for a
 * slot, in order. A waiting task leaves on its signal, or when the limiter is
 * cleared (a stopping node).
 *
 * Written for the upload path rather than @libp2p/utils' Queue: that queue
 * gives every task an AbortController, a random id, a raced signal and, on
 * settling, a fresh AbortError with a captured stack — measured at ~5 % of a
 * 4 KiB upload's CPU on the coordinator (docs/performance.md). A slot here is
 * a counter and, only when full, a waiter.
 */
import { UnavailableError } from '../errors.ts'
import type { AbortOptions } from '@libp2p/interface'

interface Waiter { start: () => void, fail: (err: unknown) => void }

export class Limiter {
  private readonly concurrency: number
  private readonly maxWaiting: number
  private running = 0
  private readonly waiting: Waiter[] = []

  constructor (concurrency: number, maxWaiting: number) {
    this.concurrency = concurrency
    this.maxWaiting = maxWaiting
  }

  /** Tasks running and waiting. */
  get size (): number {
    return this.running + this.waiting.length
  }

  /** Run `fn` once a slot is free (throws UnavailableError when too many wait already). */
  async run<T> (fn: () => Promise<T>, options: AbortOptions = {}): Promise<T> {
    if (this.running < this.concurrency) this.running++
    else await this.slot(options)
    try {
      return await fn()
    } finally {
      // The slot passes to the next waiter as it is: `running` stays the same.
      const next = this.waiting.shift()
      if (next != null) next.start()
      else this.running--
    }
  }

  /** Fail every waiting task with `err` (running ones finish). */
  clear (err: Error): void {
    for (const w of this.waiting.splice(0)) w.fail(err)
  }

  private async slot (options: AbortOptions): Promise<void> {
    if (this.waiting.length >= this.maxWaiting) throw new UnavailableError('too many uploads in progress; retry later')
    options.signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const signal = options.signal
      const onAbort = (): void => {
        const i = this.waiting.indexOf(waiter)
        if (i >= 0) this.waiting.splice(i, 1)
        reject(signal?.reason)
      }
      const waiter: Waiter = {
        start: () => { signal?.removeEventListener('abort', onAbort); resolve() },
        fail: (err) => { signal?.removeEventListener('abort', onAbort); reject(err) }
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiting.push(waiter)
    })
  }
}
