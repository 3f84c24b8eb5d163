/**
 * The S3 namespace, replicated (src/replica/names.ts, namespace.ts): a
 * bucket owned by one group, keys written through any node, read and listed
 * from every node at once, concurrent writes of one key resolved the same
 * way everywhere, deletes gone everywhere, a member that was away caught up.
 */
import { describe, expect, it } from 'vitest'
import { mergePages } from '../../src/replica/names.ts'
import { createSimCluster } from '../sim/cluster.ts'
import { encodeMessage } from '../../src/wire/codec.ts'
import { ObjectRecordSchema } from '../../src/wire/names.ts'
import type { Namespace } from '../../src/replica/namespace.ts'
import type { NameOp } from '../../src/store/name-index.ts'
import type { ObjectRecord } from '../../src/wire/names.ts'
import type { SimCluster } from '../sim/cluster.ts'

const record = (file: string, size = 10): ObjectRecord => ({ file, size, etag: `"${file.slice(0, 8)}"`, mime: 'video/mp4', meta: { title: file }, modified: Date.now() })
const ns = (c: SimCluster, i: number): Namespace => c.node(i).replica.names

describe('the S3 namespace', () => {
  it('a key written through any node is read and listed from every node at once; last writer wins; deletes are gone everywhere', async () => {
    // g1 = {0,1}, g2 = {2,3}: a bucket lives in one of them; every node answers for it.
    const c = await createSimCluster({ nodes: 4, groupSize: 2, sequential: true, joinSettleMs: 300 })
    try {
      await c.ready()
      await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.groups().length === 2), { message: 'two groups everywhere' })
      const group = await ns(c, 3).createBucket('media', { created: Date.now(), publicRead: false })
      expect(['g1', 'g2']).toContain(group)
      await expect(ns(c, 0).createBucket('media', { created: Date.now(), publicRead: false })).rejects.toMatchObject({ code: 'ERR_BUCKET_EXISTS' })
      for (const i of c.upIndexes()) expect((await ns(c, i).bucket('media')).group).toBe(group)

      // Read-after-write and list-after-write from every node, for every write, through every node.
      for (const [k, writer] of [[0, 0], [1, 1], [2, 2], [3, 3]] as const) {
        await ns(c, writer).putObject('media', `clips/${k}.mp4`, record(`file${k}`))
        for (const i of c.upIndexes()) {
          expect((await ns(c, i).getObject('media', `clips/${k}.mp4`))?.file).toBe(`file${k}`)
          expect((await ns(c, i).list('media', '', 100)).keys.map(x => x.key)).toContain(`clips/${k}.mp4`)
        }
      }
      // Two writers of one key at once: whichever stamp is later wins, the same on every node.
      await Promise.all([ns(c, 0).putObject('media', 'race', record('fromZero')), ns(c, 2).putObject('media', 'race', record('fromTwo'))])
      const winners = await Promise.all(c.upIndexes().map(async i => (await ns(c, i).getObject('media', 'race'))?.file))
      expect(new Set(winners).size).toBe(1)
      // Deleted: gone everywhere, at once; the bucket cannot be deleted while it holds keys.
      await expect(ns(c, 1).deleteBucket('media')).rejects.toMatchObject({ code: 'ERR_BUCKET_NOT_EMPTY' })
      await ns(c, 2).deleteObject('media', 'clips/1.mp4')
      for (const i of c.upIndexes()) {
        expect(await ns(c, i).getObject('media', 'clips/1.mp4')).toBeUndefined()
        expect((await ns(c, i).list('media', '', 100)).keys.map(x => x.key)).toEqual(['clips/0.mp4', 'clips/2.mp4', 'clips/3.mp4', 'race'])
      }
      expect((await ns(c, 0).list('media', 'clips/0.mp4', 2))).toMatchObject({ keys: [{ key: 'clips/2.mp4' }, { key: 'clips/3.mp4' }], next: 'clips/3.mp4' })
      await expect(ns(c, 1).getObject('nothing', 'x')).rejects.toMatchObject({ code: 'ERR_NO_SUCH_BUCKET' })
      expect((await ns(c, 1).buckets()).map(b => b.name)).toEqual(['media'])
    } finally {
      await c.close()
    }
  })

  it('a write that follows an acknowledged one wins, even through a member that missed it and whose clock is a minute behind', async () => {
    const c = await createSimCluster({ nodes: 3, groupSize: 3, configure: () => ({ group: 'g1' }) })
    try {
      await c.ready()
      await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.groupMembers('g1').filter(m => m.state === 'ACTIVE').length === 3), { message: 'g1 whole' })
      await ns(c, 0).createBucket('skew', { created: Date.now(), publicRead: false })
      // Node 2's wall clock runs a minute behind (its stamps still move past every stamp it has seen).
      Object.defineProperty(c.node(2).store.clock, 'wall', { value: () => Date.now() - 60_000 })
      // A write acknowledged at the copy floor by nodes 0 and 1 whose push node 2 missed (and, its sync paused, did
      // not pull either).
      await c.node(2).replica.sync.stop()
      const first: NameOp = { bucket: 'skew', key: 'k', group: 'g1', live: true, ts: c.node(0).store.clock.next(), origin: c.peerId(0), value: encodeMessage(ObjectRecordSchema, record('first')) }
      for (const i of [0, 1]) await c.node(i).store.applyName(first)
      expect(c.node(2).store.names.get('skew', 'k')).toBeUndefined()
      // Then a write through node 2: stamped by its clock, it would lose to the first everywhere, though later.
      await ns(c, 2).putObject('skew', 'k', record('second'))
      await c.node(2).replica.sync.start()
      for (const i of c.upIndexes()) expect((await ns(c, i).getObject('skew', 'k'))?.file, `through node ${i}`).toBe('second')
      await c.waitFor(() => c.upIndexes().every(i => c.node(i).store.names.get('skew', 'k')?.ts !== first.ts), { message: 'every member holds the second write' })
    } finally {
      await c.close()
    }
  })

  it('a member that was away catches up with the name log: writes and a delete made while it was down', async () => {
    const c = await createSimCluster({ nodes: 3, groupSize: 3, configure: () => ({ group: 'g1' }) })
    try {
      await c.ready()
      await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.groupMembers('g1').filter(m => m.state === 'ACTIVE').length === 3), { message: 'g1 whole' })
      await ns(c, 0).createBucket('photos', { created: Date.now(), publicRead: true })
      await c.kill(2)
      await c.waitFor(() => c.node(0).membership.view.get(c.peerId(2))?.state === 'OFFLINE', { message: 'member 2 OFFLINE' })
      for (let k = 0; k < 30; k++) await ns(c, k % 2).putObject('photos', `p${String(k).padStart(3, '0')}`, record(`f${k}`))
      await ns(c, 1).deleteObject('photos', 'p007')
      const back = await c.restart(2)
      await c.waitFor(() => back.status.state === 'ACTIVE' && back.store.names.count('photos') === 29, { message: 'member 2 caught up', timeoutMs: 30_000 })
      expect(back.store.names.get('photos', 'p007')?.live).toBe(false)
      expect((await ns(c, 2).list('photos', '', 1000)).keys).toHaveLength(29)
    } finally {
      await c.close()
    }
  })
})

describe('merging members\' list pages', () => {
  const row = (key: string, ts: number, live = true): { bucket: string, key: string, live: boolean, ts: number, origin: string, seq: number } => ({ bucket: 'b', key, live, ts, origin: 'o', seq: ts })

  it('takes the newest row per key, drops tombstones, and stops where a full page stopped', () => {
    const a = { rows: [row('a', 1), row('b', 5, false), row('c', 1)], more: true }
    const b = { rows: [row('a', 2, false), row('b', 4), row('d', 1)], more: false }
    const merged = mergePages([a, b])
    // a: deleted later on b; b: deleted later on a; c: live; d: beyond a's full page (a knows nothing past c yet).
    expect(merged.rows.map(r => r.key)).toEqual(['c'])
    expect(merged).toMatchObject({ more: true, last: 'c' })
    expect(mergePages([{ rows: [row('é', 1), row('z', 1)], more: false }]).rows.map(r => r.key)).toEqual(['z', 'é'])
  })
})
