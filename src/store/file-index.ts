/**
 * The file index and group log, in the node's SQLite database.
 *
 * Every file has one row holding its latest operation (add or delete) with
 * its (ts, origin) stamp: last writer wins, so members that apply the same
 * operations in any order agree. Each change takes the next local `seq`; the
 * rows ordered by `seq` are this node's group log ("binlog"), compacted to
 * the newest operation per file. Deletes stay as tombstones so a member that
 * was offline cannot bring a deleted file back.
 */
import { LogHead } from './log-head.ts'
import type { Db } from './db.ts'
import type { StatementSync } from 'node:sqlite'

export type FileState = 'present' | 'pending' | 'deleted'

export interface FileRow {
  id: string
  group: string
  state: FileState
  ts: number
  origin: string
  seq: number
  manifest?: Uint8Array
  size: number
  name: string
  mime: string
  createdAt: number
  chunkCount: number
}

export interface AddOp {
  kind: 'add'
  id: string
  group: string
  ts: number
  origin: string
  manifest: Uint8Array
  size: number
  name: string
  mime: string
  createdAt: number
  chunks: Uint8Array[]
}

export interface DeleteOp {
  kind: 'delete'
  id: string
  group: string
  ts: number
  origin: string
}

export type GroupOp = AddOp | DeleteOp

/** What applying an operation changed. */
export type ApplyEffect =
  | 'ignored' // older than what we have (or identical)
  | 'added' // new file, or revived after a delete
  | 'restamped' // a newer add of a file we already hold
  | 'deleted'

interface Row {
  id: string,
  grp: string,
  state: FileState,
  ts: number,
  origin: string,
  seq: number,
  manifest: Uint8Array | null,
  size: number,
  name: string,
  mime: string,
  created_at: number,
  chunk_count: number
}

function toFileRow (r: Row): FileRow {
  return {
    id: r.id,
    group: r.grp,
    state: r.state,
    ts: r.ts,
    origin: r.origin,
    seq: r.seq,
    ...(r.manifest != null ? { manifest: r.manifest } : {}),
    size: r.size,
    name: r.name,
    mime: r.mime,
    createdAt: r.created_at,
    chunkCount: r.chunk_count
  }
}

/** (ts, origin) order: the later stamp wins; equal stamps are the same operation. */
export function isNewer (a: { ts: number, origin: string }, b: { ts: number, origin: string }): boolean {
  return a.ts > b.ts || (a.ts === b.ts && a.origin > b.origin)
}

