/**
 * The copy floor: a member that sees its mates OFFLINE (here: partitioned
 * away) refuses writes with 503 instead of storing the only copy, while the
 * side that still has two members goes on; and a delete or read through a
 * member that lacks a file reaches a mate that has it (never "dial self").
 */
import { describe, expect, it } from 'vitest'
import { createSimCluster, readWhole } from '../sim/cluster.ts'
import { randomBytes, sha256hex, upload } from '../helpers/data.ts'
import type { SimCluster } from '../sim/cluster.ts'

const url = (c: SimCluster, i: number): string => c.node(i).http?.url ?? ''
const activeIn = (c: SimCluster, viewer: number): number => c.node(viewer).membership.view.groupMembers('g1').filter(m => m.state === 'ACTIVE').length

describe('the copy floor', () => {
  it('a partitioned member answers 503 rather than acknowledge a single copy; the majority side keeps taking writes', async () => {
    const c = await createSimCluster({ nodes: 3, http: true, configure: () => ({ group: 'g1' }) })
    try {
      await c.ready()
      await c.waitFor(() => [0, 1, 2].every(i => activeIn(c, i) === 3), { message: 'g1 whole' })
      const kept = await upload(url(c, 0), randomBytes(20_000, 5), 'kept.bin')
      const keptId = kept.body.id as string
      await c.waitFor(() => [0, 1, 2].every(i => c.node(i).store.index.get(keptId)?.state === 'present'), { message: 'kept.bin on all three' })
      await c.partition([2], [0, 1])
      await c.waitFor(() => activeIn(c, 2) === 1 && activeIn(c, 0) === 2 && activeIn(c, 1) === 2, { message: 'each side sees the other OFFLINE' })
      // Nor does it acknowledge a delete only its own disk would hold: nothing is deleted.
      const lonely = await fetch(`${url(c, 2)}/files/${keptId}`, { method: 'DELETE' })
      expect(lonely.status).toBe(503)
      expect(((await lonely.json()) as { code: string }).code).toBe('ERR_UNAVAILABLE')
      expect(c.node(2).store.index.get(keptId)?.state).toBe('present')
      const alone = await upload(url(c, 2), randomBytes(20_000, 1), 'alone.bin')
      expect(alone.status, JSON.stringify(alone.body)).toBe(503)
      expect(alone.body.code).toBe('ERR_QUORUM')
      expect(alone.body.message).toMatch(/--min-copies 2/)
      expect(c.node(2).store.index.stats().present.files, 'only kept.bin').toBe(1)
      const majority = await upload(url(c, 0), randomBytes(20_000, 2), 'majority.bin')
      expect(majority.status, JSON.stringify(majority.body)).toBe(201)
      expect(majority.body.replicas).toHaveLength(2)
      // Healed, the member catches up: the file the majority took is on all three.
      c.heal()
      await c.waitFor(() => c.node(2).store.index.get(majority.body.id as string)?.state === 'present', { timeoutMs: 30_000, message: 'the member catches up' })
    } finally {
      await c.close()
    }
  })

  it('--min-copies 1 lets a lone member take writes (the operator said so)', async () => {
    const c = await createSimCluster({ nodes: 3, http: true, configure: () => ({ group: 'g1', minCopies: 1 }) })
    try {
      await c.ready()
      await c.waitFor(() => [0, 1, 2].every(i => activeIn(c, i) === 3), { message: 'g1 whole' })
      await c.partition([2], [0, 1])
      await c.waitFor(() => activeIn(c, 2) === 1, { message: 'member 2 sees the others OFFLINE' })
      const alone = await upload(url(c, 2), randomBytes(20_000, 3), 'alone.bin')
      expect(alone.status, JSON.stringify(alone.body)).toBe(201)
      expect(alone.body.replicas).toEqual([c.peerId(2)])
    } finally {
      await c.close()
    }
  })
})

describe('a member that lacks a file', () => {
  it('sends a delete (and reads) to a mate that has it', async () => {
    const c = await createSimCluster({ nodes: 3, http: true, configure: () => ({ group: 'g1' }) })
    try {
      await c.ready()
      await c.waitFor(() => [0, 1, 2].every(i => activeIn(c, i) === 3), { message: 'g1 whole' })
      // Member 2 misses an upload (partitioned) and then does not catch up (its sync is held).
      await c.partition([2], [0, 1])
      await c.waitFor(() => activeIn(c, 0) === 2, { message: 'the majority sees member 2 OFFLINE' })
      const data = randomBytes(200_000, 4)
      const up = await upload(url(c, 0), data, 'missed.bin')
      expect(up.status, JSON.stringify(up.body)).toBe(201)
      const id = up.body.id as string
      const lagging = c.node(2)
      await lagging.replica.sync.stop()
      c.heal()
      await c.waitFor(() => activeIn(c, 2) === 3, { message: 'member 2 sees its mates again' })
      expect(lagging.store.index.get(id)).toBeUndefined()
      expect(sha256hex(await readWhole(lagging, id))).toBe(sha256hex(data))
      // A loaded host can delay a heartbeat past offlineAfterMs: then member 2 briefly sees no ACTIVE mate and
      // answers 503 "retry" (nothing deleted). A client retries; so do we, each time once it sees its mates again.
      let del = await fetch(`${url(c, 2)}/files/${id}`, { method: 'DELETE' })
      for (let attempt = 0; del.status === 503 && attempt < 5; attempt++) {
        await c.waitFor(() => activeIn(c, 2) === 3, { message: 'member 2 sees its mates again' })
        del = await fetch(`${url(c, 2)}/files/${id}`, { method: 'DELETE' })
      }
      expect(del.status, await del.clone().text()).toBe(200)
      for (const i of [0, 1]) expect(c.node(i).store.index.get(id)?.state).toBe('deleted')
    } finally {
      await c.close()
    }
  })
})
