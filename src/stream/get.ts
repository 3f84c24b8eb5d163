/**
 * `/dsm/get/1.0.0`: read part of a file from a replica.
 *
 *   reader → replica: { id, offset, length }
 *   replica → reader: { ok: { first, last } } | { error }, then one frame per
 *   chunk first..last:
 *     [0] chunk bytes                       a whole chunk
 *     [1] u32 firstLeaf, u32 leafCount,     only the leaves the range needs,
 *         leaf hashes (32 × leafCount),     with all the chunk's leaf hashes
 *         leaf bytes
 *
 * The reader verifies every frame against the manifest before it uses a byte
 * (a whole chunk by its hash; leaves by their hashes, which hash to the chunk
 * hash: see replica/chunk-hash.ts) and slices the range itself. A seek thus
 * moves 64 KiB leaves, not a whole 1 MiB chunk, before its first byte.
 *
 * The replica verifies each chunk as it reads it from disk too: a corrupt
 * chunk is never sent; it is reported for repair and the stream is aborted,
 * so the reader moves on to another replica.
 */
import { streamHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { pipe } from 'it-pipe'
import { peerIdFromString } from '@libp2p/peer-id'
import { Uint8ArrayList } from 'uint8arraylist'
import { CHUNK_LEAF_BYTES, MAX_CHUNK_SIZE_BYTES, MAX_CONTROL_FRAME_BYTES } from '../constants.ts'
import { ChunkNotStoredError, CorruptChunkError, FileNotFoundError, InvalidMessageError, RangeNotSatisfiableError, remoteError, toError } from '../errors.ts'
import { leafCount, verifyLeaves } from '../content/chunk-hash.ts'
import { chunkLength, chunksForRange, verifyChunk } from '../content/manifest.ts'
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { FrameReader, writeFrame } from '../wire/frames.ts'
import { GetHeaderSchema, GetRequestSchema, PROTOCOLS } from '../wire/messages.ts'
import { dialStream } from '../wire/rpc.ts'
import { answerSchema, errorFrame, frameBytesFor, unwrapAnswer } from '../wire/answer.ts'
import type { Manifest } from '../content/manifest.ts'
import type { ChunkBytes } from '../store/chunk-store.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { BufferPool } from '../util/buffer-pool.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions, Stream } from '@libp2p/interface'

const HeaderAnswerSchema = answerSchema(GetHeaderSchema)
const WHOLE = 0
const LEAVES = 1
const LEAVES_HEADER_BYTES = 9

/** Verified bytes of chunk `index`, starting `start` bytes into the chunk (0: the whole chunk). */
export interface Chunk { index: number, data: Uint8Array, start?: number }

/** What a node serving reads needs: its files' manifests and checked chunk bytes. */
export interface ChunkProvider {
  /** The manifest of a file held whole here, or undefined; `resume`: also one deleted in its grace (GetRequest.resume). */
  manifestOf(id: string, options?: { resume?: boolean }): Promise<Manifest | undefined>
  /**
   * A chunk's bytes — whole, or the leaves covering [from, to) of it — with
   * every leaf hash of the chunk; throws if missing or corrupt.
   */
  readChunk(digest: Uint8Array, range?: { from: number, to: number }): Promise<ChunkBytes>
  /** Whether the chunk is stored here (a pending copy lacks some): asked before a range is promised. */
  has?(digest: Uint8Array): boolean
  /** Keep these chunks while they are served, whatever is deleted meanwhile; returns the release. */
  hold?(digests: Uint8Array[]): () => void
}

export interface GetServerComponents {
  chunks: ChunkProvider
  status: Pick<LocalStatus, 'beginTransfer'>
  logger: Logger
  /** Called with the file bytes of every chunk frame sent (metrics). */
  onServed?: (bytes: number) => void
}

/** The leaves of a whole chunk held in memory that cover [from, to) of it (what ChunkProvider.readChunk returns). */
export function coveringLeaves (data: Uint8Array, leaves: Uint8Array, range: { from: number, to: number } | undefined, leafSize: number): ChunkBytes {
  if (range == null) return { data, start: 0, leaves }
  const start = Math.floor(range.from / leafSize) * leafSize
  const end = Math.min(data.byteLength, Math.ceil(Math.max(range.to, range.from + 1) / leafSize) * leafSize)
  return { data: data.subarray(start, end), start, leaves }
}

