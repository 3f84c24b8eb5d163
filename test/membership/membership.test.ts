import { describe, expect, it } from 'vitest'
import { MEMBERSHIP_TOPIC } from '../../src/constants.ts'
import { ClusterKeys, generateSecret } from '../../src/net/cluster-secret.ts'
import { loadOrCreateIdentity } from '../../src/net/identity.ts'
import { HeartbeatSeal } from '../../src/membership/seal.ts'
import { decodeMessage, encodeMessage } from '../../src/wire/codec.ts'
import { HeartbeatSchema, MembersRequestSchema, MembersResponseSchema, PROTOCOLS, SealedHeartbeatSchema, SignedHeartbeatSchema } from '../../src/wire/messages.ts'
import { request } from '../../src/wire/rpc.ts'
import { fastDialer } from '../../src/net/fast-dialer.ts'
import { createSimCluster } from '../sim/cluster.ts'
import type { SimCluster } from '../sim/cluster.ts'
import type { Heartbeat } from '../../src/wire/messages.ts'

/** The heartbeat inside a sealed record (its signature unchecked: the tests look, the nodes check). */
function unseal (keys: ClusterKeys, sealed: Uint8Array): Heartbeat {
  const opened = keys.unbox('heartbeat', decodeMessage(SealedHeartbeatSchema, sealed, 1 << 20).boxes)
  if (opened == null) throw new Error('not sealed with this cluster\'s secret')
  return decodeMessage(HeartbeatSchema, decodeMessage(SignedHeartbeatSchema, opened, 1 << 20).body, 1 << 20)
}

/** Every running node's view, reduced to what must agree: peer → group/state. */
function views (c: SimCluster): string[] {
  return c.upIndexes().map(i => JSON.stringify(c.node(i).membership.view.members().map(m => [m.peerId, m.group, m.state])))
}

function converged (c: SimCluster): boolean {
  return new Set(views(c)).size === 1
}

