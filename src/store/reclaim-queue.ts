/**
 * Files waiting to be deleted because the S3 value that owned them was
 * replaced or removed (replica/reclaim.ts deletes them). A row is written in
 * the same transaction as the name operation that freed the file, on the
 * member that stamped it, so a crash neither loses nor invents one.
 */
import type { Db } from './db.ts'

/**
 * How long a freed file waits before it is deleted: a GET that read the old
 * value just before it was replaced still finds the file (and once deleted,
 * reads under way still finish: ./lingering.ts).
 */
export const RECLAIM_DELAY_MS = 30_000
import type { StatementSync } from 'node:sqlite'

export interface ReclaimEntry {
  id: string
  /** When the file was freed (ms since the epoch). */
  since: number
  /** Failed attempts so far. */
  tries: number
}

export class ReclaimQueue {
  private readonly q: Record<'add' | 'due' | 'done' | 'later' | 'count', StatementSync>

  constructor (db: Db) {
    const p = (s: string): StatementSync => db.sql.prepare(s)
    this.q = {
      add: p('INSERT OR IGNORE INTO reclaim (file_id, since, tries, next) VALUES (?, ?, 0, ?)'),
      due: p('SELECT file_id, since, tries FROM reclaim WHERE next <= ? ORDER BY next LIMIT ?'),
      done: p('DELETE FROM reclaim WHERE file_id = ?'),
      later: p('UPDATE reclaim SET tries = tries + 1, next = ? WHERE file_id = ?'),
      count: p('SELECT COUNT(*) AS n FROM reclaim')
    }
  }

  /** Queue a file freed at `since`, to be deleted from `next` on. Call inside the transaction that freed it. */
  add (id: string, since: number, next: number): void {
    this.q.add.run(id, since, next)
  }

  /** Up to `limit` entries whose time has come, oldest first. */
  due (now: number, limit: number): ReclaimEntry[] {
    return (this.q.due.all(now, limit) as Array<{ file_id: string, since: number, tries: number }>).map(r => ({ id: r.file_id, since: r.since, tries: r.tries }))
  }

  done (id: string): void {
    this.q.done.run(id)
  }

  /** An attempt failed: try again at `next`. */
  later (id: string, next: number): void {
    this.q.later.run(next, id)
  }

  get size (): number {
    return (this.q.count.get() as { n: number }).n
  }
}
