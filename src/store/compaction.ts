/**
 * Compaction: reclaiming the space of deleted chunks, online. A sealed
 * volume (not the one appends go to) whose live bytes — those the index still
 * refers to — fall below COMPACT_LIVE_RATIO of its size is rewritten: each
 * live needle is read (checked), appended to the active volume and, a batch
 * at a time, re-pointed in the index once its new bytes are durable; when no
 * row points into the old volume any more it is deleted. Reads go on
 * throughout: a row points at the old bytes or the new ones, both valid.
 *
 * A crash at any point loses nothing: rows move only to durable bytes, a
 * volume goes only when nothing refers to it, and half-copied needles are
 * garbage beyond the index's tail, cut off at the next start. Copying is
 * paced (COMPACT_BYTES_PER_S) so that it never starves uploads and reads.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { ChunkNotStoredError, CorruptChunkError, toError } from '../errors.ts'
import { NEEDLE_HEADER_BYTES } from './volumes.ts'
import type { ChunkLocation, ChunkStore } from './chunk-store.ts'
import type { Db } from './db.ts'
import type { Logger } from '../logger.ts'
import type { AbortOptions, Startable } from '@libp2p/interface'

/** A sealed volume with less than this share of live bytes is rewritten. */
export const COMPACT_LIVE_RATIO = 0.5
/** How often volumes are weighed. */
export const COMPACT_INTERVAL_MS = 60_000
/** Copy rate of a compaction, so it leaves the disk to clients. */
export const COMPACT_BYTES_PER_S = 64 * 1024 * 1024
/** Needles re-pointed per index transaction. */
const MOVE_BATCH = 64

export interface CompactionComponents {
  chunks: ChunkStore
  db: Db
  logger: Logger
  /** A needle failed its check while being copied: the store drops that copy and its files are fetched again. */
  corrupt: (digest: Uint8Array, at: ChunkLocation) => void
}

export interface CompactionInit {
  intervalMs?: number
  liveRatio?: number
  bytesPerS?: number
}

export interface CompactionReport { volume: number, moved: number, bytesMoved: number, reclaimedBytes: number }

export class Compaction implements Startable {
  /** Volumes rewritten and bytes given back since start (metrics, tests). */
  readonly counters = { volumes: 0, reclaimedBytes: 0, movedBytes: 0 }
  private readonly c: CompactionComponents
  private readonly init: Required<CompactionInit>
  private timer?: ReturnType<typeof setInterval>
  private controller?: AbortController
  private running?: Promise<unknown>

  constructor (components: CompactionComponents, init: CompactionInit = {}) {
    this.c = components
    this.init = { intervalMs: init.intervalMs ?? COMPACT_INTERVAL_MS, liveRatio: init.liveRatio ?? COMPACT_LIVE_RATIO, bytesPerS: init.bytesPerS ?? COMPACT_BYTES_PER_S }
  }

  async start (): Promise<void> {
    if (this.controller != null) return
    this.controller = new AbortController()
    this.timer = setInterval(() => { this.kick() }, this.init.intervalMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.controller?.abort()
    this.controller = undefined
    await this.running?.catch(() => {})
  }

  /** A pass is running now. */
  get active (): boolean { return this.running != null }

  /** Weigh the volumes now (unless a pass is running). */
  kick (): void {
    const signal = this.controller?.signal
    if (signal == null || this.running != null) return
    this.run({ signal })
      .catch(err => { if (!signal.aborted) this.c.logger.warn({ err: toError(err).message }, 'compaction failed; retried later') })
  }

  /** One pass: rewrite every sealed volume that is mostly garbage. Passes run one at a time (a second waits for the first). */
  async run (options: AbortOptions = {}): Promise<CompactionReport[]> {
    const previous = this.running
    const pass = (async () => {
      await previous?.catch(() => {})
      const reports: CompactionReport[] = []
      for (const volume of await this.candidates()) {
        options.signal?.throwIfAborted()
        reports.push(await this.compact(volume, options))
      }
      return reports
    })()
    this.running = pass
    const forget = (): void => { if (this.running === pass) this.running = undefined }
    pass.then(forget, forget)
    return pass
  }

  /**
   * Sealed volumes whose live share is below the ratio (empty ones
   * included). Volumes still written, or holding needles not yet indexed, wait.
   */
  async candidates (): Promise<number[]> {
    const live = this.c.chunks.liveBytes()
    const volumes = this.c.chunks.volumes
    const out: number[] = []
    for (const volume of await volumes.ids()) {
      if (volumes.busy(volume)) continue
      const size = await volumes.size(volume)
      if ((live.get(volume) ?? 0) < size * this.init.liveRatio) out.push(volume)
    }
    return out
  }

  /** Move a volume's live needles into the active volume, then delete it. Call through `run` (one pass at a time). */
  private async compact (volume: number, options: AbortOptions = {}): Promise<CompactionReport> {
    const size = await this.c.chunks.volumes.size(volume)
    const needles = this.c.chunks.inVolume(volume)
    let moved = 0
    let bytesMoved = 0
    for (let i = 0; i < needles.length; i += MOVE_BATCH) {
      const batch = needles.slice(i, i + MOVE_BATCH)
      const copies: Array<{ digest: Uint8Array, from: number, to: { volume: number, offset: number } }> = []
      const started = performance.now()
      let bytes = 0
      try {
        for (const n of batch) {
          options.signal?.throwIfAborted()
          const data = await this.readLive(n.digest, { volume, offset: n.offset })
          if (data == null) continue
          const at = await this.c.chunks.volumes.append(n.digest, data)
          copies.push({ digest: n.digest, from: n.offset, to: at })
          bytes += data.byteLength + NEEDLE_HEADER_BYTES
        }
        await this.c.chunks.volumes.sync(copies.map(c => c.to.volume))
        this.c.db.transaction(() => {
          for (const c of copies) if (this.c.chunks.move(c.digest, { volume, offset: c.from }, c.to)) moved++
        })
      } finally {
        // Moved or not, the copies no longer wait to be indexed (a copy not moved is garbage).
        for (const c of copies) this.c.chunks.volumes.release(c.to.volume)
      }
      await this.c.db.durable()
      bytesMoved += bytes
      this.counters.movedBytes += bytes
      // Paced: a batch of `bytes` should take at least bytes / rate.
      const wait = bytes / this.init.bytesPerS * 1000 - (performance.now() - started)
      if (wait > 0) await sleep(wait, undefined, options)
    }
    // Checked and removed in one turn: no row can point into the volume between the two.
    if (this.c.chunks.inVolume(volume).length > 0) throw new Error(`volume ${volume} still has needles the index refers to; it stays`)
    await this.c.chunks.volumes.remove(volume)
    this.counters.volumes++
    this.counters.reclaimedBytes += size - bytesMoved
    this.c.logger.info({ volume, moved, reclaimedBytes: size - bytesMoved }, 'compacted a volume')
    return { volume, moved, bytesMoved, reclaimedBytes: size - bytesMoved }
  }

  /** A needle's bytes if its row still points at `at` and they pass their CRCs; a damaged copy is reported, not copied. */
  private async readLive (digest: Uint8Array, at: ChunkLocation): Promise<Uint8Array | undefined> {
    try {
      const read = await this.c.chunks.read(digest)
      // Moved or stored again meanwhile: that copy is not ours to move.
      return read.at.volume === at.volume && read.at.offset === at.offset ? read.data : undefined
    } catch (err) {
      if (err instanceof CorruptChunkError && err.at != null) this.c.corrupt(digest, err.at)
      else if (!(err instanceof ChunkNotStoredError)) throw err
      return undefined
    }
  }
}
