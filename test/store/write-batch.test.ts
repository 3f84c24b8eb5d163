/**
 * Batched writes (src/store/write-batch.ts) on a real database: jobs queued
 * in one turn share one transaction, resolve with their own results in
 * order, and a job that throws is undone and fails alone, even after it
 * wrote; jobs of a later turn get a transaction of their own.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDb } from '../../src/store/db.ts'
import { WriteBatch } from '../../src/store/write-batch.ts'
import type { Db } from '../../src/store/db.ts'

describe('WriteBatch', () => {
  let dir: string
  let db: Db
  let transactions: number
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsm-batch-'))
    db = openDb(dir, { checkpoints: false })
    const inner = db.transaction.bind(db)
    transactions = 0
    db.transaction = <T>(fn: () => T): T => { transactions++; return inner(fn) }
  })
  afterEach(async () => {
    await db.close()
    await rm(dir, { recursive: true, force: true })
  })

  const meta = (key: string): string | undefined => db.getMeta(key)

  it('runs the jobs of one turn in one transaction; a job that throws is undone alone', async () => {
    const batch = new WriteBatch(db)
    const a = batch.run(() => { db.setMeta('a', '1'); return 'A' })
    const b = batch.run(() => { db.setMeta('b', '1'); throw new Error('refused') })
    const c = batch.run(() => { db.setMeta('c', meta('a') ?? 'missing'); return 'C' })
    expect(await a).toBe('A')
    await expect(b).rejects.toThrow('refused')
    expect(await c).toBe('C')
    expect(transactions).toBe(1)
    expect([meta('a'), meta('b'), meta('c')]).toEqual(['1', undefined, '1'])

    // A later turn: a transaction of its own, and what the first one committed is there.
    expect(await batch.run(() => meta('c'))).toBe('1')
    expect(transactions).toBe(2)
  })

  it('runs a job\'s `committed` step right after the commit, in the same turn, and only for jobs that committed', async () => {
    const batch = new WriteBatch(db)
    const seen: string[] = []
    const a = batch.run(() => { db.setMeta('p', '1'); return 'P' }, (v) => { seen.push(`committed ${v} ${meta('p') ?? '-'} ${db.sql.isTransaction ? 'in' : 'after'} the transaction`) })
    const b = batch.run(() => { throw new Error('refused') }, () => { seen.push('never') })
    // Queued behind the flush: runs only after every committed step of the batch ran.
    const later = new Promise<void>(resolve => { setImmediate(() => { seen.push('next task'); resolve() }) })
    expect(await a).toBe('P')
    await expect(b).rejects.toThrow('refused')
    await later
    expect(seen).toEqual(['committed P 1 after the transaction', 'next task'])
  })

  it('undoes a job alone in its turn (no savepoint then) that throws after it wrote; the next turn goes on', async () => {
    const batch = new WriteBatch(db)
    await expect(batch.run(() => { db.setMeta('solo', '1'); throw new Error('refused') })).rejects.toThrow('refused')
    expect(meta('solo')).toBeUndefined()
    expect(db.sql.isTransaction).toBe(false)
    expect(await batch.run(() => { db.setMeta('next', '1'); return 'N' })).toBe('N')
    expect(meta('next')).toBe('1')
  })

  it('fails every job of a batch whose commit fails, and writes nothing of it', async () => {
    const batch = new WriteBatch(db)
    const jobs = [batch.run(() => { db.setMeta('x', '1') }), batch.run(() => { db.setMeta('y', '1') })]
    db.sql.exec('BEGIN') // the batch cannot begin its own: as if the database failed under it
    await Promise.all(jobs.map(async j => expect(j).rejects.toThrow()))
    db.sql.exec('ROLLBACK')
    expect([meta('x'), meta('y')]).toEqual([undefined, undefined])
  })
})
