/** A started LocalStore for store tests: checkpoints off, space without limit. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDb } from '../../src/store/db.ts'
import { LocalStore } from '../../src/store/local-store.ts'
import type { Db } from '../../src/store/db.ts'
import type { LocalStoreInit } from '../../src/store/local-store.ts'

export interface TempStore { store: LocalStore, db: Db, dir: string, close: () => Promise<void> }

/** Open a store on `dir` (a new temporary directory if none); `close` stops it and closes its database, leaving the directory. */
export async function openTempStore (dir?: string, init: Partial<LocalStoreInit> = {}): Promise<TempStore> {
  const at = dir ?? await mkdtemp(join(tmpdir(), 'dsm-store-'))
  const db = openDb(at, { checkpoints: false })
  const store = new LocalStore({ db, dataDir: at, reserve: { bytes: 0 }, capacity: async () => ({ total: 2 ** 40, free: 2 ** 40 }), ...init })
  await store.start()
  return { store, db, dir: at, close: async () => { await store.stop(); await db.close() } }
}

/** `openTempStore` in a new directory (or `dir`), stopped and removed by `cleanup`. */
export async function tempStore (cleanup: Array<() => Promise<void>>, init: Partial<LocalStoreInit> = {}, dir?: string): Promise<TempStore> {
  const t = await openTempStore(dir, init)
  cleanup.push(async () => { await t.close(); await rm(t.dir, { recursive: true, force: true }) })
  return t
}
