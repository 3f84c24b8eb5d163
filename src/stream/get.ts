/**
 * `/dsm/get/1.0.0`: read part of a file from a replica.
 *
 *   reader → replica: { id, offset, length }
 *   replica → reader: { ok: { first, last } } | { error }, then the raw chunk
 *   frames first..last (whole chunks: the reader verifies each against the
 *   manifest before it uses a byte, and slices the range itself)
 *
 * The replica verifies each chunk as it reads it from disk too: a corrupt
 * chunk is never sent; it is reported for repair and the stream is aborted,
 * so the reader moves on to another replica.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { z } from 'zod'
import { FRAME_OVERHEAD_BYTES, MAX_CHUNK_SIZE_BYTES, MAX_CONTROL_FRAME_BYTES } from '../constants.ts'
import { CorruptChunkError, FileNotFoundError, RangeNotSatisfiableError, remoteError, toError } from '../errors.ts'
import { chunksForRange, verifyChunk } from '../replica/manifest.ts'
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { FrameReader, writeFrame } from '../wire/frames.ts'
import { GetHeaderSchema, GetRequestSchema, PROTOCOLS } from '../wire/messages.ts'
import { ErrorFrameSchema, errorFrame } from '../wire/rpc.ts'
import type { Manifest } from '../replica/manifest.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../node/local-status.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions, Stream } from '@libp2p/interface'

const HeaderAnswerSchema = z.object({ ok: GetHeaderSchema.optional(), error: ErrorFrameSchema.optional() })

export interface Chunk { index: number, data: Uint8Array }

export interface GetServerComponents {
  store: LocalStore
  status: LocalStatus
  manifestOf: (id: string) => Promise<Manifest | undefined>
  logger: Logger
  /** Called with the size of every chunk sent (metrics). */
  onServed?: (bytes: number) => void
}

export async function serveGet (c: GetServerComponents, stream: Stream, options: AbortOptions): Promise<void> {
  const reader = new FrameReader(stream, { maxFrameBytes: MAX_CONTROL_FRAME_BYTES })
  const endTransfer = c.status.beginTransfer()
  try {
    let chunks: { first: number, last: number, digests: Uint8Array[] }
    try {
      const req = decodeMessage(GetRequestSchema, await reader.readRequired(options), MAX_CONTROL_FRAME_BYTES)
      const manifest = c.store.index.get(req.id)?.state === 'present' ? await c.manifestOf(req.id) : undefined
      if (manifest == null) throw new FileNotFoundError(`this replica does not hold ${req.id}`)
      if (req.offset > manifest.size || (req.offset === manifest.size && req.length > 0)) {
        throw new RangeNotSatisfiableError(`offset ${req.offset} is past the end (${manifest.size} bytes)`)
      }
      const length = Math.min(req.length, manifest.size - req.offset)
      chunks = { ...chunksForRange(manifest, req.offset, length), digests: manifest.chunks }
    } catch (err) {
      await writeFrame(stream, encodeMessage(HeaderAnswerSchema, { error: errorFrame(toError(err)) }), options)
      await stream.close(options)
      return
    }
    await writeFrame(stream, encodeMessage(HeaderAnswerSchema, { ok: { first: chunks.first, last: chunks.last } }), options)
    for (let i = chunks.first; i <= chunks.last; i++) {
      const data = await c.store.readChunk(chunks.digests[i] as Uint8Array)
      await writeFrame(stream, data, options)
      c.onServed?.(data.byteLength)
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

/**
 * Fetch chunks covering [offset, offset + length) from one replica, each
 * verified against the manifest before it is yielded.
 */
export async function * fetchChunks (dialer: Dialer, peer: string, manifest: Manifest, offset: number, length: number, options: AbortOptions): AsyncGenerator<Chunk> {
  const stream = await dialer.dialProtocol(peerIdFromString(peer), PROTOCOLS.get, { ...options, negotiateFully: false })
  const reader = new FrameReader(stream, { maxFrameBytes: MAX_CHUNK_SIZE_BYTES + FRAME_OVERHEAD_BYTES })
  let done = false
  try {
    await writeFrame(stream, encodeMessage(GetRequestSchema, { id: manifest.id.toString(), offset, length }), options)
    const header = decodeMessage(HeaderAnswerSchema, await reader.readRequired(options), MAX_CONTROL_FRAME_BYTES)
    if (header.error != null) throw remoteError(header.error.code, `${peer.slice(-8)}: ${header.error.message}`)
    const expected = chunksForRange(manifest, offset, length)
    if (header.ok == null || header.ok.first !== expected.first || header.ok.last !== expected.last) {
      throw remoteError('ERR_PROTOCOL', `${peer.slice(-8)} answered the wrong chunk range`)
    }
    for (let index = expected.first; index <= expected.last; index++) {
      const data = await reader.readRequired(options)
      if (!await verifyChunk(manifest, index, data)) {
        throw new CorruptChunkError(`replica ${peer} sent chunk ${index} of ${manifest.id.toString()} that fails verification`)
      }
      yield { index, data }
    }
    done = true
    await stream.close(options)
  } finally {
    reader.release()
    // Stopped early (the consumer left, a stall, a bad chunk): no need to read the rest.
    if (!done && stream.status === 'open') stream.abort(new Error('fetch ended early'))
  }
}
