/**
 * The S3 namespace table (src/store/name-index.ts): last writer wins per
 * name, tombstones, raw-byte key order, the name log and its cursors.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDb } from '../../src/store/db.ts'
import { BUCKET_RECORD_KEY, NameIndex } from '../../src/store/name-index.ts'
import type { Db } from '../../src/store/db.ts'
import type { NameOp } from '../../src/store/name-index.ts'

const op = (key: string, ts: number, over: Partial<NameOp> = {}): NameOp => ({ bucket: 'media', key, group: 'g1', live: true, ts, origin: 'peerA', value: new TextEncoder().encode(`${key}@${ts}`), ...over })

describe('NameIndex', () => {
  let dir: string
  let db: Db
  let names: NameIndex
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsm-names-'))
    db = openDb(dir, { checkpoints: false })
    names = new NameIndex(db)
  })
  afterEach(async () => {
    await db.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('keeps the operation with the later stamp, whatever the order they arrive in', () => {
    const a = op('k', 10, { origin: 'peerA' })
    const b = op('k', 10, { origin: 'peerB' }) // same ts: the higher origin wins
    const c = op('k', 9)
    expect(names.apply(a)).toBe('applied')
    expect(names.apply(c)).toBe('ignored')
    expect(names.apply(b)).toBe('applied')
    expect(names.apply(a)).toBe('ignored')
    expect(names.get('media', 'k')).toMatchObject({ ts: 10, origin: 'peerB', live: true })
    const other = new NameIndex(db)
    expect(other.get('media', 'k')?.origin).toBe('peerB')
  })

  it('reads what is committed, whatever it kept in memory: every write seen, a rolled-back one never', () => {
    names.apply(op('k', 5))
    expect(names.get('media', 'k')?.ts).toBe(5) // now kept in memory
    names.apply(op('k', 6))
    expect(names.get('media', 'k')?.ts).toBe(6)
    // A transaction that writes, reads its own write and then fails leaves the committed row, in memory too.
    expect(() => db.transaction(() => {
      names.apply(op('k', 7))
      expect(names.get('media', 'k')?.ts).toBe(7)
      throw new Error('rolled back')
    })).toThrow('rolled back')
    expect(names.get('media', 'k')?.ts).toBe(6)
    names.apply(op('k', 8, { live: false, value: undefined }))
    expect(names.get('media', 'k')).toMatchObject({ ts: 8, live: false })
    names.forgetOutside('g2')
    expect(names.get('media', 'k')).toBeUndefined()
  })

  it('a delete is a tombstone: an older write cannot bring the key back, a newer one can', () => {
    names.apply(op('k', 5))
    expect(names.apply(op('k', 6, { live: false, value: undefined }))).toBe('applied')
    expect(names.apply(op('k', 5))).toBe('ignored')
    expect(names.get('media', 'k')).toMatchObject({ live: false })
    expect(names.list('media', '', 10)).toEqual([])
    expect(names.listWithTombstones('media', '', 10).map(r => [r.key, r.live])).toEqual([['k', false]])
    expect(names.count('media')).toBe(0)
    expect(names.apply(op('k', 7))).toBe('applied')
    expect(names.count('media')).toBe(1)
  })

  it('lists keys in raw UTF-8 byte order after a key, without the bucket record', () => {
    const keys = ['b', 'a/b', 'A', 'a', 'é', 'a/c', '~', 'z', '日本', '😀']
    names.apply(op(BUCKET_RECORD_KEY, 1))
    keys.forEach((k, i) => names.apply(op(k, 10 + i)))
    const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
    expect(names.list('media', '', 100).map(r => r.key)).toEqual(byBytes)
    expect(names.list('media', 'a/b', 3).map(r => r.key)).toEqual(byBytes.slice(byBytes.indexOf('a/b') + 1, byBytes.indexOf('a/b') + 4))
    expect(names.buckets().map(r => r.bucket)).toEqual(['media'])
    expect(names.count('media')).toBe(keys.length)
  })

  it('numbers every change in its own log, with cursors per peer', () => {
    names.apply(op('x', 1))
    names.apply(op('y', 2))
    names.apply(op('x', 3))
    expect(names.head()).toBe(3)
    // The log is compacted per name: x appears once, at its latest seq.
    expect(names.changesSince('g1', 0, 10).map(r => [r.key, r.seq])).toEqual([['y', 2], ['x', 3]])
    expect(names.changesSince('g2', 0, 10)).toEqual([])
    names.setCursor('peerB', 5)
    names.setCursor('peerB', 4)
    expect(names.cursor('peerB')).toBe(5)
    expect(names.forgetOutside('g2')).toBe(2)
    // Seqs never go back (mates keep cursors on this log): the next change is 4.
    expect(names.head()).toBe(3)
    names.apply(op('z', 4, { group: 'g2' }))
    expect(names.changesSince('g2', 3, 10).map(r => [r.key, r.seq])).toEqual([['z', 4]])
  })
})
