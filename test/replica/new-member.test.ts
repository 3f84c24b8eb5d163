/**
 * A new member cannot split off: joining a group whose members hold files
 * but are out of its reach (partitioned away, OFFLINE), it stays SYNCING
 * instead of calling itself caught up alone and turning ACTIVE with nothing;
 * once it reaches a mate it catches up and turns ACTIVE with every file
 * (both sides of the healed partition dial each other again by themselves).
 */
import { describe, expect, it } from 'vitest'
import { createSimCluster, readWhole } from '../sim/cluster.ts'
import { randomBytes, sha256hex, upload } from '../helpers/data.ts'

describe('a new member of a group it cannot reach', () => {
  it('stays SYNCING while its mates that hold files are out of reach, then catches up', async () => {
    const c = await createSimCluster({ nodes: 2, http: true, groupSize: 2, heartbeatIntervalMs: 300, offlineAfterMs: 1500, configure: (i) => ({ group: i === 2 || i === 3 ? 'g2' : 'g1' }) })
    try {
      await c.ready()
      const data = randomBytes(300_000, 11)
      const up = await upload(c.node(0).http?.url ?? '', data, 'g1-file.bin')
      expect(up.status, JSON.stringify(up.body)).toBe(201)
      const id = up.body.id as string
      await c.add()
      await c.add()
      await c.ready()
      await c.waitFor(() => c.node(2).membership.view.groupMembers('g1').filter(m => m.state === 'ACTIVE').length === 2, { message: 'g2 sees g1' })
      // g1 is cut off from everybody, including the member still to come.
      await c.partition([0, 1], [2, 3, 4])
      await c.waitFor(() => c.node(2).membership.view.groupMembers('g1').every(m => m.state === 'OFFLINE'), { message: 'g2 sees g1 OFFLINE' })
      // The new g1 member knows only g2.
      c.reconfigure(4, { bootstrap: [`${c.address(2)}/p2p/${c.peerId(2)}`] })
      const joiner = c.node(await c.add())
      const holders = (): number => joiner.membership.view.groupMembers('g1').filter(m => !m.self && m.sync.head > 0).length
      await c.waitFor(() => holders() >= 1 && joiner.membership.view.groupMembers('g1').filter(m => !m.self).every(m => m.state === 'OFFLINE') && joiner.replica.sync.rounds >= 3, { message: 'the joiner learned of its mates (OFFLINE) and ran sync rounds', timeoutMs: 30_000 })
        .catch((err: Error) => { throw new Error(`${err.message}; the joiner: ${joiner.status.state}, ${joiner.replica.sync.rounds} rounds, view ${JSON.stringify(joiner.membership.view.members().map(m => [m.peerId.slice(-4), m.group, m.state, m.sync.head]))}`) })
      expect(joiner.status.group).toBe('g1')
      expect(joiner.status.state).toBe('SYNCING')
      expect(joiner.store.index.get(id)).toBeUndefined()
      // Nor does a restart (still never caught up) make it ACTIVE.
      await c.kill(4)
      const again = await c.restart(4)
      await c.waitFor(() => again.replica.sync.rounds >= 3 && again.membership.view.groupMembers('g1').filter(m => !m.self).length === 2, { message: 'the restarted joiner ran sync rounds', timeoutMs: 30_000 })
      expect(again.status.state).toBe('SYNCING')
      c.heal()
      await c.waitFor(() => again.status.state === 'ACTIVE', { message: 'the joiner reaches g1 and catches up', timeoutMs: 60_000 })
      expect(again.store.index.get(id)?.state).toBe('present')
      expect(sha256hex(await readWhole(again, id))).toBe(sha256hex(data))
    } finally {
      await c.close()
    }
  })

  it('members of a new group that start together are ACTIVE without waiting for each other', async () => {
    const c = await createSimCluster({ nodes: 3, groupSize: 3, configure: () => ({ group: 'g1' }) })
    try {
      await c.ready({ timeoutMs: 60_000 })
      for (const i of c.upIndexes()) expect(c.node(i).status.state).toBe('ACTIVE')
    } finally {
      await c.close()
    }
  })
})
