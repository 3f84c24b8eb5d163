/**
 * Varint length-prefixed frames on a libp2p stream, with backpressure in
 * both directions.
 *
 * Writing waits for `drain` whenever the stream's write buffer is full.
 * Reading pauses the stream once `highWaterBytes` are buffered and resumes
 * when the reader catches up: paused, a yamux stream withholds window
 * updates, so a slow consumer (a disk, an HTTP client) slows the sender
 * instead of growing a buffer. `@libp2p/utils`' lpStream never pauses, so a
 * slow reader there has its stream reset at 4 MiB.
 */
import { Uint8ArrayList } from 'uint8arraylist'
import { encode as encodeVarint } from 'uint8-varint'
import { InvalidMessageError, MessageTooLargeError, toError } from '../errors.ts'
import type { BufferPool } from '../util/buffer-pool.ts'
import type { AbortOptions, MessageStream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'

/** yamux's largest stream window (its default; dsm sets less): data already in flight when we pause. */
const MAX_IN_FLIGHT_BYTES = 16 * 1024 * 1024

export interface FrameReaderInit {
  maxFrameBytes: number
  /** Pause the stream above this many buffered bytes (default: two max frames). */
  highWaterBytes?: number
  /**
   * Join big frames (a chunk arrives as many TLS records) into buffers of this
   * pool rather than fresh ones; whoever ends up with a frame gives it back or
   * claims it (../util/buffer-pool.ts).
   */
  pool?: BufferPool
}

/** Frames at least this big are joined into a pooled buffer (smaller ones are not worth one). */
const POOLED_FRAME_MIN_BYTES = 256 * 1024

/** Decode a varint at the start of `buf`: [value, length] or undefined if incomplete. */
function readVarint (buf: Uint8ArrayList): [number, number] | undefined {
  let value = 0
  for (let i = 0; i < Math.min(buf.byteLength, 8); i++) {
    const b = buf.get(i)
    value += (b & 0x7f) * 2 ** (7 * i)
    if ((b & 0x80) === 0) return [value, i + 1]
  }
  if (buf.byteLength >= 8) throw new InvalidMessageError('frame length varint is longer than 8 bytes')
  return undefined
}

export class FrameReader {
  private readonly stream: MessageStream
  private readonly maxFrameBytes: number
  private readonly highWater: number
  private readonly pool?: BufferPool
  private readonly buf = new Uint8ArrayList()
  private ended = false
  private paused = false
  private endWhenDelivered = false
  private error?: Error
  private wake?: PromiseWithResolvers<void>

  constructor (stream: MessageStream, init: FrameReaderInit) {
    this.stream = stream
    this.maxFrameBytes = init.maxFrameBytes
    this.highWater = init.highWaterBytes ?? 2 * init.maxFrameBytes + 64 * 1024
    if (init.pool != null) this.pool = init.pool
    // While paused, up to one yamux window may still arrive: let it queue rather than reset.
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, MAX_IN_FLIGHT_BYTES + this.highWater)
    stream.addEventListener('message', this.onMessage)
    // 'end': the remote closed AND everything it sent was delivered (not merely
    // 'remoteCloseWrite', which fires while a paused stream still holds data).
    stream.addEventListener('end', this.onEnd)
    stream.addEventListener('remoteCloseWrite', this.onRemoteCloseWrite)
    stream.addEventListener('close', this.onClose)
    // A stream can be 'ended' yet still hold bytes (multistream-select hands back
    // what came with its answer after 'end' fired): end once they are delivered.
    if (stream.readableEnded) {
      if (stream.readBufferLength === 0) this.ended = true
      else this.endWhenDelivered = true
    }
  }

  /** The next frame, or null when the remote closed cleanly between frames. */
  async read (options: AbortOptions = {}): Promise<Uint8Array | null> {
    for (;;) {
      const frame = this.tryFrame()
      if (frame != null) return frame
      if (this.error != null) throw this.error
      if (this.ended) {
        if (this.buf.byteLength === 0) return null
        throw new InvalidMessageError(`stream ended inside a frame (${this.buf.byteLength} bytes left)`)
      }
      // No whole frame buffered: we need more bytes whatever the water mark says
      // (a frame bigger than half the mark would otherwise never complete). Resuming
      // may deliver buffered data at once, so look again before waiting.
      if (this.paused) {
        this.resume()
        continue
      }
      await this.waitForData(options.signal)
    }
  }

  /** True when read() would return at once (a whole frame is buffered, or the stream ended). */
  ready (): boolean {
    const header = readVarint(this.buf)
    return this.ended || this.error != null || (header != null && this.buf.byteLength >= header[0] + header[1])
  }

  /** Like read(), but end of stream is an error. */
  async readRequired (options: AbortOptions = {}): Promise<Uint8Array> {
    const frame = await this.read(options)
    if (frame == null) throw new InvalidMessageError('stream ended before the expected frame')
    return frame
  }

  /** Stop listening (the stream itself is left as it is). */
  release (): void {
    this.stream.removeEventListener('message', this.onMessage)
    this.stream.removeEventListener('end', this.onEnd)
    this.stream.removeEventListener('remoteCloseWrite', this.onRemoteCloseWrite)
    this.stream.removeEventListener('close', this.onClose)
  }

  private tryFrame (): Uint8Array | undefined {
    const header = readVarint(this.buf)
    if (header == null) return undefined
    const [length, headerBytes] = header
    if (length > this.maxFrameBytes) {
      const err = new MessageTooLargeError(`frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`)
      this.stream.abort(err)
      throw err
    }
    if (this.buf.byteLength < headerBytes + length) return undefined
    const frame = this.pool != null && length >= POOLED_FRAME_MIN_BYTES && length <= this.pool.bufferBytes
      ? copyOut(this.buf, headerBytes, length, this.pool.take(length))
      : this.buf.subarray(headerBytes, headerBytes + length)
    this.buf.consume(headerBytes + length)
    this.resumeIfLow()
    return frame
  }

  private resumeIfLow (): void {
    if (this.buf.byteLength < this.highWater / 2) this.resume()
  }

  private resume (): void {
    if (!this.paused) return
    this.paused = false
    try {
      this.stream.resume()
    } catch {
      // Already closed for reading: whatever it held was delivered or discarded with the close.
    }
  }

  private async waitForData (signal?: AbortSignal): Promise<void> {
    this.wake = Promise.withResolvers<void>()
    if (signal == null) return this.wake.promise
    signal.throwIfAborted()
    const onAbort = (): void => { this.wake?.reject(toError(signal.reason)) }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      await this.wake.promise
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  private readonly onMessage = (evt: StreamMessageEvent): void => {
    this.buf.append(evt.data)
    if (this.endWhenDelivered && this.stream.readBufferLength === 0) this.ended = true
    if (this.buf.byteLength > this.highWater && !this.paused && !this.ended) {
      this.paused = true
      this.stream.pause()
    }
    this.wake?.resolve()
  }

  private readonly onEnd = (): void => {
    this.ended = true
    this.wake?.resolve()
  }

  /** The remote is done sending: let what the paused stream still holds come through, then 'end' follows. */
  private readonly onRemoteCloseWrite = (): void => {
    this.resume()
    if (this.stream.readBufferLength === 0) this.ended = true
    this.wake?.resolve()
  }

  private readonly onClose = (evt: StreamCloseEvent): void => {
    if (evt.error != null) this.error = evt.error
    this.resume()
    if (evt.error != null || this.stream.readBufferLength === 0) this.ended = true
    this.wake?.resolve()
  }
}

/** Copy `length` bytes at `offset` of a list into `into` (no intermediate join). */
function copyOut (list: Uint8ArrayList, offset: number, length: number, into: Uint8Array): Uint8Array {
  let skip = offset
  let at = 0
  for (const piece of list) {
    if (at === length) break
    if (skip >= piece.byteLength) {
      skip -= piece.byteLength
      continue
    }
    const part = piece.subarray(skip, skip + Math.min(piece.byteLength - skip, length - at))
    into.set(part, at)
    at += part.byteLength
    skip = 0
  }
  return into
}

/**
 * Write one frame. When the stream cannot take it all at once, wait until its
 * write buffer is empty again ('idle'), so at most one frame beyond the yamux
 * window is ever queued per stream.
 *
 * Not `stream.onDrain()`: @libp2p/utils 7.4's AbstractMessageStream keeps the
 * promise the first 'drain' resolved and hands it out again, so from the
 * second wait on it returns at once and a slow reader lets the sender's write
 * buffer grow by everything it produces (found by heap snapshot: hundreds of
 * MiB of chunk frames queued for the slowest replica).
 */
export async function writeFrame (stream: MessageStream, payload: Uint8Array | Uint8ArrayList, options: AbortOptions = {}): Promise<void> {
  if (sendFrame(stream, payload)) return
  await writeBufferEmpty(stream, options)
}

/** Queue one length-prefixed frame; false when the stream's write buffer is full (wait before the next). */
function sendFrame (stream: MessageStream, payload: Uint8Array | Uint8ArrayList): boolean {
  return stream.send(lengthPrefixed(payload))
}

/** `payload` as one frame: its varint length, then its bytes (not copied). */
export function lengthPrefixed (payload: Uint8Array | Uint8ArrayList): Uint8ArrayList {
  return new Uint8ArrayList(encodeVarint(payload.byteLength), payload)
}

/** Resolves once the stream handed its whole write buffer to the muxer; rejects if it closes or the signal aborts. */
export async function writeBufferEmpty (stream: MessageStream, options: AbortOptions = {}): Promise<void> {
  options.signal?.throwIfAborted()
  if (stream.writeBufferLength === 0) return
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      stream.removeEventListener('idle', onIdle)
      stream.removeEventListener('close', onClose)
      options.signal?.removeEventListener('abort', onAbort)
    }
    const onIdle = (): void => { done(); resolve() }
    const onClose = (evt: StreamCloseEvent): void => { done(); reject(evt.error ?? new Error('the stream closed before its data was sent')) }
    const onAbort = (): void => { done(); reject(toError(options.signal?.reason)) }
    stream.addEventListener('idle', onIdle)
    stream.addEventListener('close', onClose)
    options.signal?.addEventListener('abort', onAbort)
  })
}