describe('membership', () => {
  it('10 nodes: every view agrees on members, groups and states', async () => {
    const c = await createSimCluster({ nodes: 10, groupSize: 3 })
    try {
      await c.ready()
      // What the design promises: full groups of 3 and one of 1. Two joiners may take one seat for a moment;
      // the one ranked last moves on by itself (src/membership/surplus.ts), so wait for the promised layout.
      const sizes = (): string => JSON.stringify(c.node(0).membership.view.groups().map(g => g.members.length).sort((a, b) => b - a))
      // A budget, not a wait: ~0.1–6 s here even beside four more such clusters and a busy core, but a CI run
      // with its other test files took more than 30 s once.
      await c.waitFor(() => converged(c) && c.node(0).membership.view.members().every(m => m.state === 'ACTIVE') && sizes() === '[3,3,3,1]',
        { message: 'views converge on groups of 3, 3, 3 and 1', timeoutMs: 60_000 })
        .catch((err: unknown) => {
          // What it was stuck on (it has failed twice in CI under load, never alone): each node's own seat and
          // state, and node 0's view of every member's.
          const own = c.upIndexes().map(i => `${c.peerId(i).slice(-4)}:${c.node(i).status.group ?? '-'}/${c.node(i).status.state}`).join(' ')
          const seen = c.node(0).membership.view.members().map(m => `${m.peerId.slice(-4)}:${m.group ?? '-'}/${m.state}/h${m.sync.head}`).join(' ')
          throw new Error(`${String(err)}; converged ${String(converged(c))}, sizes ${sizes()}; own ${own}; node 0 sees ${seen}`)
        })
      for (const i of c.upIndexes()) {
        expect(c.node(i).membership.view.members().map(m => m.peerId).sort()).toEqual(c.upIndexes().map(j => c.peerId(j)).sort())
      }
      // Each node's own group (what it persisted) is what every other node sees.
      for (const i of c.upIndexes()) {
        expect(c.node(5).membership.view.get(c.peerId(i))?.group).toBe(c.node(i).status.group)
      }
      // A members request naming a group is answered with that group's records only (what a joiner checks its seat
      // against); without one, with the whole view.
      const group = c.node(2).membership.view.groups().find(g => g.members.length === 3)?.name as string
      // Through a dialer that proves the secret first, as the node's own code does (a bare dial could be refused
      // while node 7's proof to node 2 is still under way: seen under load).
      const dialer = fastDialer(c.node(7).libp2p, c.node(7).libp2p.services.auth)
      const ask = async (req: { group?: string }): Promise<string[]> => (await request(dialer, c.node(2).libp2p.peerId, PROTOCOLS.members,
        MembersRequestSchema, req, MembersResponseSchema)).members.map(m => unseal(c.node(7).keys as ClusterKeys, m.sealed)).map(hb => `${hb.peer}/${hb.group ?? '-'}`).sort()
      expect(await ask({ group })).toEqual(c.node(2).membership.view.groupMembers(group).map(m => `${m.peerId}/${group}`).sort())
      expect(await ask({ group })).toHaveLength(3)
      expect(await ask({})).toHaveLength(10)
    } finally {
      await c.close()
    }
  }, 120_000)

  it('a killed node is OFFLINE everywhere within OFFLINE_AFTER_MS + one heartbeat; restarted, it keeps its id and group', async () => {
    const heartbeatIntervalMs = 400
    const offlineAfterMs = 1600
    const c = await createSimCluster({ nodes: 5, heartbeatIntervalMs, offlineAfterMs })
    try {
      await c.ready()
      await c.waitFor(() => converged(c), { message: 'views converge' })
      const victim = 3
      const id = c.peerId(victim)
      const group = c.node(victim).status.group
      const others = c.upIndexes().filter(i => i !== victim)
      const offlineAt = new Map<number, number>()
      for (const i of others) {
        c.node(i).membership.view.addEventListener('member:offline', (evt) => {
          if (evt.detail.peerId === id && !offlineAt.has(i)) offlineAt.set(i, Date.now())
        })
      }
      const killedAt = Date.now()
      await c.kill(victim)
      await c.waitFor(() => offlineAt.size === others.length, { message: 'all mark the victim OFFLINE' })
      // The bound of the spec, plus slack for timers on a loaded 2-core machine.
      const schedulingSlackMs = 250
      for (const at of offlineAt.values()) expect(at - killedAt).toBeLessThanOrEqual(offlineAfterMs + heartbeatIntervalMs + schedulingSlackMs)
      // Not marked before the timeout either: a crash is detected by silence.
      for (const at of offlineAt.values()) expect(at - killedAt).toBeGreaterThan(offlineAfterMs - heartbeatIntervalMs - schedulingSlackMs)

      const again = await c.restart(victim)
      expect(again.peerId).toBe(id)
      const assignment = await again.ready({ signal: AbortSignal.timeout(10_000) })
      expect(assignment).toMatchObject({ group, how: 'persisted' })
      await c.waitFor(() => others.every(i => c.node(i).membership.view.get(id)?.state === 'ACTIVE'), { message: 'victim ACTIVE again everywhere' })
    } finally {
      await c.close()
    }
  })

  it('a clean stop announces leave: peers mark the node OFFLINE at once', async () => {
    const c = await createSimCluster({ nodes: 4, heartbeatIntervalMs: 1000, offlineAfterMs: 30_000 })
    try {
      await c.ready()
      await c.waitFor(() => converged(c), { message: 'views converge' })
      const id = c.peerId(2)
      const stoppedAt = Date.now()
      await c.stop(2)
      await c.waitFor(() => [0, 1, 3].every(i => c.node(i).membership.view.get(id)?.state === 'OFFLINE'), { message: 'leave seen', timeoutMs: 5000 })
      // Far sooner than the 30 s silence timeout: it came from the leave announcement.
      expect(Date.now() - stoppedAt).toBeLessThan(5000)
    } finally {
      await c.close()
    }
  })

  it('forged, unproven, malformed, oversized and stale heartbeats are dropped, counted, and change no view', async () => {
    const c = await createSimCluster({ nodes: 4 })
    try {
      await c.ready()
      await c.waitFor(() => converged(c), { message: 'views converge' })
      const liar = c.node(0)
      const victimId = c.peerId(1)
      const before = c.node(2).membership.view.get(victimId)
      const real = before!
      const liarKey = await loadOrCreateIdentity(liar.config.dataDir)
      const seal = new HeartbeatSeal(liar.keys as ClusterKeys, liarKey)
      const stranger = new HeartbeatSeal(new ClusterKeys([generateSecret()], 'generated'), liarKey)
      const base: Heartbeat = {
        peer: victimId,
        addrs: [],
        group: 'evil',
        state: 'OFFLINE',
        total: 1,
        free: 1,
        load: 0,
        version: 'x',
        incarnation: real.incarnation + 1,
        seq: 1,
        ts: Date.now(),
        sync: { head: 0, filesToGo: 0, bytesToGo: 0 },
        spare: false,
        reserve: 0
      }
      const own = liar.membership.view.get(liar.peerId)!
      const pubsub = liar.libp2p.services.pubsub
      const receivers = [1, 2, 3]
      const count = (reason: 'forged' | 'malformed' | 'oversized' | 'stale' | 'unproven'): number[] => receivers.map(i => c.node(i).membership.dropped[reason])
      const publish = async (data: Uint8Array): Promise<void> => { await pubsub.publish(MEMBERSHIP_TOPIC, data) }
      const box = (signed: Uint8Array): Uint8Array => encodeMessage(SealedHeartbeatSchema, { boxes: (liar.keys as ClusterKeys).box('heartbeat', signed) })

      await publish(await seal.seal(base)) // sealed by a member (node 0), but claims node 1
      await publish(new Uint8Array([0xa1, 0x63, 0x66, 0x6f])) // truncated CBOR
      const partial = encodeMessage(HeartbeatSchema.partial(), { peer: liar.peerId, state: 'ACTIVE' })
      await publish(box(encodeMessage(SignedHeartbeatSchema, { body: partial, sig: new Uint8Array(64) }))) // sealed, but missing fields
      await publish(await stranger.seal({ ...base, peer: liar.peerId, group: 'evil' })) // sealed with another cluster's secret
      await publish(new Uint8Array(30 * 1024).fill(7)) // oversized
      await publish(await seal.seal({ ...base, peer: liar.peerId, incarnation: own.incarnation - 1, seq: own.seq + 100 })) // an older incarnation
      await c.waitFor(() => count('forged').every(n => n >= 1) && count('malformed').every(n => n >= 2) && count('unproven').every(n => n >= 1) &&
        count('oversized').every(n => n >= 1) && count('stale').every(n => n >= 1), { message: 'drops counted' })
      for (const i of receivers) {
        const seen = c.node(i).membership.view
        if (i !== 1) expect(seen.get(victimId)).toMatchObject({ group: real.group, state: 'ACTIVE', incarnation: real.incarnation })
        expect(seen.get(liar.peerId)?.group).toBe(c.node(0).status.group)
        expect(seen.groups().map(g => g.name)).not.toContain('evil')
      }
    } finally {
      await c.close()
    }
  })
})