function prepare (db: Db) {
  const p = (sql: string): StatementSync => db.sql.prepare(sql)
  return {
    get: p('SELECT * FROM files WHERE id = ?'),
    stamp: p('SELECT ts, origin, state FROM files WHERE id = ?'),
    head: p('SELECT COALESCE(MAX(seq), 0) AS head FROM files'),
    newestTs: p('SELECT COALESCE(MAX(ts), 0) AS ts FROM files'),
    upsert: p(`INSERT INTO files (id, grp, state, ts, origin, seq, manifest, size, name, mime, created_at, chunk_count, chunk)
               VALUES (:id, :grp, :state, :ts, :origin, :seq, :manifest, :size, :name, :mime, :created_at, :chunk_count, :chunk)
               ON CONFLICT(id) DO UPDATE SET grp = excluded.grp, state = excluded.state, ts = excluded.ts,
                 origin = excluded.origin, seq = excluded.seq, manifest = excluded.manifest, size = excluded.size,
                 name = excluded.name, mime = excluded.mime, created_at = excluded.created_at, chunk_count = excluded.chunk_count,
                 chunk = excluded.chunk`),
    restamp: p('UPDATE files SET ts = ?, origin = ?, seq = ? WHERE id = ?'),
    setState: p('UPDATE files SET state = ? WHERE id = ?'),
    deleteChunks: p('DELETE FROM file_chunks WHERE file_id = ?'),
    insertChunk: p('INSERT OR REPLACE INTO file_chunks (file_id, idx, digest) VALUES (?, ?, ?)'),
    // A file's chunks are in its row (one chunk, migration 9) or in `file_chunks` (more, or added before it).
    chunksOf: p(`SELECT chunk AS digest, 0 AS idx FROM files WHERE id = :id AND chunk IS NOT NULL
                 UNION ALL SELECT digest, idx FROM file_chunks WHERE file_id = :id ORDER BY idx`),
    referenced: p(`SELECT 1 FROM files WHERE chunk = :digest AND state != 'deleted'
                   UNION ALL SELECT 1 FROM file_chunks c JOIN files f ON f.id = c.file_id WHERE c.digest = :digest AND f.state != 'deleted'
                   LIMIT 1`),
    filesWithChunk: p(`SELECT id FROM files WHERE chunk = :digest AND state != 'deleted'
                       UNION SELECT f.id FROM file_chunks c JOIN files f ON f.id = c.file_id WHERE c.digest = :digest AND f.state != 'deleted'`),
    since: p('SELECT * FROM files WHERE grp = ? AND seq > ? ORDER BY seq LIMIT ?'),
    byState: p('SELECT * FROM files WHERE state = ? ORDER BY seq LIMIT ?'),
    // The state spelled out, not bound: only then may SQLite use the partial index (migration 8).
    pending: p('SELECT * FROM files WHERE state = \'pending\' ORDER BY seq LIMIT ?'),
    list: p('SELECT * FROM files WHERE state = \'present\' AND seq > ? ORDER BY seq LIMIT ?'),
    count: p('SELECT state, COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM files GROUP BY state'),
    cursor: p('SELECT seq FROM sync_cursors WHERE source = ?'),
    setCursor: p(`INSERT INTO sync_cursors (source, seq) VALUES (?, ?)
                  ON CONFLICT(source) DO UPDATE SET seq = MAX(seq, excluded.seq)`),
    allDigests: p(`SELECT chunk AS digest FROM files WHERE chunk IS NOT NULL AND state != 'deleted'
                   UNION SELECT c.digest FROM file_chunks c JOIN files f ON f.id = c.file_id WHERE f.state != 'deleted'`),
    otherGroups: p('SELECT id FROM files WHERE grp != ?'),
    forget: p('DELETE FROM files WHERE id = ?')
  }
}

type Statements = ReturnType<typeof prepare>

export class FileIndex {
  private readonly db: Db
  private readonly q: Statements
  private readonly log: LogHead

  constructor (db: Db) {
    this.db = db
    this.q = prepare(db)
    this.log = new LogHead(db, () => (this.q.head.get() as { head: number }).head, 'files.head')
  }

  get (id: string): FileRow | undefined {
    const row = this.q.get.get(id) as Row | undefined
    return row == null ? undefined : toFileRow(row)
  }

  /** A file's latest operation as its stamp and state, without the row (a sync pull asks this per log entry). */
  stamp (id: string): { ts: number, origin: string, state: FileState } | undefined {
    return this.q.stamp.get(id) as { ts: number, origin: string, state: FileState } | undefined
  }

  /** The newest stamp of any row (0 when empty): one step down the `files_by_ts` index (migration 10). */
  newestTs (): number {
    return (this.q.newestTs.get() as { ts: number }).ts
  }

  /** This node's log head (./log-head.ts). */
  head (): number {
    return this.log.get()
  }

