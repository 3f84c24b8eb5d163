/**
 * Fuzzing FrameReader: varint length-prefixed frames delivered in random pieces, ends and resets, on a real AbstractMessageStream, against a reference model.
 *
 * Fuzzing (fast-check, one fixed seed, bounded runs): every wire decoder and
 * the HTTP surface fed random and mutated input. The properties: no crash, no
 * hang, no unbounded memory, and a clean, named error each time; the HTTP API
 * never answers 500 for client input, every error answer is `{ code, message }`
 * with the status its code maps to, the node stays up and its data dir gains
 * no stray files.
 *
 * Every bug these properties found is fixed; its shrunk counterexample stays
 * pinned in `examples` (and described in a comment marked REGRESSION), so the
 * bug cannot come back unnoticed.
 */
import fc from 'fast-check'
import { toString as toHex } from 'uint8arrays/to-string'
import { describe, expect, it } from 'vitest'
import { FrameReader } from '../../src/wire/frames.ts'
import { HandStream, concat, mutatedBytes, runs, varint, tick, errName } from '../helpers/fuzz.ts'

type StreamEnd = 'closeWrite' | 'transportClosed' | 'reset' | 'transportError'

interface Delivery {
  bytes: Uint8Array
  /** Where the bytes are cut into messages. */
  cuts: number[]
  /** After which message the producer yields to the event loop. */
  yields: boolean[]
  end: StreamEnd
  /** The consumer yields to the event loop after every frame (so the reader pauses the stream). */
  slowReader: boolean
  maxFrameBytes: number
  highWaterBytes?: number
}

interface ReadResult { frames: Uint8Array[], outcome: 'end' | 'hang' | Error, stream: HandStream }

async function runReader (d: Delivery): Promise<ReadResult> {
  const stream = new HandStream()
  const reader = new FrameReader(stream, { maxFrameBytes: d.maxFrameBytes, ...(d.highWaterBytes != null ? { highWaterBytes: d.highWaterBytes } : {}) })
  const cuts = [...new Set(d.cuts.map(c => c % (d.bytes.byteLength + 1)))].sort((a, b) => a - b)
  const pieces: Uint8Array[] = []
  let from = 0
  for (const cut of [...cuts, d.bytes.byteLength]) { pieces.push(d.bytes.slice(from, cut)); from = cut }
  const producer = (async () => {
    for (const [i, piece] of pieces.entries()) {
      if (stream.readStatus === 'closed' || stream.status !== 'open') break
      stream.onData(piece)
      if (d.yields[i % Math.max(1, d.yields.length)] === true) await tick()
    }
    if (stream.status !== 'open') return
    if (d.end === 'closeWrite') stream.onRemoteCloseWrite()
    else if (d.end === 'transportClosed') stream.onTransportClosed()
    else if (d.end === 'reset') stream.onRemoteReset()
    else stream.onTransportClosed(new Error('transport failed'))
  })()
  const frames: Uint8Array[] = []
  const signal = AbortSignal.timeout(1000)
  const consumer = (async (): Promise<ReadResult['outcome']> => {
    for (;;) {
      let frame: Uint8Array | null
      try {
        frame = await reader.read({ signal })
      } catch (err) {
        return signal.aborted ? 'hang' : err instanceof Error ? err : new Error(`non-Error thrown: ${String(err)}`)
      }
      if (frame == null) return 'end'
      frames.push(frame.slice())
      if (d.slowReader) await tick()
    }
  })()
  const [, outcome] = await Promise.all([producer, consumer])
  reader.release()
  return { frames, outcome, stream }
}

type Tail = 'clean' | 'partial' | 'too-large' | 'bad-varint'

/** Reference framing: unsigned LEB128 length (at most 8 bytes), then that many bytes. */
function modelFrames (bytes: Uint8Array, maxFrameBytes: number): { frames: Uint8Array[], tail: Tail } {
  const frames: Uint8Array[] = []
  let pos = 0
  for (;;) {
    if (pos === bytes.byteLength) return { frames, tail: 'clean' }
    let length = 0
    let headerBytes = 0
    for (let i = 0; i < 8 && pos + i < bytes.byteLength; i++) {
      const b = bytes[pos + i] as number
      length += (b & 0x7f) * 2 ** (7 * i)
      if ((b & 0x80) === 0) { headerBytes = i + 1; break }
    }
    if (headerBytes === 0) return { frames, tail: bytes.byteLength - pos >= 8 ? 'bad-varint' : 'partial' }
    if (length > maxFrameBytes) return { frames, tail: 'too-large' }
    if (pos + headerBytes + length > bytes.byteLength) return { frames, tail: 'partial' }
    frames.push(bytes.slice(pos + headerBytes, pos + headerBytes + length))
    pos += headerBytes + length
  }
}

