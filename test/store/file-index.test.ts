import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { HybridClock } from '../../src/content/clock.ts'
import { DatabaseSync } from 'node:sqlite'
import { DB_FILE_NAME, openDb } from '../../src/store/db.ts'
import { FileIndex } from '../../src/store/file-index.ts'
import type { Db } from '../../src/store/db.ts'
import type { AddOp } from '../../src/store/file-index.ts'

let dir: string
let db: Db
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'dsm-index-')); db = openDb(dir) })
afterEach(async () => { db.close(); await rm(dir, { recursive: true, force: true }) })

const add = (ts: number, origin = 'A'): AddOp => ({
  kind: 'add', id: 'f1', group: 'g1', ts, origin, manifest: new Uint8Array([1]), size: 10, name: 'n', mime: 'm', createdAt: 1, chunks: [new Uint8Array(32)]
})

describe('file index: last writer wins, tombstones, log order', () => {
  it('a delete stamped after the add wins in any order; the older add cannot revive it', () => {
    const a = new FileIndex(db)
    expect(a.apply({ kind: 'delete', id: 'f1', group: 'g1', ts: 20, origin: 'B' }, false)).toBe('deleted')
    expect(a.apply(add(10), true)).toBe('ignored')
    expect(a.get('f1')?.state).toBe('deleted')
    expect(a.apply(add(30), true)).toBe('added')
    expect(a.get('f1')?.state).toBe('present')
  })

  it('numbers every change in log order and lists changes after a position', () => {
    const a = new FileIndex(db)
    a.apply(add(10), false)
    a.apply({ ...add(11), id: 'f2' }, true)
    a.apply({ kind: 'delete', id: 'f1', group: 'g1', ts: 12, origin: 'A' }, false)
    expect(a.head()).toBe(3)
    expect(a.changesSince('g1', 0, 10).map(r => [r.id, r.state, r.seq])).toEqual([['f2', 'present', 2], ['f1', 'deleted', 3]])
    expect(a.changesSince('g1', 2, 10).map(r => r.id)).toEqual(['f1'])
    expect(a.changesSince('g2', 0, 10)).toEqual([])
    expect(a.isReferenced(new Uint8Array(32))).toBe(true) // f2 still uses it
  })

  it('equal stamps are the same operation; ties on ts break by origin', () => {
    const a = new FileIndex(db)
    expect(a.apply(add(10, 'A'), true)).toBe('added')
    expect(a.apply(add(10, 'A'), true)).toBe('ignored')
    expect(a.apply({ kind: 'delete', id: 'f1', group: 'g1', ts: 10, origin: 'B' }, false)).toBe('deleted')
    expect(a.apply({ kind: 'delete', id: 'f1', group: 'g1', ts: 10, origin: 'A' }, false)).toBe('ignored')
  })

  it('never gives a seq twice: not after a rolled-back change, nor after the newest row was forgotten, nor across a reopen', () => {
    const a = new FileIndex(db)
    a.apply(add(10), true)
    a.apply({ ...add(11), id: 'f2' }, true)
    // A change whose transaction rolls back takes a seq that is then skipped (a gap is harmless).
    expect(() => db.transaction(() => { a.apply({ ...add(12), id: 'f3' }, true); throw new Error('undone') })).toThrow('undone')
    a.forget('f2')
    // A mate whose cursor is at 2 (it applied f2) would never see a change given seq 2 again.
    expect(a.apply({ ...add(13), id: 'f4' }, true)).toBe('added')
    expect(a.get('f4')?.seq).toBeGreaterThan(2)
    const seq4 = a.get('f4')?.seq ?? 0
    a.forget('f4')
    const reopened = new FileIndex(db)
    expect(reopened.head()).toBe(seq4)
    reopened.apply({ ...add(14), id: 'f5' }, true)
    expect(reopened.get('f5')?.seq).toBe(seq4 + 1)
    expect(reopened.changesSince('g1', 0, 10).map(r => r.id)).toEqual(['f1', 'f5'])
  })

  it('keeps sync cursors, never moving them back', () => {
    const a = new FileIndex(db)
    a.setCursor('peer', 5)
    a.setCursor('peer', 3)
    expect(a.cursor('peer')).toBe(5)
    expect(a.cursor('other')).toBe(0)
  })
})

