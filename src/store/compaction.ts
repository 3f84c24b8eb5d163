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
import { toError } from '../errors.ts'
import { NEEDLE_HEADER_BYTES } from './volumes.ts'
import type { ChunkStore } from './chunk-store.ts'
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
  /** A needle failed its check while being copied: the store drops it and its files are fetched again. */
  corrupt: (digest: Uint8Array) => void
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
    this.running = this.run({ signal })
      .catch(err => { if (!signal.aborted) this.c.logger.warn({ err: toError(err).message }, 'compaction failed; retried later') })
      .finally(() => { this.running = undefined })
  }

  /** One pass: rewrite every sealed volume that is mostly garbage. */
  async run (options: AbortOptions = {}): Promise<CompactionReport[]> {
    const reports: CompactionReport[] = []
    for (const volume of await this.candidates()) {
      options.signal?.throwIfAborted()
      reports.push(await this.compact(volume, options))
    }
    return reports
  }

  /** Sealed volumes whose live share is below the ratio (empty ones included). */
  async candidates (): Promise<number[]> {
    const live = this.c.chunks.liveBytes()
    const active = this.c.chunks.volumes.activeId
    const out: number[] = []
    for (const volume of await this.c.chunks.volumes.ids()) {
      if (volume >= active) continue
      const size = await this.c.chunks.volumes.size(volume)
      if ((live.get(volume) ?? 0) < size * this.init.liveRatio) out.push(volume)
    }
    return out
  }

  /** Move a volume's live needles into the active volume, then delete it. */
  async compact (volume: number, options: AbortOptions = {}): Promise<CompactionReport> {
    const size = await this.c.chunks.volumes.size(volume)
    const needles = this.c.chunks.inVolume(volume)
    let moved = 0
    let bytesMoved = 0
    for (let i = 0; i < needles.length; i += MOVE_BATCH) {
      const batch = needles.slice(i, i + MOVE_BATCH)
      const copies: Array<{ digest: Uint8Array, from: number, to: { volume: number, offset: number } }> = []
      const started = performance.now()
      let bytes = 0
      for (const n of batch) {
        options.signal?.throwIfAborted()
        // Checked against its CRCs: a damaged needle is not copied but reported (its files are fetched again).
        const data = await this.c.chunks.read(n.digest).then(b => b.data, (err: unknown) => {
          if ((err as Error).name === 'CorruptChunkError') this.c.corrupt(n.digest)
          return undefined
        })
        if (data == null) continue
        const at = await this.c.chunks.volumes.append(n.digest, data)
        copies.push({ digest: n.digest, from: n.offset, to: at })
        bytes += data.byteLength + NEEDLE_HEADER_BYTES
      }
      await this.c.chunks.volumes.sync(copies.map(c => c.to.volume))
      this.c.db.transaction(() => {
        for (const c of copies) if (this.c.chunks.move(c.digest, { volume, offset: c.from }, c.to)) moved++
      })
      await this.c.db.durable()
      bytesMoved += bytes
      this.counters.movedBytes += bytes
      // Paced: a batch of `bytes` should take at least bytes / rate.
      const wait = bytes / this.init.bytesPerS * 1000 - (performance.now() - started)
      if (wait > 0) await sleep(wait, undefined, options)
    }
    if (this.c.chunks.inVolume(volume).length > 0) throw new Error(`volume ${volume} still has needles the index refers to; it stays`)
    await this.c.chunks.volumes.remove(volume)
    this.counters.volumes++
    this.counters.reclaimedBytes += size - bytesMoved
    this.c.logger.info({ volume, moved, reclaimedBytes: size - bytesMoved }, 'compacted a volume')
    return { volume, moved, bytesMoved, reclaimedBytes: size - bytesMoved }
  }
}