function encodeFrames (frames: Uint8Array[]): Uint8Array {
  return concat(frames.flatMap(f => [varint(f.byteLength), f]))
}

function deliveryArb (bytesArb: (maxFrameBytes: number) => fc.Arbitrary<Uint8Array>, opts: { slow: boolean, ends: StreamEnd[], smallHighWater: boolean }): fc.Arbitrary<Delivery> {
  return fc.integer({ min: 0, max: 48 }).chain(maxFrameBytes => fc.record({
    bytes: bytesArb(maxFrameBytes),
    cuts: fc.array(fc.nat(), { maxLength: 12 }),
    yields: fc.array(fc.boolean(), { maxLength: 12 }),
    end: fc.constantFrom(...opts.ends),
    slowReader: opts.slow ? fc.boolean() : fc.constant(false),
    maxFrameBytes: fc.constant(maxFrameBytes),
    highWaterBytes: opts.smallHighWater ? fc.integer({ min: 1, max: 64 }) : fc.constant(1 << 20)
  }))
}

const validFramesArb = (maxFrameBytes: number): fc.Arbitrary<Uint8Array> =>
  fc.array(fc.uint8Array({ maxLength: maxFrameBytes }), { maxLength: 10 }).map(encodeFrames)

const anyStreamBytesArb = (maxFrameBytes: number): fc.Arbitrary<Uint8Array> => fc.oneof(
  fc.uint8Array({ maxLength: 160 }),
  validFramesArb(maxFrameBytes).chain(mutatedBytes),
  // A valid run, then a header claiming more than the limit (or a long varint).
  fc.tuple(validFramesArb(maxFrameBytes), fc.constantFrom(varint(maxFrameBytes + 1), varint(2 ** 31), varint(2 ** 49), new Uint8Array(9).fill(0x80), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])), fc.uint8Array({ maxLength: 20 }))
    .map(([valid, head, rest]) => concat([valid, head, rest]))
)

/** What a clean end of `bytes` must give: every frame, then null or the named error. */
function expectCleanEnd (d: Delivery, r: ReadResult): void {
  const model = modelFrames(d.bytes, d.maxFrameBytes)
  expect(r.outcome).not.toBe('hang')
  expect(r.frames.map(f => toHex(f, 'base16'))).toEqual(model.frames.map(f => toHex(f, 'base16')))
  const expected = { clean: 'end', partial: 'InvalidMessageError', 'bad-varint': 'InvalidMessageError', 'too-large': 'MessageTooLargeError' }[model.tail]
  expect(r.outcome === 'end' ? 'end' : errName(r.outcome)).toBe(expected)
  // An oversized frame aborts the stream (the sender must not go on sending), unless it is closed already.
  if (model.tail === 'too-large' && d.end === 'closeWrite') expect(r.stream.status).toBe('aborted')
}

