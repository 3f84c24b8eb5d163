/**
 * How a browser node reads a file: chunk by chunk, a few ahead of the
 * player, each from another browser that holds it when there is one (that is
 * the point: storage nodes carry less of the viewing load), else from a
 * storage replica. Every chunk is verified against the manifest by
 * fetchChunks before its bytes are used, and sources fail over by the rules
 * every reader shares (../stream/failover.ts); a peer whose bytes fail
 * verification is scored down (../stream/peer-scores.ts, as on storage
 * nodes) and asked last from then on. Chunks land in the node's cache, from
 * which it also serves other browsers.
 */
import { chunkLength, chunksForRange } from '../content/manifest.ts'
import { SourcePool, fetchInOrder } from '../stream/failover.ts'
import { fetchChunks } from '../stream/get.ts'
import { raceSignal } from '../util/abort.ts'
import type { Manifest } from '../content/manifest.ts'
import type { ChunkCache } from '../stream/chunk-cache.ts'
import type { ChunkSource } from '../stream/failover.ts'
import type { PeerScores } from '../stream/peer-scores.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions } from '@libp2p/interface'

/** Chunks a browser node fetches ahead of its player. */
export const BROWSER_READ_AHEAD_CHUNKS = 3

export type SourceKind = 'peer' | 'storage'

export interface ReadContext {
  dialer: Dialer
  cache: ChunkCache
  /** Browsers known to hold chunk `index` (connected ones first). */
  peersWith: (index: number) => string[]
  /** Storage replicas of the file, best first. */
  storage: () => string[]
  /** Peers that sent bytes failing verification lately are asked last. */
  scores: PeerScores
  onChunk: (kind: SourceKind, peer: string, bytes: number) => void
  onRejected: (peer: string, err: Error) => void
}

interface PeerSource extends ChunkSource { kind: SourceKind }

/** Other browsers first (sparing the storage nodes), then storage replicas; peers that lied lately after all of them. */
function sourcesFor (ctx: ReadContext, index: number): PeerSource[] {
  const all: PeerSource[] = [
    ...ctx.peersWith(index).map(p => ({ kind: 'peer' as const, id: p })),
    ...ctx.storage().map(p => ({ kind: 'storage' as const, id: p }))
  ].map(s => ({ ...s, fetch: (m: Manifest, offset: number, length: number, options: AbortOptions) => fetchChunks(ctx.dialer, s.id, m, offset, length, options) }))
  return [...all.filter(s => !ctx.scores.avoided(s.id)), ...all.filter(s => ctx.scores.avoided(s.id))]
}

async function fetchOne (ctx: ReadContext, manifest: Manifest, index: number): Promise<Uint8Array> {
  const from = index * manifest.chunkSize
  const chunks = fetchInOrder(manifest, index, index, from, from + chunkLength(manifest, index), new SourcePool(sourcesFor(ctx, index)), {
    onChunk: (source, chunk) => { ctx.onChunk((source as PeerSource).kind, source.id, chunk.data.byteLength) },
    onSourceFailed: (source, err) => {
      if (err.name !== 'CorruptChunkError') return
      ctx.scores.badChunk(source.id)
      ctx.onRejected(source.id, err)
    }
  })
  // eslint-disable-next-line no-unreachable-loop -- one chunk was asked for; for-await then closes the stream
  for await (const chunk of chunks) return chunk.data
  throw new Error(`chunk ${index} was not delivered`)
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