/** The frame for chunk `index` given the bytes read for [offset, end): whole, or the leaves read; and how many file bytes it carries. */
function chunkFrame (m: Manifest, index: number, bytes: ChunkBytes): { frame: Uint8ArrayList, bytes: number } {
  const length = chunkLength(m, index)
  if (bytes.start === 0 && bytes.data.byteLength === length) return { frame: new Uint8ArrayList(Uint8Array.of(WHOLE), bytes.data), bytes: length }
  const header = new Uint8Array(LEAVES_HEADER_BYTES)
  const view = new DataView(header.buffer)
  header[0] = LEAVES
  view.setUint32(1, bytes.start / m.leafSize)
  view.setUint32(5, leafCount(length, m.leafSize))
  return { frame: new Uint8ArrayList(header, bytes.leaves, bytes.data), bytes: bytes.data.byteLength }
}

export async function serveGet (c: GetServerComponents, stream: Stream, options: AbortOptions): Promise<void> {
  const reader = new FrameReader(stream, { maxFrameBytes: MAX_CONTROL_FRAME_BYTES })
  const endTransfer = c.status.beginTransfer()
  try {
    let plan: { manifest: Manifest, offset: number, end: number, first: number, last: number }
    try {
      const req = decodeMessage(GetRequestSchema, await reader.readRequired(options), MAX_CONTROL_FRAME_BYTES)
      const manifest = await c.chunks.manifestOf(req.id, { resume: req.resume === true })
      if (manifest == null) throw new FileNotFoundError(`this replica does not hold ${req.id}`)
      if (req.offset > manifest.size || (req.offset === manifest.size && req.length > 0)) {
        throw new RangeNotSatisfiableError(`offset ${req.offset} is past the end (${manifest.size} bytes)`)
      }
      const length = Math.min(req.length, manifest.size - req.offset)
      plan = { manifest, offset: req.offset, end: req.offset + length, ...chunksForRange(manifest, req.offset, length) }
      for (let i = plan.first; i <= plan.last && c.chunks.has != null; i++) {
        // Said up front, with its code: the asker learns this copy lacks the chunk, not that a stream broke.
        if (!c.chunks.has(manifest.chunks[i] as Uint8Array)) throw new ChunkNotStoredError(`this replica lacks chunk ${i} of ${req.id}`)
      }
    } catch (err) {
      await writeFrame(stream, encodeMessage(HeaderAnswerSchema, { error: errorFrame(toError(err)) }), options)
      await stream.close(options)
      return
    }
    const { manifest, offset, end, first, last } = plan
    const release = c.chunks.hold?.(manifest.chunks.slice(first, last + 1))
    try {
      await writeFrame(stream, encodeMessage(HeaderAnswerSchema, { ok: { first, last } }), options)
      for (let i = first; i <= last; i++) {
        const chunkStart = i * manifest.chunkSize
        const range = { from: Math.max(0, offset - chunkStart), to: Math.min(chunkLength(manifest, i), end - chunkStart) }
        const { frame, bytes } = chunkFrame(manifest, i, await c.chunks.readChunk(manifest.chunks[i] as Uint8Array, range))
        await writeFrame(stream, frame, options)
        c.onServed?.(bytes)
      }
    } finally {
      release?.()
    }
    await stream.close(options)
  } catch (err) {
    c.logger.debug({ err: toError(err).message }, 'get aborted')
    stream.abort(toError(err))
  } finally {
    reader.release()
    endTransfer()
  }
}

