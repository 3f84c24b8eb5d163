/**
 * The head of a log numbered by `seq` (the file index's, the name index's):
 * the highest seq read or given. Every change has a seq at or below it and
 * every later one a seq above, so a puller may move its cursor there. Read
 * from the database once and kept after (the heartbeat asks it after every
 * write); the index using it must be its table's one writer.
 *
 * A seq given to a write that rolled back is skipped, never reused while we
 * run: a gap is harmless, cursors only need seqs to grow. Rows removed for
 * good (`raiseFloor` first) leave their highest seq in meta, so it is never
 * given again after a restart either: a mate whose cursor is past it would
 * miss the change.
 */
import type { Db } from './db.ts'

export class LogHead {
  private readonly db: Db
  private readonly maxSeq: () => number
  private readonly floorKey: string
  private last?: number

  /** `maxSeq`: the highest seq in the table now; `floorKey`: the meta key of the floor. */
  constructor (db: Db, maxSeq: () => number, floorKey: string) {
    this.db = db
    this.maxSeq = maxSeq
    this.floorKey = floorKey
  }

  get (): number {
    this.last ??= Math.max(this.maxSeq(), Number(this.db.getMeta(this.floorKey) ?? 0))
    return this.last
  }

  /** The seq for the next change: one past the head. */
  next (): number {
    this.last = this.get() + 1
    return this.last
  }

  /** Before rows are removed for good (inside their transaction): their seqs stay given. */
  raiseFloor (): void {
    this.db.setMeta(this.floorKey, String(this.get()))
  }
}
