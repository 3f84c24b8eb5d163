/**
 * Uploads prepared on this node but not yet decided: their chunks are
 * durable here, the file is invisible (no row in the file index, so no read,
 * listing or sync sees it). One row per upload, keyed by its stamp
 * (id, ts, origin) — two uploads of the same bytes are two stamps. The row
 * carries what deciding needs without the coordinator: how many copies the
 * upload needed and which members were asked (see replica/commit.ts).
 */
import type { Db } from './db.ts'
import type { StatementSync } from 'node:sqlite'

export interface PreparedUpload {
  id: string
  ts: number
  /** The coordinator (the stamp's origin). */
  origin: string
  group: string
  manifest: Uint8Array
  createdAt: number
  /** Copies the upload needed to be acknowledged (the coordinator's included). */
  copies: number
  /** Peer ids of the members the coordinator sent it to (itself excluded). */
  members: string[]
  /** Local time (ms) it was prepared here. */
  at: number
  /** An S3 key record that commits with the upload: applied with it, dropped if it aborts. */
  name?: PreparedName
}

/** A key record's operation carried by an upload (the group is the upload's). */
export interface PreparedName {
  bucket: string
  key: string
  live: boolean
  ts: number
  origin: string
  value?: Uint8Array
  /** This copy queues the file the replaced value owned for reclaim (the coordinator's copy only). */
  reclaims: boolean
}

export interface UploadKey { id: string, ts: number, origin: string }

interface Row {
  id: string,
  ts: number,
  origin: string,
  grp: string,
  manifest: Uint8Array,
  created_at: number,
  copies: number,
  members: string,
  at: number
  name_bucket: string | null,
  name_key: string | null,
  name_live: number | null,
  name_ts: number | null,
  name_origin: string | null,
  name_value: Uint8Array | null,
  name_reclaims: number | null
}

function nameOf (r: Row): PreparedName | undefined {
  if (r.name_bucket == null || r.name_key == null || r.name_ts == null || r.name_origin == null) return undefined
  return { bucket: r.name_bucket, key: r.name_key, live: r.name_live === 1, ts: r.name_ts, origin: r.name_origin, ...(r.name_value != null ? { value: r.name_value } : {}), reclaims: r.name_reclaims === 1 }
}

const toUpload = (r: Row): PreparedUpload => {
  const name = nameOf(r)
  return { id: r.id, ts: r.ts, origin: r.origin, group: r.grp, manifest: r.manifest, createdAt: r.created_at, copies: r.copies, members: JSON.parse(r.members) as string[], at: r.at, ...(name != null ? { name } : {}) }
}

function statements (db: Db) {
  const p = (sql: string): StatementSync => db.sql.prepare(sql)
  return {
    insert: p(`INSERT OR REPLACE INTO prepared (id, ts, origin, grp, manifest, created_at, copies, members, at,
                 name_bucket, name_key, name_live, name_ts, name_origin, name_value, name_reclaims)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    named: p('SELECT COUNT(*) AS n FROM prepared WHERE name_bucket IS NOT NULL'),
    get: p('SELECT * FROM prepared WHERE id = ? AND ts = ? AND origin = ?'),
    forFile: p('SELECT * FROM prepared WHERE id = ?'),
    delete: p('DELETE FROM prepared WHERE id = ? AND ts = ? AND origin = ?'),
    olderThan: p('SELECT * FROM prepared WHERE at <= ? ORDER BY at LIMIT ?'),
    all: p('SELECT * FROM prepared'),
    count: p('SELECT COUNT(*) AS n FROM prepared'),
    hasFile: p('SELECT 1 FROM prepared WHERE id = ? LIMIT 1')
  }
}

export class PreparedLog {
  private readonly q: ReturnType<typeof statements>

  constructor (db: Db) {
    this.q = statements(db)
  }

  /** Record a prepared upload (inside the caller's transaction). */
  insert (u: PreparedUpload): void {
    const n = u.name
    this.q.insert.run(u.id, u.ts, u.origin, u.group, u.manifest, u.createdAt, u.copies, JSON.stringify(u.members), u.at,
      n?.bucket ?? null, n?.key ?? null, n == null ? null : n.live ? 1 : 0, n?.ts ?? null, n?.origin ?? null, n?.value ?? null, n == null ? null : n.reclaims ? 1 : 0)
  }

  /** Prepared uploads that carry a key record. */
  get named (): number {
    return (this.q.named.get() as { n: number }).n
  }

  get (k: UploadKey): PreparedUpload | undefined {
    const r = this.q.get.get(k.id, k.ts, k.origin) as Row | undefined
    return r == null ? undefined : toUpload(r)
  }

  /** Prepared uploads of a file (usually none, or one). */
  forFile (id: string): PreparedUpload[] {
    return (this.q.forFile.all(id) as unknown as Row[]).map(toUpload)
  }

  /** Is an upload of this file prepared here and undecided? */
  hasFile (id: string): boolean {
    return this.q.hasFile.get(id) != null
  }

  delete (k: UploadKey): boolean {
    return this.q.delete.run(k.id, k.ts, k.origin).changes > 0
  }

  /** Uploads prepared at or before `at` (local ms), oldest first. */
  olderThan (at: number, limit = 1000): PreparedUpload[] {
    return (this.q.olderThan.all(at, limit) as unknown as Row[]).map(toUpload)
  }

  all (): PreparedUpload[] {
    return (this.q.all.all() as unknown as Row[]).map(toUpload)
  }

  get size (): number {
    return (this.q.count.get() as { n: number }).n
  }
}
