import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { chooseGroup, nextGroupName, rankInGroup } from '../../src/membership/groups.ts'
import { LocalStatus } from '../../src/membership/local-status.ts'
import { NODE_STATE_FILE_NAME, NodeStateFile } from '../../src/membership/node-state.ts'
import { SurplusCheck } from '../../src/membership/surplus.ts'
import { MembershipView } from '../../src/membership/view.ts'
import { silentLogger } from '../../src/logger.ts'
import { HeartbeatSchema } from '../../src/wire/messages.ts'
import { createSimCluster } from '../sim/cluster.ts'
import { randomBytes, upload } from '../helpers/data.ts'
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

  it('among committed members, those holding files rank before empty ones (the empty one is the seat too many)', () => {
    const holding = (id: string): MemberRecord => ({ ...member(id, 'g1'), sync: { head: 7, filesToGo: 0, bytesToGo: 0, files: 3 } })
    const members = [member('a', 'g1'), holding('z'), holding('m'), member('b', 'g1', 'JOINING')]
    expect(['m', 'z', 'a', 'b'].map(id => rankInGroup(members, 'g1', id))).toEqual([0, 1, 2, 3])
  })
})

describe('a seat too many', () => {
  const nodeJson = (over: Record<string, unknown>): string => JSON.stringify({ group: 'g1', spare: false, incarnation: 1, ...over })

  it('with a seat too many, the member ranked last moves on once the members that stay hold what it holds; the file keeps its copies', async () => {
    const c = await createSimCluster({ nodes: 3, groupSize: 3, http: true, joinSettleMs: 300 })
    try {
      await c.ready()
      const up = await upload(c.node(0).http?.url ?? '', randomBytes(50_000, 3), 'kept.bin')
      expect(up.status, JSON.stringify(up.body)).toBe(201)
      await c.waitFor(() => [0, 1, 2].every(i => c.node(i).store.index.get(up.body.id as string)?.state === 'present'), { message: 'the file on all three' })
      // What a lost race leaves behind: a fourth node that persisted an auto-joined seat in g1.
      await mkdir(join(c.root, 'node3'), { recursive: true })
      await writeFile(join(c.root, 'node3', NODE_STATE_FILE_NAME), nodeJson({ auto: true, synced: false }))
      await c.add()
      const moved = (): number[] => c.upIndexes().filter(i => c.node(i).status.group !== 'g1')
      await c.waitFor(() => moved().length === 1 && c.node(moved()[0] as number).status.state === 'ACTIVE', { message: 'one of the four moves on', timeoutMs: 30_000 })
      const mover = moved()[0] as number
      expect(c.node(mover).status.group).toBe('g2')
      expect(JSON.parse(await readFile(join(c.root, `node${mover}`, NODE_STATE_FILE_NAME), 'utf8'))).toMatchObject({ group: 'g2', auto: true })
      await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.groupMembers('g1').filter(m => m.state !== 'OFFLINE').length === 3), { message: 'every view: g1 has 3 again' })
      // The file keeps three copies in g1.
      const stayed = c.upIndexes().filter(i => i !== mover)
      await c.waitFor(() => stayed.every(i => c.node(i).store.index.get(up.body.id as string)?.state === 'present'), { message: 'the file on the three that stayed' })
    } finally {
      await c.close()
    }
  })

  it('a --group seat, a busy member and one holding more than its mates never move: SurplusCheck says no', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dsm-surplus-'))
    try {
      const state = await NodeStateFile.open(dir)
      await state.setGroup('g1')
      const status = new LocalStatus()
      status.setGroup('g1')
      status.setState('SYNCING')
      const view = new MembershipView({ selfId: '12D3KooWzzz', offlineAfterMs: 10_000, forgetAfterMs: 60_000 })
      const hb = (peer: string, state: string): void => {
        view.apply(HeartbeatSchema.parse({ peer, addrs: [], group: 'g1', state, total: 1, free: 1, load: 0, version: '0', incarnation: 1, seq: 1, ts: 0, sync: { head: 0, filesToGo: 0, bytesToGo: 0 }, spare: false, reserve: 0 }), 0)
      }
      for (const peer of ['12D3KooWa', '12D3KooWb', '12D3KooWc']) hb(peer, 'ACTIVE')
      hb('12D3KooWzzz', 'SYNCING')
      let busy = false
      let held = 0
      const check = new SurplusCheck({
        selfId: '12D3KooWzzz',
        state,
        status,
        view,
        waitForContact: async () => {},
        refreshView: async () => {},
        busy: () => busy,
        filesHeld: () => held,
        moved: () => {},
        logger: silentLogger
      }, { group: null, spare: false, groupSize: 3, joinSettleMs: 10, intervalMs: 1000 })
      expect(check.surplus(), 'configured (--group) seat').toBeUndefined()
      await state.setGroup('g1', { auto: true })
      expect(check.surplus(), 'auto seat, fourth by rank, empty').toBe('g1')
      busy = true
      expect(check.surplus(), 'an upload or transfer in progress').toBeUndefined()
      busy = false
      held = 1
      expect(check.surplus(), 'holds a file its mates may lack (they report none)').toBeUndefined()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
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
      // A race may seat one node too many for a moment; the design promises that it moves on, so wait for that.
      await c.waitFor(() => new Set(c.upIndexes().map(i => JSON.stringify(c.node(i).membership.view.groups().map(g => [g.name, g.members.length])))).size === 1 &&
        JSON.stringify(Object.values(layout(c)).map(m => m.length)) === '[3,3,1]', { message: 'views agree on groups of 3, 3 and 1', timeoutMs: 30_000 })
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
