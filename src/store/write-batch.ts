/**
 * Small writes that arrive together share one transaction: S3 key records,
 * and the prepared records of uploads (each member's one forced write).
 *
 * A SQLite commit costs the same whether it carries one small row or ten:
 * the WAL frames of the touched pages, written once. Under concurrent S3
 * writes, a node committed one transaction per key record — measured at
 * ~0.1 ms of CPU per commit in a busy node, about as much as the rest of the
 * record's write. Jobs queued in one turn of the event loop now run in one
 * transaction at the next (setImmediate), each in a savepoint of its own: a
 * job that throws is undone alone and fails alone, the others commit.
 *
 * A job runs whole inside the transaction — its checks, the state they read
 * and the change they guard — so batching adds no gap between a check and
 * its write (nothing else writes the database in between: SQLite calls are
 * synchronous). Durability stays the caller's: `Db.durable()` after.
 */
import type { Db } from './db.ts'
import type { StatementSync } from 'node:sqlite'

interface Job { run: () => unknown, committed?: (value: unknown) => void, resolve: (value: unknown) => void, reject: (err: unknown) => void }

export class WriteBatch {
  private readonly db: Db
  private queue: Job[] = []
  private scheduled = false
  /** Prepared once: every job pays a savepoint and its release (exec() would parse them each time). */
  private readonly savepoint: { begin: StatementSync, release: StatementSync, rollback: StatementSync }

  constructor (db: Db) {
    this.db = db
    this.savepoint = { begin: db.sql.prepare('SAVEPOINT job'), release: db.sql.prepare('RELEASE job'), rollback: db.sql.prepare('ROLLBACK TO job') }
  }

  /**
   * Run `job` in the next batch's transaction; resolves with what it returned
   * once that transaction committed. `committed` runs right after the commit,
   * in the same turn (state that must change with the commit, before any other
   * task runs: pins, caches).
   */
  async run<T> (job: () => T, committed?: (value: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: job, ...(committed != null ? { committed: committed as (value: unknown) => void } : {}), resolve: resolve as (value: unknown) => void, reject })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => { this.flush() })
      }
    })
  }

  private flush (): void {
    this.scheduled = false
    const jobs = this.queue
    this.queue = []
    const outcomes: Array<{ ok: true, value: unknown } | { ok: false, err: unknown }> = []
    try {
      this.db.transaction(() => {
        // A job alone needs no savepoint: if it throws, its transaction is undone (two statements saved).
        if (jobs.length === 1) outcomes.push({ ok: true, value: jobs[0]?.run() })
        else for (const job of jobs) outcomes.push(this.inSavepoint(job))
      })
    } catch (err) {
      // The commit itself failed, or a job alone threw: nothing of the batch is there.
      for (const job of jobs) job.reject(err)
      return
    }
    jobs.forEach((job, i) => {
      const o = outcomes[i]
      if (o?.ok !== true) {
        job.reject(o?.err)
        return
      }
      try {
        job.committed?.(o.value)
        job.resolve(o.value)
      } catch (err) {
        job.reject(err)
      }
    })
  }

  private inSavepoint (job: Job): { ok: true, value: unknown } | { ok: false, err: unknown } {
    const sp = this.savepoint
    sp.begin.run()
    try {
      const value = job.run()
      sp.release.run()
      return { ok: true, value }
    } catch (err) {
      sp.rollback.run()
      sp.release.run()
      return { ok: false, err }
    }
  }
}
