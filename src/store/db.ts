/**
 * The node's embedded database: Node's built-in `node:sqlite` (SQLite in WAL
 * mode). Chosen over classic-level because the index needs transactions across
 * several tables (files, chunk references, group log) and ordered range
 * queries on the log, and because it ships with Node: no native build.
 * Schema changes are numbered migrations tracked in `PRAGMA user_version`.
 *
 * Durability is ours, not SQLite's: node:sqlite runs on the event loop, and a
 * commit with synchronous=FULL blocks it for an fsync. Commits here write the
 * WAL (page cache) and return; `durable()` then fdatasyncs the WAL file on
 * libuv's thread pool, one fdatasync for every commit made since the last
 * one began (group commit). A transaction is durable once its `durable()`
 * resolves, exactly as if SQLite had synced it. Checkpoints (copying the WAL
 * into the database, with their own syncs) run in a worker thread
 * (./checkpointer.ts), never on the event loop.
 */
import { fdatasync, mkdirSync, openSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { promisify } from 'node:util'
import { DatabaseDamagedError, DatabaseVersionError } from '../errors.ts'
import { Checkpointer } from './checkpointer.ts'
import { GroupCommit } from './group-commit.ts'

const fdatasyncAsync = promisify(fdatasync)

export const DB_FILE_NAME = 'dsm.db'

const MIGRATIONS: string[] = [
  // 1: node metadata (group assignment, ...)
  'CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;',
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
   CREATE TABLE sync_cursors (source TEXT PRIMARY KEY, seq INTEGER NOT NULL) STRICT;`,
  // 3: chunk locations (./chunk-store.ts): small chunks inline, the others in volume files; per-leaf SHA-256 and
  // CRC-32. Uploads prepared but not yet decided (replica/commit.ts).
  `CREATE TABLE chunks (
     digest BLOB PRIMARY KEY,
     volume INTEGER NOT NULL,
     offset INTEGER NOT NULL,
     length INTEGER NOT NULL,
     leaves BLOB NOT NULL,
     crcs BLOB NOT NULL,
     data BLOB
   ) STRICT;
   CREATE INDEX chunks_by_volume ON chunks (volume, offset);
   CREATE TABLE prepared (
     id TEXT NOT NULL,
     ts INTEGER NOT NULL,
     origin TEXT NOT NULL,
     grp TEXT NOT NULL,
     manifest BLOB NOT NULL,
     created_at INTEGER NOT NULL,
     copies INTEGER NOT NULL,
     members TEXT NOT NULL,
     at INTEGER NOT NULL,
     PRIMARY KEY (id, ts, origin)
   ) STRICT;`,
  // 4: the S3 namespace (./name-index.ts): buckets and their keys, each row the latest operation on it
  // (last-writer-wins on (ts, origin)), with their own log (\`seq\`) and cursors, synced like the files' log.
  `CREATE TABLE names (
     bucket TEXT NOT NULL,
     key TEXT NOT NULL,
     grp TEXT NOT NULL,
     live INTEGER NOT NULL CHECK (live IN (0, 1)),
     ts INTEGER NOT NULL,
     origin TEXT NOT NULL,
     seq INTEGER NOT NULL UNIQUE,
     value BLOB,
     PRIMARY KEY (bucket, key)
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX names_by_group_seq ON names (grp, seq);
   CREATE TABLE name_cursors (source TEXT PRIMARY KEY, seq INTEGER NOT NULL) STRICT;`,
  // 5: deleted files whose chunks stay for the reads under way (./lingering.ts): kept here so that a crash during
  // the grace does not leave their chunks indexed for ever; the next start collects them.
  `CREATE TABLE lingering (
     file_id TEXT PRIMARY KEY,
     manifest BLOB NOT NULL,
     digests BLOB NOT NULL,
     until INTEGER NOT NULL
   ) STRICT;`,
  // 6: files to delete because the name that owned them was replaced or removed here (./reclaim-queue.ts).
  `CREATE TABLE reclaim (
     file_id TEXT PRIMARY KEY,
     since INTEGER NOT NULL,
     tries INTEGER NOT NULL DEFAULT 0,
     next INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX reclaim_by_next ON reclaim (next);`,
  // 7: an upload prepared with an S3 key record that commits with it (replica/ingest.ts): the record's
  // operation, applied when the upload commits, dropped when it aborts.
  `ALTER TABLE prepared ADD COLUMN name_bucket TEXT;
   ALTER TABLE prepared ADD COLUMN name_key TEXT;
   ALTER TABLE prepared ADD COLUMN name_live INTEGER;
   ALTER TABLE prepared ADD COLUMN name_ts INTEGER;
   ALTER TABLE prepared ADD COLUMN name_origin TEXT;
   ALTER TABLE prepared ADD COLUMN name_value BLOB;
   ALTER TABLE prepared ADD COLUMN name_reclaims INTEGER;`,
  // 8: pending files, which every sync round lists: without this index the list scanned every row of the
  // file index (a file is pending only while its chunks are fetched, so the index stays small).
  'CREATE INDEX files_pending ON files (seq) WHERE state = \'pending\';',
  // 9: a one-chunk file keeps its chunk's digest in its own row, not in `file_chunks` (./file-index.ts): an add
  // writes one row and one by-digest entry instead of two rows in two random places (~13 µs and a WAL frame an
  // upload). Files added before keep their `file_chunks` rows; every query reads both.
  `ALTER TABLE files ADD COLUMN chunk BLOB;
   CREATE INDEX files_by_chunk ON files (chunk) WHERE chunk IS NOT NULL;`,
  // 10: the newest stamp in one look-up (./local-store.ts start): the clock starts past every stamp the index
  // holds, so an upload takes its stamp without reading the file's row first (a read transaction of its own
  // every upload, ~18 µs on the coordinator). Stamps grow with time: its inserts land on its last page.
  'CREATE INDEX files_by_ts ON files (ts);'
]

export interface Db {
  readonly sql: DatabaseSync
  getMeta(key: string): string | undefined
  setMeta(key: string, value: string | undefined): void
  /** Run `fn` in one transaction: all of it commits, or none (not yet durable: see `durable`). */
  transaction<T>(fn: () => T): T
  /**
   * Run reads in one read transaction (joining a transaction under way). A statement outside any
   * transaction is a read transaction of its own — its locks taken and dropped — ~4× the cost of the
   * same look-up inside one (issue 23): many look-ups in a row belong in here.
   */
  read<T>(fn: () => T): T
  /** Resolves once every transaction committed before the call is on disk (one shared fdatasync). */
  durable(): Promise<void>
  /** WAL syncs done (group commits), for metrics and tests. */
  readonly syncs: number
  close(): Promise<void>
}

export interface DbInit {
  /** Run WAL checkpoints in a worker (default true; the crash tests keep every commit in the WAL). */
  checkpoints?: boolean
  /** How the WAL is forced to disk (default: fdatasync on libuv's pool; the crash tests record what each sync covered). */
  syncWal?: (fd: number) => Promise<void>
}

/** SQLite's words for a file that is not a sound database (SQLITE_CORRUPT, SQLITE_NOTADB). */
const DAMAGED = /malformed|not a database|file is encrypted|corrupt/i

/**
 * Open (or create) the database. A damaged file is named with the way out:
 * the node's index can be rebuilt from its group (`dsm node --rebuild`).
 */
export function openDb (dataDir: string, init: DbInit = {}): Db {
  mkdirSync(dataDir, { recursive: true })
  const path = join(dataDir, DB_FILE_NAME)
  try {
    return openSound(path, init)
  } catch (err) {
    if (!DAMAGED.test((err as Error).message)) throw err
    throw new DatabaseDamagedError(`the database ${path} is damaged (${(err as Error).message}). ` +
      'Rebuild this member from its group: dsm node --rebuild (the damaged file is moved aside, chunk files that verify are kept, the index is synced again from the group mates)', { cause: err })
  }
}

function openSound (path: string, init: DbInit): Db {
  const sql = new DatabaseSync(path)
  try {
    // WAL, synced by us (durable()); checkpoints only in the worker: the event loop never waits for the disk.
    sql.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;')
    migrate(sql)
    // Touch every table once: a truncated file often opens fine and fails at its first read.
    sql.exec('SELECT count(*) FROM meta; SELECT max(seq) FROM files; SELECT count(*) FROM sync_cursors; SELECT count(*) FROM prepared;')
  } catch (err) {
    sql.close()
    throw err
  }
  return wrap(sql, path, init)
}

function wrap (sql: DatabaseSync, path: string, init: DbInit): Db {
  // The WAL exists once the database was written (the migrations above); it keeps its inode while a connection is open.
  const wal = openSync(`${path}-wal`, 'r')
  const syncWal = init.syncWal ?? (async (fd: number) => { await fdatasyncAsync(fd) })
  const commit = new GroupCommit(async () => { await syncWal(wal) })
  const checkpointer = init.checkpoints === false ? undefined : new Checkpointer(path)
  const get = sql.prepare('SELECT value FROM meta WHERE key = ?')
  const put = sql.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
  const del = sql.prepare('DELETE FROM meta WHERE key = ?')
  // Prepared once: a transaction per batch of writes is the hot path (exec() parses its SQL every time).
  const begin = sql.prepare('BEGIN IMMEDIATE')
  const beginRead = sql.prepare('BEGIN')
  const commitTx = sql.prepare('COMMIT')
  const rollback = sql.prepare('ROLLBACK')
  let depth = 0
  return {
    sql,
    getMeta: (key) => (get.get(key) as { value: string } | undefined)?.value,
    setMeta: (key, value) => { value === undefined ? del.run(key) : put.run(key, value) },
    transaction<T> (fn: () => T): T {
      // Nested calls join the outer transaction.
      if (depth > 0) return fn()
      begin.run()
      depth++
      try {
        const result = fn()
        commitTx.run()
        return result
      } catch (err) {
        rollback.run()
        throw err
      } finally {
        depth--
      }
    },
    read<T> (fn: () => T): T {
      if (depth > 0) return fn()
      beginRead.run()
      depth++
      try {
        return fn()
      } finally {
        depth--
        commitTx.run()
      }
    },
    durable: async () => commit.sync(),
    get syncs () { return commit.flushes },
    close: async () => {
      // A WAL sync in flight finishes on its descriptor before the descriptor closes.
      if (commit.busy) await commit.sync().catch(() => {})
      await checkpointer?.stop()
      if (sql.isOpen) sql.close()
      closeSync(wal)
    }
  }
}

function migrate (sql: DatabaseSync): void {
  const { user_version: version } = sql.prepare('PRAGMA user_version').get() as { user_version: number }
  // A newer schema may keep what this code looks for elsewhere (migration 9: a one-chunk file's digest in its row,
  // which older code would not see, and so collect the chunk as unreferenced).
  if (version > MIGRATIONS.length) {
    throw new DatabaseVersionError(`the database was written by a newer dsm (schema ${version}; this one knows ${MIGRATIONS.length}): run that version, or a newer one`)
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    sql.exec('BEGIN')
    sql.exec(MIGRATIONS[v] ?? '')
    sql.exec(`PRAGMA user_version = ${v + 1}`)
    sql.exec('COMMIT')
  }
}
