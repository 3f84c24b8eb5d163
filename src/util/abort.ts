/** Small helpers for cancellable work. */
import { TimeoutError, toError } from '../errors.ts'

/** AbortSignal.any over the signals that are set. */
export function anySignal (...signals: Array<AbortSignal | undefined>): AbortSignal {
  const set = signals.filter((s): s is AbortSignal => s != null)
  // AbortSignal.any makes a dependent signal that its sources track until it is collected: not for one source.
  return set.length === 1 ? set[0] as AbortSignal : AbortSignal.any(set)
}

/**
 * A signal that aborts once `ms` pass without a call to `touch()`: the
 * timeout of a transfer that may run for minutes as long as bytes move.
 */
export class IdleTimeout {
  private readonly controller = new AbortController()
  private readonly ms: number
  private readonly what: string
  private timer: ReturnType<typeof setTimeout>
  readonly signal: AbortSignal

  constructor (ms: number, what: string, parent?: AbortSignal) {
    this.ms = ms
    this.what = what
    this.signal = anySignal(this.controller.signal, parent)
    this.timer = setTimeout(this.fire, ms)
  }

  touch (): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(this.fire, this.ms)
  }

  clear (): void {
    clearTimeout(this.timer)
  }

  private readonly fire = (): void => {
    this.controller.abort(new TimeoutError(`${this.what}: nothing happened for ${this.ms} ms`))
  }
}

/** Reject when `signal` aborts, else settle like `promise`. */
export async function raceSignal<T> (promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal == null) return promise
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(toError(signal.reason)) }
      signal.addEventListener('abort', onAbort, { once: true })
    })])
  } finally {
    if (onAbort != null) signal.removeEventListener('abort', onAbort)
  }
}
