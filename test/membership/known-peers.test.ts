/**
 * The members a node knew survive its restart (<data>/peers.bin): the node
 * that founded the cluster (its bootstrap list names nobody) finds its group
 * again by itself, and until it does it counts its mates — it never
 * acknowledges a write with fewer copies than the floor because its view
 * came back empty. A damaged file is reported and ignored.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { KNOWN_PEERS_FILE_NAME, knownPeersFile } from '../../src/membership/known-peers.ts'
import { copyFloor } from '../../src/replica/placement.ts'
import { createSimCluster } from '../sim/cluster.ts'

describe('the members a node knew', () => {
  it('come back with a restart: the founding node finds its group again, and counts its mates in the copy floor meanwhile', async () => {
    const c = await createSimCluster({ nodes: 3, configure: () => ({ group: 'g1' }) })
    try {
      await c.ready()
      const all = (i: number): boolean => [0, 1, 2].every(j => c.node(i).membership.view.get(c.peerId(j))?.state === 'ACTIVE')
      await c.waitFor(() => [0, 1, 2].every(all), { message: 'every view whole' })
      // Node 0 founded the cluster: its own bootstrap list is empty (test/sim/cluster.ts).
      expect(c.config(0).bootstrap).toEqual([])
      await c.kill(0)
      await c.waitFor(() => [1, 2].every(i => c.node(i).membership.view.get(c.peerId(0))?.state === 'OFFLINE'), { message: 'node 0 OFFLINE' })
      const back = await c.restart(0)
      // At once, before any connection: its mates are in its view (OFFLINE hearsay), so its group is not "of one".
      const mates = back.membership.view.groupMembers('g1').filter(m => !m.self)
      expect(mates.map(m => m.peerId).sort()).toEqual([c.peerId(1), c.peerId(2)].sort())
      expect(copyFloor(back.membership.view, 'g1', null, 'all')).toBe(2)
      // And it dials them by itself: the group is whole again in every view.
      await c.waitFor(() => [0, 1, 2].every(all), { message: 'node 0 back in every view, and they in its', timeoutMs: 60_000 })
    } finally {
      await c.close()
    }
  }, 120_000)

  it('a damaged file is ignored: the node starts, with the view gossip gives it', async () => {
    const c = await createSimCluster({ nodes: 2, configure: () => ({ group: 'g1' }) })
    try {
      await c.ready()
      await c.kill(1)
      const dir = c.config(1).dataDir
      await writeFile(join(dir, KNOWN_PEERS_FILE_NAME), 'not a list of members')
      await expect(knownPeersFile(dir).load()).rejects.toThrow()
      const back = await c.restart(1)
      await back.ready({ signal: AbortSignal.timeout(30_000) })
      await c.waitFor(() => back.membership.view.get(c.peerId(0))?.state === 'ACTIVE', { message: 'node 1 sees node 0 again' })
      // Saved again, whole, at stop.
      await c.stop(1)
      expect((await knownPeersFile(dir).load()).length).toBeGreaterThanOrEqual(1)
    } finally {
      await c.close()
    }
  }, 120_000)
})
