/**
 * Reusable read buffers. A holder serving a GET reads every chunk (1 MiB)
 * from its volume into a buffer that lives only until the socket took the
 * bytes; allocated fresh each time, those buffers are external memory that
 * drives V8 into back-to-back full mark-compacts (a perf profile of a holder
 * serving GETs: 35–40 % of the process's CPU in V8's marking and sweeping
 * threads). A pooled buffer goes back once its one consumer says it is done.
 *
 * The contract that keeps bytes from being overwritten under a reader: a
 * buffer handed out by `take` is given back at most once, by the one
 * consumer that received it, after nothing refers to it any more (the HTTP
 * sender gives back a chunk when the socket's write of it completed). A
 * buffer never given back is simply garbage-collected: the pool keeps no
 * strong reference to what is out.
 */

/** Size of each pooled buffer: a whole chunk at the default chunk size, with room for its frame's header and leaf hashes. */
export const READ_BUFFER_BYTES = 1024 * 1024 + 4096
/** Buffers kept for reuse (idle memory: this × READ_BUFFER_BYTES); a GET in flight holds ~5. */
export const READ_BUFFERS_KEPT = 16

export interface BufferPoolInit {
  bufferBytes?: number
  kept?: number
}

export class BufferPool {
  readonly bufferBytes: number
  private readonly kept: number
  private readonly free: Buffer[] = []
  /** The backing stores handed out and not yet given back. */
  private readonly out = new WeakSet<ArrayBufferLike>()
  /** Buffers handed out, and how many of them were reused ones (the tests and metrics read them). */
  readonly counters = { taken: 0, reused: 0 }

  constructor (init: BufferPoolInit = {}) {
    this.bufferBytes = init.bufferBytes ?? READ_BUFFER_BYTES
    this.kept = init.kept ?? READ_BUFFERS_KEPT
  }

  /** A buffer of `length` bytes (contents undefined): a pooled one when it fits, else a fresh one. */
  take (length: number): Buffer {
    if (length > this.bufferBytes) return Buffer.allocUnsafe(length)
    this.counters.taken++
    let buf = this.free.pop()
    if (buf != null) this.counters.reused++
    else buf = Buffer.allocUnsafeSlow(this.bufferBytes)
    this.out.add(buf.buffer)
    return buf.subarray(0, length)
  }

  /** Give back bytes that `take` handed out (a view of them will do); anything else is ignored. */
  give (bytes: Uint8Array): void {
    const backing = bytes.buffer
    if (!this.out.has(backing)) return
    this.out.delete(backing)
    if (this.free.length < this.kept) this.free.push(Buffer.from(backing, 0, this.bufferBytes))
  }

  /**
   * Take bytes out of the pool's care: a consumer that keeps them (a cache)
   * or shares them (another reader) claims them, and a later `give` of them
   * is ignored. They are garbage-collected like any buffer.
   */
  claim (bytes: Uint8Array): void {
    this.out.delete(bytes.buffer)
  }

  /** Buffers kept for reuse right now. */
  get idle (): number {
    return this.free.length
  }
}