describe('file index: where a file\'s chunks are listed', () => {
  const d = (n: number): Uint8Array => new Uint8Array(32).fill(n)
  const rows = (id: string): number => (db.sql.prepare('SELECT COUNT(*) AS n FROM file_chunks WHERE file_id = ?').get(id) as { n: number }).n

  it('a one-chunk file keeps its digest in its row; files of more chunks, and files added before, in file_chunks — every query reads both', () => {
    const a = new FileIndex(db)
    a.apply({ ...add(10), id: 'one', chunks: [d(1)] }, true)
    a.apply({ ...add(11), id: 'many', chunks: [d(2), d(3), d(2)] }, true)
    // A one-chunk file added before migration 9: its chunk in file_chunks, none in its row.
    a.apply({ ...add(12), id: 'old', chunks: [d(4), d(5)] }, true)
    db.sql.exec("DELETE FROM file_chunks WHERE file_id = 'old' AND idx = 1; UPDATE files SET chunk_count = 1 WHERE id = 'old'")
    expect([rows('one'), rows('many'), rows('old')]).toEqual([0, 3, 1])
    expect(a.chunksOf('one')).toEqual([d(1)])
    expect(a.chunksOf('many')).toEqual([d(2), d(3), d(2)])
    expect(a.chunksOf('old')).toEqual([d(4)])
    expect([1, 2, 3, 4, 5].map(n => a.isReferenced(d(n)))).toEqual([true, true, true, true, false])
    a.apply({ ...add(13), id: 'also-one', chunks: [d(2)] }, true)
    expect(a.filesWithChunk(d(2)).sort()).toEqual(['also-one', 'many'])
    expect(a.liveDigests().map(x => x[0]).sort()).toEqual([1, 2, 3, 4])
    // Deleted: neither kind counts any more, and its row holds no chunk.
    a.apply({ kind: 'delete', id: 'one', group: 'g1', ts: 20, origin: 'A' }, false)
    a.apply({ kind: 'delete', id: 'old', group: 'g1', ts: 20, origin: 'A' }, false)
    expect([a.isReferenced(d(1)), a.isReferenced(d(4)), a.chunksOf('one'), rows('old')]).toEqual([false, false, [], 0])
    expect(a.liveDigests().map(x => x[0]).sort()).toEqual([2, 3])
    // Revived by a newer add: its chunk is back in its row.
    a.apply({ ...add(30), id: 'one', chunks: [d(1)] }, true)
    expect(a.isReferenced(d(1))).toBe(true)
    // The look-ups by digest go through indexes, not a scan of every file.
    const plan = (db.sql.prepare("EXPLAIN QUERY PLAN SELECT 1 FROM files WHERE chunk = ? AND state != 'deleted'").all(d(1)) as Array<{ detail: string }>).map(r => r.detail).join(' ')
    expect(plan).toContain('files_by_chunk')
  })

  it('a database of a newer schema is refused, unchanged: older code would not see where it keeps chunks', async () => {
    const version = (db.sql.prepare('PRAGMA user_version').get() as { user_version: number }).user_version
    db.sql.exec(`PRAGMA user_version = ${version + 1}`)
    await db.close()
    let err: unknown
    try { openDb(dir) } catch (e) { err = e }
    expect((err as Error).name).toBe('DatabaseVersionError')
    expect((err as { code: string }).code).toBe('ERR_DATABASE_VERSION')
    expect((err as Error).message).toMatch(/newer dsm/)
    // Nothing was changed: reopened once the schema is one this code knows, it is as it was.
    const raw = new DatabaseSync(join(dir, DB_FILE_NAME))
    expect((raw.prepare('PRAGMA user_version').get() as { user_version: number }).user_version).toBe(version + 1)
    raw.exec(`PRAGMA user_version = ${version}`)
    raw.close()
    db = openDb(dir)
  })
})

describe('file index: pending files', () => {
  it('lists pending files in log order through their own index, not a scan of every file', () => {
    const a = new FileIndex(db)
    for (let i = 0; i < 50; i++) a.apply({ ...add(10 + i), id: `p${i}` }, i % 10 !== 3)
    a.setState('p13', 'present')
    expect(a.withState('pending').map(r => r.id)).toEqual(['p3', 'p23', 'p33', 'p43'])
    expect(a.withState('pending', 2).map(r => r.id)).toEqual(['p3', 'p23'])
    expect(a.withState('present').length).toBe(46)
    // Every sync round lists them: a scan would cost every file of the node, each round.
    const plan = db.sql.prepare('EXPLAIN QUERY PLAN SELECT * FROM files WHERE state = \'pending\' ORDER BY seq LIMIT 5').all() as Array<{ detail: string }>
    expect(plan.map(p => p.detail).join('; ')).toMatch(/USING INDEX files_pending/)
  })
})

describe('hybrid clock', () => {
  it('never goes backwards and moves past what it observes', () => {
    let wall = 1000
    const clock = new HybridClock(() => wall)
    expect(clock.next()).toBe(1000)
    expect(clock.next()).toBe(1001)
    wall = 500
    expect(clock.next()).toBe(1002)
    clock.observe(5000)
    expect(clock.next()).toBe(5001)
    expect(clock.next(9000)).toBe(9001)
  })
})
