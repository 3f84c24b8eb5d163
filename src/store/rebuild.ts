/**
 * `dsm node --rebuild`: the node's index is rebuilt from its group. The
 * database (and its WAL) is moved aside, not deleted — an operator may still
 * want to look at it — and the node starts with an empty index in the group
 * it belongs to (node.json): group sync pulls every mate's log again, and a
 * chunk already on disk is reused when it still verifies, fetched otherwise.
 * Chunk files no file refers to are collected only once the node is ACTIVE
 * again (until then they are the very chunks it hopes to reuse).
 */
import { existsSync } from 'node:fs'
import { mkdir, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { DB_FILE_NAME } from './db.ts'
import { fsyncDir } from '../util/fs.ts'

/** Move the database files into `<data>/damaged-<time>/`; returns that directory (undefined when there was no database). */
export async function moveDatabaseAside (dataDir: string, now = new Date()): Promise<string | undefined> {
  const files = [DB_FILE_NAME, `${DB_FILE_NAME}-wal`, `${DB_FILE_NAME}-shm`].filter(f => existsSync(join(dataDir, f)))
  if (files.length === 0) return undefined
  const dir = join(dataDir, `damaged-${now.toISOString().replaceAll(':', '-')}`)
  await mkdir(dir, { recursive: true })
  for (const f of files) await rename(join(dataDir, f), join(dir, f))
  await fsyncDir(dataDir)
  return dir
}

/**
 * The group an older node kept in its database's meta table, read from a
 * moved-aside (maybe damaged) copy: best effort, undefined when unreadable.
 */
export function readLegacyGroup (dir: string): { group?: string, spare: boolean } {
  try {
    const sql = new DatabaseSync(join(dir, DB_FILE_NAME), { readOnly: true })
    try {
      const get = (key: string): string | undefined => (sql.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
      const group = get('group')
      return { ...(group != null ? { group } : {}), spare: get('spare') === '1' }
    } finally {
      sql.close()
    }
  } catch {
    return { spare: false }
  }
}
