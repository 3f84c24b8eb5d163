/**
 * Frames written in one turn of the event loop, sent as one write.
 *
 * `stream.send()` hands its bytes to the muxer at once: on a busy upload
 * channel every frame of every upload (a put, a decision, an answer) was its
 * own yamux frame, its own TLS record and its own socket write — ~0.09 ms of
 * the coordinator's CPU per 4 KiB upload went to socket writes alone
 * (docs/performance.md). Frames queued here go out together at the end of the
 * turn (setImmediate: after the I/O callbacks of this poll phase, whose
 * uploads are the ones worth coalescing), in the order they were queued.
 */
import { Uint8ArrayList } from 'uint8arraylist'
import { lengthPrefixed, writeBufferEmpty } from './frames.ts'
import type { AbortOptions, MessageStream } from '@libp2p/interface'

export class FrameBatch {
  private readonly stream: MessageStream
  private pending?: Uint8ArrayList
  /** Settles when the pending frames were handed to the stream: true if it can take more at once. */
  private sent?: PromiseWithResolvers<boolean>

  constructor (stream: MessageStream) {
    this.stream = stream
  }

  /**
   * Queue one length-prefixed frame; resolves once it was handed to the
   * stream — after the stream drained, if the write filled it (bounded by
   * `signal`, or by `timeoutMs` with a timer armed only then) — and rejects if
   * the stream refused it (closed).
   */
  async write (payload: Uint8Array | Uint8ArrayList, options: AbortOptions & { timeoutMs?: number } = {}): Promise<void> {
    if (this.pending == null || this.sent == null) {
      this.pending = new Uint8ArrayList()
      this.sent = Promise.withResolvers<boolean>()
      setImmediate(() => { this.flush() })
    }
    this.pending.append(lengthPrefixed(payload))
    if (await this.sent.promise) return
    // The timer only when the write must wait: fire-and-forget frames (a decision, an answer) each made a
    // timeout signal that fired, unheard, seconds later — a timer and an AbortError per frame.
    const signal = options.signal ?? (options.timeoutMs != null ? AbortSignal.timeout(options.timeoutMs) : undefined)
    await writeBufferEmpty(this.stream, signal != null ? { signal } : {})
  }

  private flush (): void {
    const list = this.pending
    const sent = this.sent
    this.pending = undefined
    this.sent = undefined
    if (list == null || sent == null) return
    try {
      sent.resolve(this.stream.send(list))
    } catch (err) {
      sent.reject(err)
    }
  }
}