  /**
   * Apply an operation (from a local write, a replication push or a sync
   * pull). An add whose chunks are all local is `present`, else `pending`
   * until the chunks are fetched.
   */
  apply (op: GroupOp, hasAllChunks: boolean): ApplyEffect {
    return this.db.transaction(() => {
      const current = this.stamp(op.id)
      if (current != null && !isNewer(op, current)) return 'ignored'
      const seq = this.log.next()
      if (op.kind === 'delete') {
        this.q.deleteChunks.run(op.id)
        this.q.upsert.run({
          id: op.id,
          grp: op.group,
          state: 'deleted',
          ts: op.ts,
          origin: op.origin,
          seq,
          manifest: null,
          size: 0,
          name: '',
          mime: '',
          created_at: 0,
          chunk_count: 0,
          chunk: null
        })
        return 'deleted'
      }
      if (current != null && current.state !== 'deleted') {
        this.q.restamp.run(op.ts, op.origin, seq, op.id)
        return 'restamped'
      }
      this.q.upsert.run({
        id: op.id,
        grp: op.group,
        state: hasAllChunks ? 'present' : 'pending',
        ts: op.ts,
        origin: op.origin,
        seq,
        manifest: op.manifest,
        size: op.size,
        name: op.name,
        mime: op.mime,
        created_at: op.createdAt,
        chunk_count: op.chunks.length,
        chunk: op.chunks.length === 1 ? op.chunks[0] ?? null : null
      })
      if (op.chunks.length !== 1) op.chunks.forEach((digest, idx) => this.q.insertChunk.run(op.id, idx, digest))
      return 'added'
    })
  }

  setState (id: string, state: Exclude<FileState, 'deleted'>): void {
    this.q.setState.run(state, id)
  }

  chunksOf (id: string): Uint8Array[] {
    return (this.q.chunksOf.all({ id }) as Array<{ digest: Uint8Array }>).map(r => r.digest)
  }

  /** Is any live (present or pending) file still using this chunk? */
  isReferenced (digest: Uint8Array): boolean {
    return this.q.referenced.get({ digest }) != null
  }

  filesWithChunk (digest: Uint8Array): string[] {
    return (this.q.filesWithChunk.all({ digest }) as Array<{ id: string }>).map(r => r.id)
  }

  /** Digests of every chunk a live file refers to. */
  liveDigests (): Uint8Array[] {
    return (this.q.allDigests.all() as Array<{ digest: Uint8Array }>).map(r => r.digest)
  }

  /** The group log after `seq`: one row per changed file, in log order. */
  changesSince (group: string, seq: number, limit: number): FileRow[] {
    return (this.q.since.all(group, seq, limit) as unknown as Row[]).map(toFileRow)
  }

  withState (state: FileState, limit = 1_000_000): FileRow[] {
    const rows = state === 'pending' ? this.q.pending.all(limit) : this.q.byState.all(state, limit)
    return (rows as unknown as Row[]).map(toFileRow)
  }

  /** Present files in log order, `limit` at a time after `afterSeq`. */
  listPresent (afterSeq: number, limit: number): FileRow[] {
    return (this.q.list.all(afterSeq, limit) as unknown as Row[]).map(toFileRow)
  }

  stats (): Record<FileState, { files: number, bytes: number }> {
    const out: Record<FileState, { files: number, bytes: number }> = {
      present: { files: 0, bytes: 0 }, pending: { files: 0, bytes: 0 }, deleted: { files: 0, bytes: 0 }
    }
    for (const r of this.q.count.all() as Array<{ state: FileState, n: number, bytes: number }>) out[r.state] = { files: r.n, bytes: r.bytes }
    return out
  }

  /** Our position in a peer's log: the last of its seqs we applied. */
  cursor (source: string): number {
    return (this.q.cursor.get(source) as { seq: number } | undefined)?.seq ?? 0
  }

  setCursor (source: string, seq: number): void {
    this.q.setCursor.run(source, seq)
  }

  /** Remove a file's row entirely (not a tombstone): for files of a group we left. */
  forget (id: string): void {
    this.db.transaction(() => {
      this.log.raiseFloor()
      this.q.deleteChunks.run(id)
      this.q.forget.run(id)
    })
  }

  /** Files (and tombstones) of groups other than `group`, left behind when a member moves. */
  filesOutside (group: string): string[] {
    return (this.q.otherGroups.all(group) as Array<{ id: string }>).map(r => r.id)
  }
}
