/**
 * A node's view of the cluster (src/membership/view.ts), fed heartbeats by
 * hand: which ones supersede a record (incarnation, then seq), what events a
 * change emits, and how hearsay, OFFLINE and silence are recorded. Time is
 * the `now` every call takes.
 */
import { describe, expect, it } from 'vitest'
import { MembershipView } from '../../src/membership/view.ts'
import { HeartbeatSchema } from '../../src/wire/messages.ts'
import type { Heartbeat } from '../../src/wire/messages.ts'

const SELF = '12D3KooWSe1f'
const PEER = '12D3KooWPeer'
const OFFLINE_AFTER = 10_000
const FORGET_AFTER = 60_000

/** A heartbeat as membership/service.ts builds one (and as the wire schema accepts it). */
function hb (over: Partial<Heartbeat> = {}): Heartbeat {
  return HeartbeatSchema.parse({
    peer: PEER,
    addrs: ['/ip4/10.0.0.2/tcp/4001'],
    group: 'g1',
    state: 'ACTIVE',
    total: 1000,
    free: 600,
    load: 0,
    version: '0.1.0',
    incarnation: 1,
    seq: 1,
    ts: 0,
    sync: { head: 0, filesToGo: 0, bytesToGo: 0 },
    spare: false,
    reserve: 0,
    ...over
  })
}

/** A view and every event it emitted, as [type, detail] pairs. */
function viewWithEvents (): { view: MembershipView, events: Array<[string, unknown]> } {
  const view = new MembershipView({ selfId: SELF, offlineAfterMs: OFFLINE_AFTER, forgetAfterMs: FORGET_AFTER })
  const events: Array<[string, unknown]> = []
  for (const type of ['member:joined', 'member:state', 'member:group', 'member:offline', 'member:forgotten', 'change'] as const) {
    view.addEventListener(type, (e) => { events.push([type, e.detail]) })
  }
  return { view, events }
}

const types = (events: Array<[string, unknown]>): string[] => events.map(([t]) => t)

