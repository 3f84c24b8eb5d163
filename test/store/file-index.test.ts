import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { HybridClock } from '../../src/content/clock.ts'
import { openDb } from '../../src/store/db.ts'
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