describe('fuzz: FrameReader (varint length-prefixed frames on a real AbstractMessageStream)', () => {
  it('frames come out exactly, whatever the message boundaries, then null at a clean end (no backpressure)', async () => {
    await fc.assert(fc.asyncProperty(deliveryArb(validFramesArb, { slow: false, ends: ['closeWrite', 'transportClosed'], smallHighWater: false }), async (d) => {
      expectCleanEnd(d, await runReader(d))
    }), runs(600))
  })

  it('arbitrary bytes: the model\'s frames, then null, InvalidMessageError (truncated) or MessageTooLargeError (oversized), never a hang', async () => {
    await fc.assert(fc.asyncProperty(deliveryArb(anyStreamBytesArb, { slow: false, ends: ['closeWrite', 'transportClosed'], smallHighWater: false }), async (d) => {
      expectCleanEnd(d, await runReader(d))
    }), runs(800))
  })

  it('a reset or a failed transport is never reported as a clean end, and frames before it are exact', async () => {
    await fc.assert(fc.asyncProperty(deliveryArb(anyStreamBytesArb, { slow: true, ends: ['reset', 'transportError'], smallHighWater: true }), async (d) => {
      const r = await runReader(d)
      expect(r.outcome).not.toBe('hang')
      expect(r.outcome).not.toBe('end')
      const model = modelFrames(d.bytes, d.maxFrameBytes)
      expect(r.frames.map(f => toHex(f, 'base16'))).toEqual(model.frames.slice(0, r.frames.length).map(f => toHex(f, 'base16')))
    }), runs(600))
  })

  // REGRESSION (fixed; was: src/wire/frames.ts, FrameReader.resumeIfLow): the reader resumes a paused stream only once it
  // holds less than highWaterBytes / 2. When the bytes it holds are the start of one frame larger than
  // that, no frame can complete and nothing resumes the stream: read() waits forever (a deadlock, ended
  // only by the caller's timeout). The default highWaterBytes (2 × max + 64 KiB) avoids it, but
  // serveReplicate (src/replica/replicate.ts) sets highWaterBytes = 2 × (4 MiB + 64 KiB) with frames up
  // to MAX_MANIFEST_BYTES: a commit frame over ~4 MiB (a manifest of ~120 000 chunks: a file over
  // ~120 GiB at 1 MiB chunks, or ~120 MiB with --chunk-size 1024) can stall replication until the 30 s
  // idle timeout, so such an upload fails. Shrunk: frames [[0, 0]] (bytes 02 00 00) delivered as
  // 02 00 | 00, maxFrameBytes 30, highWaterBytes 1 → the first read() never returns.
  // Fix: in read(), resume a paused stream before waiting for data (the reader cannot progress without
  // it), or clamp highWaterBytes to at least 2 × (maxFrameBytes + 8).
  it('a reader that is not read pauses the stream above highWaterBytes (bounded memory), and reading drains it without a deadlock', async () => {
    const arb = fc.integer({ min: 0, max: 48 }).chain(maxFrameBytes => fc.record({
      frames: fc.array(fc.uint8Array({ maxLength: maxFrameBytes }), { maxLength: 12 }),
      cuts: fc.array(fc.nat(), { maxLength: 16 }),
      maxFrameBytes: fc.constant(maxFrameBytes),
      highWaterBytes: fc.integer({ min: 1, max: 100 })
    }))
    await fc.assert(fc.asyncProperty(arb, async ({ frames, cuts, maxFrameBytes, highWaterBytes }) => {
      const bytes = encodeFrames(frames)
      const stream = new HandStream()
      const reader = new FrameReader(stream, { maxFrameBytes, highWaterBytes })
      let dispatched = 0
      stream.addEventListener('message', (evt) => { dispatched += evt.data.byteLength })
      const points = [...new Set(cuts.map(c => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)
      let from = 0
      let largest = 0
      for (const to of [...points, bytes.byteLength]) {
        const piece = bytes.slice(from, to)
        from = to
        largest = Math.max(largest, piece.byteLength)
        stream.onData(piece)
        // Once past the high-water mark the stream is paused: what the reader holds stays bounded.
        expect(dispatched).toBeLessThanOrEqual(highWaterBytes + largest)
        if (dispatched > highWaterBytes) expect(stream.readStatus).toBe('paused')
      }
      const signal = AbortSignal.timeout(1000)
      for (const frame of frames) expect(toHex(await reader.read({ signal }) ?? new Uint8Array([0xde, 0xad]), 'base16')).toBe(toHex(frame, 'base16'))
      // Everything was consumed: the stream is flowing again.
      expect(stream.readStatus).toBe('readable')
      reader.release()
    }), { ...runs(300), examples: [[{ frames: [new Uint8Array([0, 0])], cuts: [2], maxFrameBytes: 30, highWaterBytes: 1 }]] })
  })

  // REGRESSION (fixed; was: src/wire/frames.ts, FrameReader.onEnd / resumeIfLow): once the reader has paused the stream
  // (more than highWaterBytes buffered), a 'remoteCloseWrite' that arrives while the stream still holds
  // paused data sets `ended`, and resumeIfLow() then never calls stream.resume() (`if (!this.ended)`),
  // so the data the stream buffered while paused is never delivered: read() returns null (a silent
  // truncation that looks like a clean end) or throws "stream ended inside a frame".
  // Shrunk: maxFrameBytes 0, highWaterBytes 1, bytes [0, 0, 0] (three empty frames) in three messages,
  // then onRemoteCloseWrite(): the reader yields two frames, then null.
  it('with backpressure (a slow reader that pauses the stream), frames still come out exactly before a clean end', async () => {
    const shrunk: Delivery = { bytes: new Uint8Array([0, 0, 0]), cuts: [1, 2], yields: [], end: 'closeWrite', slowReader: false, maxFrameBytes: 0, highWaterBytes: 1 }
    await fc.assert(fc.asyncProperty(deliveryArb(anyStreamBytesArb, { slow: true, ends: ['closeWrite', 'transportClosed'], smallHighWater: true }), async (d) => {
      expectCleanEnd(d, await runReader(d))
    }), { ...runs(300), examples: [[shrunk]] })
  })
})

// ==== manifests, file IDs, leaf verification =======================================