/** Check a chunk frame from `peer` against the manifest; returns the verified bytes. */
async function verifyFrame (manifest: Manifest, index: number, frame: Uint8Array, peer: string): Promise<Chunk> {
  const bad = (why: string): CorruptChunkError =>
    new CorruptChunkError(`replica ${peer} sent chunk ${index} of ${manifest.id.toString()} that fails verification (${why})`)
  if (frame.byteLength < 1) throw new InvalidMessageError('empty chunk frame')
  if (frame[0] === WHOLE) {
    const data = frame.subarray(1)
    if (!await verifyChunk(manifest, index, data)) throw bad('chunk hash')
    return { index, data }
  }
  if (frame[0] !== LEAVES || frame.byteLength < LEAVES_HEADER_BYTES) throw new InvalidMessageError(`unknown chunk frame kind ${frame[0] ?? '?'}`)
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  const firstLeaf = view.getUint32(1)
  const count = view.getUint32(5)
  const hashesEnd = LEAVES_HEADER_BYTES + count * 32
  if (count > MAX_CHUNK_SIZE_BYTES / CHUNK_LEAF_BYTES + 1 || frame.byteLength < hashesEnd) throw new InvalidMessageError('malformed leaf frame')
  const data = frame.subarray(hashesEnd)
  const ok = await verifyLeaves(manifest.chunks[index] as Uint8Array, frame.subarray(LEAVES_HEADER_BYTES, hashesEnd),
    chunkLength(manifest, index), firstLeaf, data, manifest.leafSize)
  if (!ok) throw bad('leaf hashes')
  return { index, data, start: firstLeaf * manifest.leafSize }
}

/** The chunk frames first..last of a get stream, as they arrive. */
async function * readFrames (reader: FrameReader, first: number, last: number, options: AbortOptions): AsyncGenerator<{ index: number, frame: Uint8Array }> {
  for (let index = first; index <= last; index++) yield { index, frame: await reader.readRequired(options) }
}

/**
 * Fetch the chunks covering [offset, offset + length) from one replica, each
 * verified against the manifest before it is yielded; the first and last may
 * come as leaves only.
 */
export async function * fetchChunks (dialer: Dialer, peer: string, manifest: Manifest, offset: number, length: number, options: AbortOptions & { resume?: boolean, pool?: BufferPool }): AsyncGenerator<Chunk> {
  const stream = await dialStream(dialer, peerIdFromString(peer), PROTOCOLS.get, options)
  // With a pool, a chunk's bytes are joined into one of its buffers: the consumer gives them back or claims them.
  const reader = new FrameReader(stream, { maxFrameBytes: frameBytesFor(MAX_CHUNK_SIZE_BYTES), ...(options.pool != null ? { pool: options.pool } : {}) })
  let done = false
  try {
    await writeFrame(stream, encodeMessage(GetRequestSchema, { id: manifest.id.toString(), offset, length, ...(options.resume === true ? { resume: true } : {}) }), options)
    const header = unwrapAnswer(decodeMessage(HeaderAnswerSchema, await reader.readRequired(options), MAX_CONTROL_FRAME_BYTES), peer.slice(-8), { prefix: true })
    const expected = chunksForRange(manifest, offset, length)
    if (header.first !== expected.first || header.last !== expected.last) {
      throw remoteError('ERR_PROTOCOL', `${peer.slice(-8)} answered the wrong chunk range`)
    }
    // The fetcher's frames → the verifier → the reader: no byte passes that failed its hash.
    yield * pipe(
      readFrames(reader, expected.first, expected.last, options),
      async function * (frames) { for await (const { index, frame } of frames) yield await verifyFrame(manifest, index, frame, peer) }
    )
    done = true
    await stream.close(options)
  } finally {
    reader.release()
    // Stopped early (the consumer left, a stall, a bad chunk): no need to read the rest.
    if (!done && stream.status === 'open') stream.abort(new Error('fetch ended early'))
  }
}

/** A get stream (chunks of one range) may take this long: a slow reader of a big range, paced by backpressure. */
export const GET_STREAM_TIMEOUT_MS = 30 * 60_000

/** `/dsm/get`: a reader asks this node (a replica) for a range of a file's chunks. */
export function getHandler (c: GetServerComponents): ProtocolHandler {
  return streamHandler(PROTOCOLS.get, async (stream) => { await serveGet(c, stream, { signal: AbortSignal.timeout(GET_STREAM_TIMEOUT_MS) }) })
}
