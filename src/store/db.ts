/**
 * The node's embedded database: Node's built-in `node:sqlite` (SQLite in WAL
 * mode). Chosen over classic-level because the index needs transactions across
 * several tables (files, chunk references, group log) and ordered range
 * queries on the log, and because it ships with Node: no native build.
 * Schema changes are numbered migrations tracked in `PRAGMA user_version`.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { DatabaseDamagedError } from '../errors.ts'

export const DB_FILE_NAME = 'dsm.db'

const MIGRATIONS: string[] = [
  // 1: node metadata (group assignment, ...)
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;`,
  // 2: the file index and the group log. One row per file: its latest operation
  // (add or delete, last-writer-wins on (ts, origin)); \`seq\` orders the rows as
  // this node's log, so "changes since seq N" is the log compacted per file.
  `CREATE TABLE files (
     id TEXT PRIMARY KEY,
     grp TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('present', 'pending', 'deleted')),
     ts INTEGER NOT NULL,
     origin TEXT NOT NULL,
     seq INTEGER NOT NULL UNIQUE,
     manifest BLOB,
     size INTEGER NOT NULL DEFAULT 0,
     name TEXT NOT NULL DEFAULT '',
     mime TEXT NOT NULL DEFAULT '',
     created_at INTEGER NOT NULL DEFAULT 0,
     chunk_count INTEGER NOT NULL DEFAULT 0
   ) STRICT;
   CREATE INDEX files_by_group_seq ON files (grp, seq);
   CREATE TABLE file_chunks (
     file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
     idx INTEGER NOT NULL,
     digest BLOB NOT NULL,
     PRIMARY KEY (file_id, idx)
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX file_chunks_by_digest ON file_chunks (digest);
   CREATE TABLE sync_cursors (source TEXT PRIMARY KEY, seq INTEGER NOT NULL) STRICT;`
]

export interface Db {
  readonly sql: DatabaseSync
  getMeta(key: string): string | undefined
  setMeta(key: string, value: string | undefined): void
  /** Run `fn` in one transaction: all of it commits, or none. */
  transaction<T>(fn: () => T): T
  close(): void
}

/** SQLite's words for a file that is not a sound database (SQLITE_CORRUPT, SQLITE_NOTADB). */
const DAMAGED = /malformed|not a database|file is encrypted|corrupt/i

/**
 * Open (or create) the database. A damaged file is named with the way out:
 * the node's index can be rebuilt from its group (`dsm node --rebuild`).
 */
export function openDb (dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true })
  const path = join(dataDir, DB_FILE_NAME)
  try {
    return openSound(path)
  } catch (err) {
    if (!DAMAGED.test((err as Error).message)) throw err
    throw new DatabaseDamagedError(`the database ${path} is damaged (${(err as Error).message}). ` +
      'Rebuild this member from its group: dsm node --rebuild (the damaged file is moved aside, chunk files that verify are kept, the index is synced again from the group mates)', { cause: err })
  }
}

function openSound (path: string): Db {
  const sql = new DatabaseSync(path)
  try {
    // WAL + synchronous=FULL: a committed transaction survives power loss.
    sql.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;')
    migrate(sql)
    // Touch every table once: a truncated file often opens fine and fails at its first read.
    sql.exec('SELECT count(*) FROM meta; SELECT max(seq) FROM files; SELECT count(*) FROM sync_cursors;')
  } catch (err) {
    sql.close()
    throw err
  }
  return wrap(sql)
}

function wrap (sql: DatabaseSync): Db {
  const get = sql.prepare('SELECT value FROM meta WHERE key = ?')
  const put = sql.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
  const del = sql.prepare('DELETE FROM meta WHERE key = ?')
  let depth = 0
  return {
    sql,
    getMeta: (key) => (get.get(key) as { value: string } | undefined)?.value,
    setMeta: (key, value) => { value === undefined ? del.run(key) : put.run(key, value) },
    transaction<T> (fn: () => T): T {
      // Nested calls join the outer transaction.
      if (depth > 0) return fn()
      sql.exec('BEGIN IMMEDIATE')
      depth++
      try {
        const result = fn()
        sql.exec('COMMIT')
        return result
      } catch (err) {
        sql.exec('ROLLBACK')
        throw err
      } finally {
        depth--
      }
    },
    close: () => { if (sql.isOpen) sql.close() }
  }
}

function migrate (sql: DatabaseSync): void {
  const { user_version: version } = sql.prepare('PRAGMA user_version').get() as { user_version: number }
  for (let v = version; v < MIGRATIONS.length; v++) {
    sql.exec('BEGIN')
    sql.exec(MIGRATIONS[v] ?? '')
    sql.exec(`PRAGMA user_version = ${v + 1}`)
    sql.exec('COMMIT')
  }
}
