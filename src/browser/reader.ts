/**
 * How a browser node reads a file: chunk by chunk, a few ahead of the
 * player, each from another browser that holds it when there is one (that is
 * the point: storage nodes carry less of the viewing load), else from a
 * storage replica. Every chunk is verified against the manifest by
 * fetchChunks before its bytes are used; a peer whose bytes fail verification
 * is dropped for the rest of the session. Chunks land in the node's cache,
 * from which it also serves other browsers.
 */
import { BROWSER_READ_AHEAD_CHUNKS, STALL_TIMEOUT_MS } from '../constants.ts'
import { UnavailableError, toError } from '../errors.ts'
import { chunkLength, chunksForRange } from '../content/manifest.ts'
import { fetchChunks } from '../stream/get.ts'
import { IdleTimeout, raceSignal } from '../util/abort.ts'
import type { Manifest } from '../content/manifest.ts'
import type { ChunkCache } from '../stream/chunk-cache.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions } from '@libp2p/interface'

export type SourceKind = 'peer' | 'storage'

export interface ReadContext {
  dialer: Dialer
  cache: ChunkCache
  /** Browsers known to hold chunk `index` (connected ones first). */
  peersWith: (index: number) => string[]
  /** Storage replicas of the file, best first. */
  storage: () => string[]
  /** Peers caught sending bad bytes: never asked again in this session. */
  banned: Set<string>
  onChunk: (kind: SourceKind, peer: string, bytes: number) => void
  onRejected: (peer: string, err: Error) => void
}

async function fetchOne (ctx: ReadContext, manifest: Manifest, index: number): Promise<Uint8Array> {
  const candidates: Array<[SourceKind, string]> = [
    ...ctx.peersWith(index).map(p => ['peer', p] as [SourceKind, string]),
    ...ctx.storage().map(p => ['storage', p] as [SourceKind, string])
  ].filter(([, p]) => !ctx.banned.has(p))
  let last: Error | undefined
  for (const [kind, peer] of candidates) {
    const stall = new IdleTimeout(STALL_TIMEOUT_MS, `${kind} ${peer.slice(-8)}`)
    try {
      // eslint-disable-next-line no-unreachable-loop -- the first chunk is the answer; for-await then closes the stream
      for await (const chunk of fetchChunks(ctx.dialer, peer, manifest, index * manifest.chunkSize, chunkLength(manifest, index), { signal: stall.signal })) {
        ctx.onChunk(kind, peer, chunk.data.byteLength)
        return chunk.data
      }
    } catch (err) {
      last = toError(err)
      if (last.name === 'CorruptChunkError') {
        ctx.banned.add(peer)
        ctx.onRejected(peer, last)
      }
    } finally {
      stall.clear()
    }
  }
  throw new UnavailableError(`no peer or replica could serve chunk ${index}${last != null ? ` (last error: ${last.message})` : ''}`)
}

/** A verified chunk, shared with concurrent readers of the same chunk. */
function chunkPromise (ctx: ReadContext, manifest: Manifest, index: number): Promise<Uint8Array> {
  const digest = manifest.chunks[index] as Uint8Array
  const cached = ctx.cache.get(digest)
  if (cached != null) return Promise.resolve(cached)
  const pending = ctx.cache.pending(digest)
  if (pending != null) return pending
  const fetch = fetchOne(ctx, manifest, index)
  ctx.cache.track(digest, fetch)
  return fetch
}

/** The bytes [offset, offset + length) of the file, in order. */
export async function * readP2P (ctx: ReadContext, manifest: Manifest, offset: number, length: number, options: AbortOptions = {}): AsyncGenerator<Uint8Array> {
  if (length <= 0) return
  const { first, last } = chunksForRange(manifest, offset, length)
  const end = offset + length
  const ahead = new Map<number, Promise<Uint8Array>>()
  for (let i = first; i <= last; i++) {
    for (let j = i; j <= Math.min(last, i + BROWSER_READ_AHEAD_CHUNKS); j++) {
      if (!ahead.has(j)) {
        const p = chunkPromise(ctx, manifest, j)
        // Awaited below in order; this only keeps a read-ahead failure from surfacing twice.
        p.catch(() => {})
        ahead.set(j, p)
      }
    }
    const data = await raceSignal(ahead.get(i) as Promise<Uint8Array>, options.signal)
    ahead.delete(i)
    const start = i * manifest.chunkSize
    yield data.subarray(Math.max(0, offset - start), Math.min(data.byteLength, end - start))
  }
}
