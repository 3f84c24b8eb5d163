/**
 * The scrub: every stored chunk is read back and re-hashed (SHA-256, against
 * its digest — stronger than the CRCs reads check) at a bounded rate, one
 * pass after another. A chunk that fails is reported to the store, which
 * drops it and turns its files pending, so group sync fetches a good copy:
 * bit rot is healed before a reader, or every replica, meets it.
 *
 * Its progress is kept (`progress`: the last digest checked, when the last
 * pass ended), so a node that restarts often is still scrubbed whole: at
 * start a pass resumes at once where the last one stopped, unless a whole
 * pass ended less than `passPauseMs` ago. A node that was never scrubbed
 * (a new one, or data written by an older version) starts its first pass
 * when it starts.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { equals } from 'uint8arrays/equals'
import { CorruptChunkError, toError } from '../errors.ts'
import { chunkDigest } from '../content/chunk-hash.ts'
import type { ChunkLocation, ChunkStore } from './chunk-store.ts'
import type { Db } from './db.ts'
import type { Logger } from '../logger.ts'
import type { AbortOptions, Startable } from '@libp2p/interface'

/** Bytes re-hashed per second (a 1 TiB node is scrubbed in about 6 hours). */
export const SCRUB_BYTES_PER_S = 48 * 1024 * 1024
/** Digests read from the index at a time (never the whole store in memory). */
const PAGE = 1_000
/** Pause between two passes over the whole store, and before the first one (a node just started has better things to do). */
export const SCRUB_PASS_PAUSE_MS = 60 * 60_000

/** Where a pass stands, kept across restarts. */
export interface ScrubProgress {
  /** Hex digest of the last chunk checked in the pass under way ('' at its start). */
  after: string
  /** When the last whole pass ended (ms since epoch), 0 if none did. */
  lastPassAt: number
}

export interface ScrubComponents {
  chunks: ChunkStore
  logger: Logger
  /** Keeps the progress across restarts (the node's meta table); none: each start begins a pass after the pause. */
  progress?: { load(): ScrubProgress | undefined, save(p: ScrubProgress): void }
  /** The copy of a chunk at `at` failed its hash: drop it and fetch its files again. */
  corrupt: (digest: Uint8Array, at: ChunkLocation) => void
}

export interface ScrubInit {
  bytesPerS?: number
  passPauseMs?: number
  /** Digests read from the index at a time (and how often progress is kept). */
  pageSize?: number
}

export class Scrub implements Startable {
  /** Chunks checked and found bad since start (metrics, tests). */
  readonly counters = { checked: 0, bad: 0, passes: 0 }
  private readonly c: ScrubComponents
  private readonly init: Required<ScrubInit>
  private controller?: AbortController
  private loop?: Promise<void>

  constructor (components: ScrubComponents, init: ScrubInit = {}) {
    this.c = components
    this.init = { bytesPerS: init.bytesPerS ?? SCRUB_BYTES_PER_S, passPauseMs: init.passPauseMs ?? SCRUB_PASS_PAUSE_MS, pageSize: init.pageSize ?? PAGE }
  }

  async start (): Promise<void> {
    if (this.controller != null) return
    this.controller = new AbortController()
    const signal = this.controller.signal
    this.loop = (async () => {
      while (!signal.aborted) {
        await sleep(this.pauseBeforeNextPass(), undefined, { signal, ref: false }).catch(() => {})
        if (signal.aborted) return
        await this.pass({ signal }).catch(err => { if (!signal.aborted) this.c.logger.warn({ err: toError(err).message }, 'scrub pass failed') })
      }
    })()
  }

  async stop (): Promise<void> {
    this.controller?.abort()
    this.controller = undefined
    await this.loop
  }

  /** A pass unfinished, or none for `passPauseMs`: now; else what is left of the pause. */
  private pauseBeforeNextPass (): number {
    const p = this.c.progress?.load()
    if (p == null) return this.c.progress == null ? this.init.passPauseMs : 0
    if (p.after !== '') return 0
    return Math.max(0, p.lastPassAt + this.init.passPauseMs - Date.now())
  }

  /** Re-hash every stored chunk once, paced (resuming a pass a restart interrupted). */
  async pass (options: AbortOptions = {}): Promise<{ checked: number, bad: number }> {
    const before = { checked: this.counters.checked, bad: this.counters.bad }
    const saved = this.c.progress?.load()
    const lastPassAt = saved?.lastPassAt ?? 0
    let after = Buffer.from(saved?.after ?? '', 'hex')
    for (let page = this.c.chunks.digestsAfter(after, this.init.pageSize); page.length > 0; page = this.c.chunks.digestsAfter(after, this.init.pageSize)) {
      for (const digest of page) await this.check(digest, options)
      after = Buffer.from(page.at(-1) as Uint8Array)
      this.c.progress?.save({ after: after.toString('hex'), lastPassAt })
    }
    this.c.progress?.save({ after: '', lastPassAt: Date.now() })
    this.counters.passes++
    return { checked: this.counters.checked - before.checked, bad: this.counters.bad - before.bad }
  }

  private async check (digest: Uint8Array, options: AbortOptions): Promise<void> {
    options.signal?.throwIfAborted()
    const started = performance.now()
    let bytes = 0
    try {
      const { data, at } = await this.c.chunks.read(digest)
      bytes = data.byteLength
      if (!equals(await chunkDigest(data), digest)) throw new CorruptChunkError('stored chunk does not hash to its digest', { at })
    } catch (err) {
      // Gone meanwhile (deleted, or compacted away) is not damage.
      if (!(err instanceof CorruptChunkError) || err.at == null) return
      this.counters.bad++
      this.c.logger.warn({ digest: Buffer.from(digest).toString('hex').slice(0, 16) }, 'scrub: a stored chunk is damaged; fetching a good copy')
      this.c.corrupt(digest, err.at)
    }
    this.counters.checked++
    const wait = bytes / this.init.bytesPerS * 1000 - (performance.now() - started)
    if (wait > 0) await sleep(wait, undefined, options)
  }
}

const PROGRESS_KEY = 'scrub.progress'

/** The scrub's progress in the node's meta table (not forced: a lost update only repeats a little work). */
export function scrubProgress (db: Pick<Db, 'getMeta' | 'setMeta'>): NonNullable<ScrubComponents['progress']> {
  return {
    load: () => {
      try {
        const p = JSON.parse(db.getMeta(PROGRESS_KEY) ?? 'null') as ScrubProgress | null
        return p != null && typeof p.after === 'string' && typeof p.lastPassAt === 'number' ? p : undefined
      } catch {
        return undefined
      }
    },
    save: (p) => { db.setMeta(PROGRESS_KEY, JSON.stringify(p)) }
  }
}
