/**
 * The S3 namespace in the node's SQLite database: buckets and their keys.
 *
 * One row per name — a bucket's own record under the empty key, each object
 * under its key — holding its latest operation with its (ts, origin) stamp:
 * last writer wins, so members that apply the same operations in any order
 * agree, exactly as the file index does. A delete stays as a tombstone (a
 * member that was away cannot bring the name back). The rows ordered by
 * `seq` are this node's name log, kept apart from the file log (its own seq
 * and cursors), pulled by group mates like the file log.
 *
 * What a row's `value` holds (object metadata, bucket settings) is the
 * replica layer's business: the store keeps it as opaque bytes.
 *
 * Keys sort by their raw UTF-8 bytes (SQLite's BINARY collation of TEXT), the
 * order S3 lists in.
 */
import { LRUCache } from 'lru-cache'
import { isNewer } from './file-index.ts'
import { LogHead } from './log-head.ts'
import type { Db } from './db.ts'
import type { StatementSync } from 'node:sqlite'

/** A bucket's own record sits under this key (an S3 key is never empty). */
export const BUCKET_RECORD_KEY = ''
/** Rows kept in memory for reads (every S3 GET and HEAD reads one). */
export const NAME_ROW_CACHE_ROWS = 10_000
/** Where the head is kept when rows are dropped, so seqs never go back. */
const HEAD_FLOOR_META = 'names.head'

export interface NameOp {
  bucket: string
  key: string
  group: string
  /** false: a delete (tombstone). */
  live: boolean
  ts: number
  origin: string
  value?: Uint8Array
}

export interface NameRow extends NameOp {
  seq: number
}

interface Row { bucket: string, key: string, grp: string, live: number, ts: number, origin: string, seq: number, value: Uint8Array | null }

function toNameRow (r: Row): NameRow {
  return { bucket: r.bucket, key: r.key, group: r.grp, live: r.live === 1, ts: r.ts, origin: r.origin, seq: r.seq, ...(r.value != null ? { value: r.value } : {}) }
}

function prepare (db: Db) {
  const p = (sql: string): StatementSync => db.sql.prepare(sql)
  return {
    get: p('SELECT * FROM names WHERE bucket = ? AND key = ?'),
    head: p('SELECT COALESCE(MAX(seq), 0) AS head FROM names'),
    upsert: p(`INSERT INTO names (bucket, key, grp, live, ts, origin, seq, value) VALUES (:bucket, :key, :grp, :live, :ts, :origin, :seq, :value)
               ON CONFLICT(bucket, key) DO UPDATE SET grp = excluded.grp, live = excluded.live, ts = excluded.ts, origin = excluded.origin,
                 seq = excluded.seq, value = excluded.value`),
    list: p('SELECT * FROM names WHERE bucket = ? AND key > ? AND live = 1 ORDER BY key LIMIT ?'),
    listAll: p('SELECT * FROM names WHERE bucket = ? AND key > ? ORDER BY key LIMIT ?'),
    buckets: p('SELECT * FROM names WHERE key = \'\' AND live = 1 ORDER BY bucket'),
    bucketRecords: p('SELECT * FROM names WHERE key = \'\' ORDER BY bucket'),
    countLive: p('SELECT COUNT(*) AS n FROM names WHERE bucket = ? AND key != \'\' AND live = 1'),
    since: p('SELECT * FROM names WHERE grp = ? AND seq > ? ORDER BY seq LIMIT ?'),
    cursor: p('SELECT seq FROM name_cursors WHERE source = ?'),
    setCursor: p(`INSERT INTO name_cursors (source, seq) VALUES (?, ?)
                  ON CONFLICT(source) DO UPDATE SET seq = MAX(seq, excluded.seq)`),
    outside: p('DELETE FROM names WHERE grp != ?')
  }
}

export class NameIndex {
  private readonly db: Db
  private readonly q: ReturnType<typeof prepare>
  /**
   * Committed rows by bucket and key, shared (never mutated). Filled only
   * outside a transaction, so a row written by one that then rolled back is
   * never kept; every write drops the row it changes.
   */
  private readonly rows = new LRUCache<string, NameRow>({ max: NAME_ROW_CACHE_ROWS })
  private readonly log: LogHead

  constructor (db: Db) {
    this.db = db
    this.q = prepare(db)
    this.log = new LogHead(db, () => (this.q.head.get() as { head: number }).head, HEAD_FLOOR_META)
  }

  get (bucket: string, key: string): NameRow | undefined {
    const id = `${bucket}\0${key}`
    const cached = this.rows.get(id)
    if (cached != null) return cached
    const row = this.q.get.get(bucket, key) as Row | undefined
    if (row == null) return undefined
    const named = toNameRow(row)
    if (!this.db.sql.isTransaction) this.rows.set(id, named)
    return named
  }

  /** This node's name log head (./log-head.ts): never lower after rows were dropped (mates hold cursors). */
  head (): number {
    return this.log.get()
  }

  /** Apply an operation (a local write, a push from the member that stamped it, a synced log entry): the later stamp wins. */
  apply (op: NameOp): 'applied' | 'ignored' {
    return this.db.transaction(() => {
      const current = this.get(op.bucket, op.key)
      if (current != null && !isNewer(op, current)) return 'ignored'
      this.q.upsert.run({ bucket: op.bucket, key: op.key, grp: op.group, live: op.live ? 1 : 0, ts: op.ts, origin: op.origin, seq: this.log.next(), value: op.value ?? null })
      this.rows.delete(`${op.bucket}\0${op.key}`)
      return 'applied'
    })
  }

  /** Live keys of `bucket` after `after` (exclusive), in raw byte order; the bucket's own record is never listed. */
  list (bucket: string, after: string, limit: number): NameRow[] {
    return (this.q.list.all(bucket, after, limit) as unknown as Row[]).map(toNameRow)
  }

  /** Keys of `bucket` after `after`, tombstones included (a reader merging several members' pages needs them). */
  listWithTombstones (bucket: string, after: string, limit: number): NameRow[] {
    return (this.q.listAll.all(bucket, after, limit) as unknown as Row[]).map(toNameRow)
  }

  /** The live buckets whose records this node holds. */
  buckets (): NameRow[] {
    return (this.q.buckets.all() as unknown as Row[]).map(toNameRow)
  }

  /** Every bucket record this node holds, deleted ones (tombstones) included: a reader merging members' answers needs them. */
  bucketRecords (): NameRow[] {
    return (this.q.bucketRecords.all() as unknown as Row[]).map(toNameRow)
  }

  /** Live keys in `bucket`. */
  count (bucket: string): number {
    return (this.q.countLive.get(bucket) as { n: number }).n
  }

  /** The group's name log after `seq`: one row per changed name, in log order. */
  changesSince (group: string, seq: number, limit: number): NameRow[] {
    return (this.q.since.all(group, seq, limit) as unknown as Row[]).map(toNameRow)
  }

  /** Our position in a peer's name log. */
  cursor (source: string): number {
    return (this.q.cursor.get(source) as { seq: number } | undefined)?.seq ?? 0
  }

  setCursor (source: string, seq: number): void {
    this.q.setCursor.run(source, seq)
  }

  /** Drop the names of groups other than `group` (left behind when a member moves). */
  forgetOutside (group: string): number {
    return this.db.transaction(() => {
      this.log.raiseFloor()
      this.rows.clear()
      return Number(this.q.outside.run(group).changes)
    })
  }
}
