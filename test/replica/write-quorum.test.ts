/**
 * `--write-quorum N` (here ?quorum=2 on a group of 3): the upload is
 * acknowledged once N copies are durably prepared — the slow member does not
 * hold it back — and that member follows: it commits when its prepare
 * completes, or, when its prepare failed, sync brings it the file. With the
 * default quorum ("all") the same slow member holds the acknowledgement
 * until it is done. Small (one-chunk, the upload channel) and multi-chunk
 * uploads (replication streams) alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimCluster, readWhole } from '../sim/cluster.ts'
import { randomBytes, sha256hex, upload } from '../helpers/data.ts'
import type { SimCluster } from '../sim/cluster.ts'
import type { LocalStore } from '../../src/store/local-store.ts'

const url = (c: SimCluster, i: number): string => c.node(i).http?.url ?? ''
const SLOW = 2

/** Hold a member's prepares until released (a slow disk), or fail them (a broken one). */
class PrepareGate {
  private readonly store: LocalStore
  private gate = Promise.withResolvers<void>()
  held = 0
  fail = false

  constructor (store: LocalStore) {
    this.store = store
    const proto = Object.getPrototypeOf(store) as LocalStore
    store.prepare = async (...args) => {
      this.held++
      await this.gate.promise
      if (this.fail) throw new Error('injected: this disk fails prepares')
      return proto.prepare.apply(store, args)
    }
  }

  release (): void {
    this.gate.resolve()
    this.gate = Promise.withResolvers<void>()
  }

  restore (): void {
    this.release()
    Reflect.deleteProperty(this.store, 'prepare')
  }
}

describe('--write-quorum N', () => {
  let c: SimCluster
  beforeAll(async () => {
    c = await createSimCluster({ nodes: 3, http: true, configure: () => ({ group: 'g1', syncIntervalMs: 500 }) })
    await c.ready()
    await c.waitFor(() => [0, 1, 2].every(i => c.node(i).membership.view.groupMembers('g1').filter(m => m.state === 'ACTIVE').length === 3), { message: 'g1 whole' })
  })
  afterAll(async () => { await c.close() })

  it.each([['a one-chunk upload', 4096], ['a multi-chunk upload', 3 * 1024 * 1024 + 5]])('%s with quorum 2 is acknowledged while the third member is still preparing; it commits when done', async (_, size) => {
    const gate = new PrepareGate(c.node(SLOW).store)
    try {
      const data = randomBytes(size, size)
      const up = await upload(url(c, 0), data, `q2-${size}.bin`, { group: 'g1', quorum: '2' })
      expect(up.status, JSON.stringify(up.body)).toBe(201)
      const id = up.body.id as string
      expect((up.body.replicas as string[]).sort()).toEqual([c.peerId(0), c.peerId(1)].sort())
      expect(gate.held, 'the slow member was asked').toBe(1)
      expect(c.node(SLOW).store.index.get(id), 'the slow member has not stored it yet').toBeUndefined()
      expect(sha256hex(await readWhole(c.node(1), id))).toBe(sha256hex(data))
      gate.release()
      // Present (the decision, or a sync pull that came first) and its prepared copy decided.
      await c.waitFor(() => c.node(SLOW).store.index.get(id)?.state === 'present' && c.node(SLOW).store.prepared.forFile(id).length === 0, { message: 'the slow member follows' })
      expect(sha256hex(await readWhole(c.node(SLOW), id))).toBe(sha256hex(data))
    } finally {
      gate.restore()
    }
  })

  it('a member whose prepare fails gets the file through sync', async () => {
    const gate = new PrepareGate(c.node(SLOW).store)
    try {
      gate.fail = true
      gate.release()
      const data = randomBytes(50_000, 11)
      const up = await upload(url(c, 1), data, 'q2-failed.bin', { group: 'g1', quorum: '2' })
      expect(up.status, JSON.stringify(up.body)).toBe(201)
      expect((up.body.replicas as string[]).sort()).toEqual([c.peerId(0), c.peerId(1)].sort())
      gate.restore()
      const id = up.body.id as string
      await c.waitFor(() => c.node(SLOW).store.index.get(id)?.state === 'present', { timeoutMs: 30_000, message: 'sync brings it' })
      expect(sha256hex(await readWhole(c.node(SLOW), id))).toBe(sha256hex(data))
    } finally {
      gate.restore()
    }
  })

  it('with quorum "all" the slow member holds the acknowledgement until it has prepared', async () => {
    const gate = new PrepareGate(c.node(SLOW).store)
    try {
      let acked = false
      const pending = upload(url(c, 0), randomBytes(4096, 12), 'all.bin', { group: 'g1' }).finally(() => { acked = true })
      await c.waitFor(() => gate.held === 1, { message: 'the slow member is preparing' })
      // Members 0 and 1 are done long before: the answer still waits for member 2.
      await c.waitFor(() => c.node(1).store.prepared.size > 0, { message: 'member 1 prepared' })
      expect(acked).toBe(false)
      gate.release()
      const up = await pending
      expect(up.status, JSON.stringify(up.body)).toBe(201)
      expect((up.body.replicas as string[]).sort()).toEqual([0, 1, 2].map(i => c.peerId(i)).sort())
    } finally {
      gate.restore()
    }
  })
})