describe('MembershipView.apply', () => {
  it('a new member is recorded whole and announced as joined', () => {
    const { view, events } = viewWithEvents()
    expect(view.apply(hb({ state: 'JOINING', group: null }), 5_000)).toBe('applied')
    expect(view.get(PEER)).toMatchObject({ peerId: PEER, state: 'JOINING', group: null, free: 600, incarnation: 1, seq: 1, lastSeen: 5_000, confirmed: true, self: false })
    expect(view.get(PEER)?.offlineSince).toBeUndefined()
    expect(types(events)).toEqual(['member:joined', 'change'])
  })

  it('orders heartbeats by (incarnation, seq): an older or repeated one is stale and changes nothing', () => {
    const { view, events } = viewWithEvents()
    view.apply(hb({ incarnation: 2, seq: 5 }), 0)
    events.length = 0
    const before = view.get(PEER)
    for (const [incarnation, seq] of [[2, 5], [2, 4], [1, 99]]) {
      expect(view.apply(hb({ incarnation, seq, free: 1 }), 1_000)).toBe('stale')
    }
    expect(view.get(PEER)).toBe(before)
    expect(events).toEqual([])
    expect(view.apply(hb({ incarnation: 2, seq: 6, free: 1 }), 1_000)).toBe('applied')
    expect(view.get(PEER)).toMatchObject({ seq: 6, free: 1, lastSeen: 1_000 })
    // A restart raises the incarnation and starts seq over: newer all the same.
    expect(view.apply(hb({ incarnation: 3, seq: 1 }), 2_000)).toBe('applied')
    expect(view.get(PEER)).toMatchObject({ incarnation: 3, seq: 1 })
    expect(types(events)).toEqual(['change', 'change'])
  })

  it('JOINING → SYNCING → ACTIVE → OFFLINE, each a state event; OFFLINE also member:offline, since when', () => {
    const { view, events } = viewWithEvents()
    const states = ['JOINING', 'SYNCING', 'ACTIVE', 'OFFLINE'] as const
    states.forEach((state, i) => view.apply(hb({ state, seq: i + 1 }), 1_000 * (i + 1)))
    const changes = events.filter(([t]) => t === 'member:state').map(([, d]) => d)
    expect(changes).toEqual([
      { peerId: PEER, from: 'JOINING', to: 'SYNCING' },
      { peerId: PEER, from: 'SYNCING', to: 'ACTIVE' },
      { peerId: PEER, from: 'ACTIVE', to: 'OFFLINE' }
    ])
    expect(events.filter(([t]) => t === 'member:offline')).toHaveLength(1)
    expect(view.get(PEER)).toMatchObject({ state: 'OFFLINE', offlineSince: 4_000 })
    // Still OFFLINE later: since when it first went.
    view.apply(hb({ state: 'OFFLINE', seq: 5 }), 9_000)
    expect(view.get(PEER)?.offlineSince).toBe(4_000)
    // Back (a restart): no offlineSince any more.
    view.apply(hb({ state: 'JOINING', incarnation: 2, seq: 1 }), 10_000)
    expect(view.get(PEER)?.state).toBe('JOINING')
    expect(view.get(PEER)?.offlineSince).toBeUndefined()
  })

  it('a group change is its own event', () => {
    const { view, events } = viewWithEvents()
    view.apply(hb({ group: null, spare: true }), 0)
    view.apply(hb({ group: 'g7', seq: 2 }), 1)
    expect(events.filter(([t]) => t === 'member:group').map(([, d]) => d)).toEqual([{ peerId: PEER, from: null, to: 'g7' }])
    expect(view.groupMembers('g7').map(m => m.peerId)).toEqual([PEER])
  })

  it('hearsay: seen `ageMs` ago; too old to revive a member, which is recorded OFFLINE', () => {
    const { view } = viewWithEvents()
    view.apply(hb(), 50_000, { ageMs: 3_000, confirmed: false })
    expect(view.get(PEER)).toMatchObject({ state: 'ACTIVE', lastSeen: 47_000, confirmed: false })
    view.apply(hb({ seq: 2 }), 60_000, { ageMs: OFFLINE_AFTER + 1 })
    expect(view.get(PEER)).toMatchObject({ state: 'OFFLINE', lastSeen: 60_000 - OFFLINE_AFTER - 1, offlineSince: 60_000, confirmed: true })
    // Once confirmed, hearsay does not unconfirm it.
    view.apply(hb({ seq: 3 }), 61_000, { confirmed: false })
    expect(view.get(PEER)).toMatchObject({ state: 'ACTIVE', confirmed: true })
    // Our own record is never made OFFLINE by its age.
    view.apply(hb({ peer: SELF }), 100_000, { ageMs: 10 * OFFLINE_AFTER })
    expect(view.get(SELF)).toMatchObject({ state: 'ACTIVE', self: true })
  })

  it('keeps the last skew measured directly and the sealed bytes it was given', () => {
    const { view } = viewWithEvents()
    const sealed = new Uint8Array([1, 2, 3])
    view.apply(hb(), 0, { skewMs: -250, sealed })
    view.apply(hb({ seq: 2 }), 1, { ageMs: 0 })
    expect(view.get(PEER)?.skewMs).toBe(-250)
    expect(view.get(PEER)?.sealed).toBeUndefined()
    view.apply(hb({ seq: 3 }), 2, { skewMs: 40, sealed })
    expect(view.get(PEER)).toMatchObject({ skewMs: 40, sealed })
  })

  it('silence marks a member OFFLINE, then forgets it; a later heartbeat brings it back as joined', () => {
    const { view, events } = viewWithEvents()
    view.apply(hb(), 0)
    view.apply(hb({ peer: SELF }), 0)
    view.sweep(OFFLINE_AFTER)
    expect(view.get(PEER)?.state).toBe('ACTIVE') // silent for exactly the limit: not yet
    view.sweep(OFFLINE_AFTER + 1)
    expect(view.get(PEER)).toMatchObject({ state: 'OFFLINE', offlineSince: OFFLINE_AFTER + 1 })
    view.sweep(FORGET_AFTER + 1)
    expect(view.get(PEER)).toBeUndefined()
    expect(view.get(SELF)?.state).toBe('ACTIVE')
    expect(types(events).filter(t => t.startsWith('member:'))).toEqual(['member:joined', 'member:joined', 'member:state', 'member:offline', 'member:forgotten'])
    expect(view.apply(hb({ seq: 1 }), FORGET_AFTER + 2)).toBe('applied')
    expect(types(events).at(-2)).toBe('member:joined')
  })
})
