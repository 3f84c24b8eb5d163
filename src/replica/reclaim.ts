/**
 * Deletes the files that S3 values owned once those values are replaced or
 * removed: an overwritten or deleted object, the parts of a completed,
 * aborted or expired multipart upload. The member that stamped the freeing
 * write queued the file in the same transaction (store/reclaim-queue.ts);
 * this service, on that member, deletes it through the ordinary delete path
 * (replicated, acknowledged at the copy floor) after RECLAIM_DELAY_MS, and
 * retries with a growing pause while the file's group cannot take the
 * delete. A file already gone counts as done.
 *
 * Safe because S3 files are tagged (content/manifest.ts): each belongs to the
 * one value that named it, and a value once replaced never comes back (its
 * replacement is stamped after it; last writer wins).
 */
import { FileNotFoundError, toError } from '../errors.ts'
import { Periodic } from '../util/periodic.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { ReclaimQueue } from '../store/reclaim-queue.ts'
import type { AbortOptions, Startable } from '@libp2p/interface'

/** How often the queue is looked at. */
export const RECLAIM_INTERVAL_MS = 5_000
/** Files deleted per look (one after the other: reclaiming is background work). */
export const RECLAIM_BATCH = 64
/** The pause after a failed delete doubles from this, up to RECLAIM_MAX_PAUSE_MS. */
export const RECLAIM_FIRST_PAUSE_MS = 30_000
export const RECLAIM_MAX_PAUSE_MS = 3600_000
/** One delete may take this long before it counts as failed. */
export const RECLAIM_DELETE_TIMEOUT_MS = 30_000

export interface ReclaimComponents {
  reclaims: ReclaimQueue
  status: Pick<LocalStatus, 'state'>
  deleteFile(id: string, options: AbortOptions): Promise<unknown>
  logger: Logger
}

export interface ReclaimInit {
  intervalMs?: number
}

export class Reclaimer implements Startable {
  /** Files deleted, and failed attempts (metrics, tests). */
  readonly counters = { reclaimed: 0, failed: 0 }
  private readonly c: ReclaimComponents
  private readonly task: Periodic

  constructor (components: ReclaimComponents, init: ReclaimInit = {}) {
    this.c = components
    this.task = new Periodic(init.intervalMs ?? RECLAIM_INTERVAL_MS, async (signal) => this.pass(signal),
      (err) => { this.c.logger.warn({ err: err.message }, 'could not reclaim freed files') })
  }

  async start (): Promise<void> {
    this.task.start()
  }

  async stop (): Promise<void> {
    await this.task.stop()
  }

  /** Look at the queue now (one pass at a time). */
  kick (): void {
    this.task.kick()
  }

  private async pass (signal: AbortSignal): Promise<void> {
    if (this.c.status.state !== 'ACTIVE') return
    for (const entry of this.c.reclaims.due(Date.now(), RECLAIM_BATCH)) {
      signal.throwIfAborted()
      try {
        await this.c.deleteFile(entry.id, { signal: AbortSignal.any([signal, AbortSignal.timeout(RECLAIM_DELETE_TIMEOUT_MS)]) })
        this.counters.reclaimed++
        this.c.reclaims.done(entry.id)
      } catch (err) {
        if (err instanceof FileNotFoundError) {
          this.c.reclaims.done(entry.id)
          continue
        }
        signal.throwIfAborted()
        this.counters.failed++
        const pauseMs = Math.min(RECLAIM_MAX_PAUSE_MS, RECLAIM_FIRST_PAUSE_MS * 2 ** entry.tries)
        this.c.reclaims.later(entry.id, Date.now() + pauseMs)
        this.c.logger.info({ file: entry.id, err: toError(err).message, retryInS: pauseMs / 1000 }, 'could not delete a freed file yet; will retry')
      }
    }
  }
}
