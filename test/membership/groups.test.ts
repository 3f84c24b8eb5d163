import { describe, expect, it } from 'vitest'
import { chooseGroup, nextGroupName, rankInGroup } from '../../src/membership/groups.ts'
import { createSimCluster } from '../sim/cluster.ts'
import type { MemberRecord } from '../../src/membership/view.ts'
import type { SimCluster } from '../sim/cluster.ts'

function member (peerId: string, group: string | null, state: MemberRecord['state'] = 'ACTIVE', spare = false): MemberRecord {
  return {
    peerId,
    group,
    state,
    spare,
    reserve: 0,
    addrs: [],
    total: 0,
    free: 0,
    load: 0,
    version: '',
    incarnation: 1,
    seq: 1,
    sync: { head: 0, filesToGo: 0, bytesToGo: 0 },
    lastSeen: 0,
    confirmed: true,
    self: false
  }
}

function layout (c: SimCluster): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const g of c.node(0).membership.view.groups()) out[g.name] = g.members.map(m => m.peerId).sort()
  return out
}

describe('group assignment rule', () => {
  it('joins the open group with the fewest members, ties to the lowest name', () => {
    const members = [member('a', 'g1'), member('b', 'g1'), member('c', 'g2'), member('d', 'g10')]
    expect(chooseGroup(members, 'me', 3)).toBe('g2')
    expect(chooseGroup([...members, member('e', 'g2')], 'me', 3)).toBe('g10')
  })

  it('founds the lowest unused g<k> when every group is full; offline and spare members take no seat', () => {
    const full = [member('a', 'g1'), member('b', 'g1'), member('c', 'g1')]
    expect(chooseGroup(full, 'me', 3)).toBe('g2')
    expect(chooseGroup([...full, member('x', 'g2', 'OFFLINE')], 'me', 3)).toBe('g3')
    expect(chooseGroup([member('a', 'g1'), member('b', 'g1', 'OFFLINE')], 'me', 3)).toBe('g1')
    expect(nextGroupName(new Set(['g1', 'g3']))).toBe('g2')
  })

  it('nodes joining together take the free seats in peer-id order: open groups first, then new ones', () => {
    const members = [member('a', 'g1'), member('b', 'g1'), member('c', 'g2'), member('x', 'g3', 'OFFLINE')]
    // Free seats: g2 ×2 (the fewest members first), g1 ×1, then g4 ×3, g5 ×3 (g3 belongs to an offline member).
    // A tentative group (j1's g2) is no seat.
    const joiners = ['j1', 'j2', 'j3', 'j4', 'j5', 'j6', 'j7'].map(id => member(id, id === 'j1' ? 'g2' : null, 'JOINING'))
    const all = [...members, ...joiners]
    expect(joiners.map(j => chooseGroup(all, j.peerId, 3))).toEqual(['g2', 'g2', 'g1', 'g4', 'g4', 'g4', 'g5'])
    // Alone, a joiner takes the first free seat, as the rule for one node says.
    expect(chooseGroup([...members, member('j9', null, 'JOINING')], 'j9', 3)).toBe('g2')
  })

  it('ranks committed members before joining ones, each by peer id', () => {
    const members = [member('d', 'g1', 'JOINING'), member('c', 'g1'), member('a', 'g1', 'JOINING'), member('b', 'g1', 'SYNCING')]
    expect(rankInGroup(members, 'g1', 'b')).toBe(0)
    expect(rankInGroup(members, 'g1', 'c')).toBe(1)
    expect(rankInGroup(members, 'g1', 'a')).toBe(2)
    expect(rankInGroup(members, 'g1', 'd')).toBe(3)
  })
})

describe('auto-grouping', () => {
  it('7 nodes started one by one with group size 3: g1 = nodes 0-2, g2 = 3-5, g3 = 6, and it stays so', async () => {
    const c = await createSimCluster({ nodes: 7, groupSize: 3, sequential: true, joinSettleMs: 300 })
    try {
      await c.waitFor(() => Object.values(layout(c)).flat().length === 7, { message: 'all 7 placed' })
      const expected = {
        g1: [0, 1, 2].map(i => c.peerId(i)).sort(),
        g2: [3, 4, 5].map(i => c.peerId(i)).sort(),
        g3: [c.peerId(6)]
      }
      expect(layout(c)).toEqual(expected)
      // Stable: several heartbeats later, and after restarts, nothing moved.
      await c.kill(4)
      await c.restart(4)
      await c.ready()
      await c.waitFor(() => c.node(0).membership.view.get(c.peerId(4))?.state === 'ACTIVE', { message: 'node 4 back' })
      expect(layout(c)).toEqual(expected)
    } finally {
      await c.close()
    }
  })

  it('7 nodes started at once converge to groups of 3, 3 and 1', async () => {
    const c = await createSimCluster({ nodes: 7, groupSize: 3 })
    try {
      await c.ready()
      await c.waitFor(() => new Set(c.upIndexes().map(i => JSON.stringify(c.node(i).membership.view.groups().map(g => [g.name, g.members.length])))).size === 1,
        { message: 'views agree' })
      const sizes = Object.values(layout(c)).map(m => m.length)
      expect(sizes).toEqual([3, 3, 1])
      expect(Object.keys(layout(c))).toEqual(['g1', 'g2', 'g3'])
      // Each node's persisted group matches what the cluster sees.
      for (const i of c.upIndexes()) expect(layout(c)[c.node(i).status.group ?? '']).toContain(c.peerId(i))
    } finally {
      await c.close()
    }
  })

  it('an explicit --group wins and a spare joins no group', async () => {
    const c = await createSimCluster({
      nodes: 3,
      configure: (i) => i === 1 ? { group: 'media-eu' } : i === 2 ? { spare: true } : {}
    })
    try {
      await c.ready()
      expect(c.node(1).status.group).toBe('media-eu')
      expect(c.node(2).status).toMatchObject({ group: null, spare: true, state: 'ACTIVE' })
      await c.waitFor(() => c.node(0).membership.view.get(c.peerId(2))?.spare === true, { message: 'spare seen' })
    } finally {
      await c.close()
    }
  })
})
