/**
 * Placement keeps copies: a new upload goes to a group that can keep the
 * copy floor whenever one exists; a group with fewer live members than the
 * floor gets no new files while another can take them.
 */
import { describe, expect, it } from 'vitest'
import { MembershipView } from '../../src/membership/view.ts'
import { PlacementPolicy, copyFloor, wantedCopies } from '../../src/replica/placement.ts'
import type { Heartbeat } from '../../src/wire/messages.ts'

const GiB = 1024 ** 3

function view (members: Array<[peer: string, group: string, state: Heartbeat['state'], free: number]>): MembershipView {
  const v = new MembershipView({ selfId: 'self', offlineAfterMs: 60_000, forgetAfterMs: 600_000 })
  for (const [peer, group, state, free] of members) {
    v.apply({ peer, addrs: [], group, state, total: 100 * GiB, free, load: 0, version: 'test', incarnation: 1, seq: 1, ts: 0, sync: { head: 0, filesToGo: 0, bytesToGo: 0 }, spare: false, reserve: 0 }, 0)
  }
  return v
}

describe('placement', () => {
  it('passes over a group below the copy floor while another can keep it, even with more room', () => {
    // ga has the most room, but only one of its two members is ACTIVE.
    const v = view([['a1', 'ga', 'ACTIVE', 90 * GiB], ['a2', 'ga', 'OFFLINE', 90 * GiB], ['b1', 'gb', 'ACTIVE', 10 * GiB], ['b2', 'gb', 'ACTIVE', 10 * GiB]])
    const floor = (g: string): number => copyFloor(v, g, null, 'all')
    expect(floor('ga')).toBe(2)
    expect(new PlacementPolicy('most-free').chooseGroup(v, undefined, floor)).toBe('gb')
    const rr = new PlacementPolicy('round-robin')
    expect([0, 1, 2].map(() => rr.chooseGroup(v, undefined, floor))).toEqual(['gb', 'gb', 'gb'])
  })

  it('a one-member group keeps its floor of one, and gets writes only when no group can keep more copies; when none can keep its floor, any live group does', () => {
    const single = view([['a1', 'ga', 'ACTIVE', 90 * GiB], ['b1', 'gb', 'ACTIVE', 10 * GiB], ['b2', 'gb', 'ACTIVE', 10 * GiB]])
    expect(copyFloor(single, 'ga', null, 'all')).toBe(1)
    const wanted = wantedCopies(null, 'all')
    expect(wanted).toBe(2)
    // ga has the most room, but one copy where gb keeps two: gb.
    expect(new PlacementPolicy('most-free').chooseGroup(single, undefined, g => copyFloor(single, g, null, 'all'), wanted)).toBe('gb')
    const lone = view([['a1', 'ga', 'ACTIVE', 90 * GiB], ['b1', 'gb', 'ACTIVE', 10 * GiB], ['b2', 'gb', 'OFFLINE', 10 * GiB]])
    // gb cannot keep two copies now and ga is whole at one: ga.
    expect(new PlacementPolicy('most-free').chooseGroup(lone, undefined, g => copyFloor(lone, g, null, 'all'), wanted)).toBe('ga')
    const degraded = view([['a1', 'ga', 'ACTIVE', 90 * GiB], ['a2', 'ga', 'OFFLINE', 90 * GiB], ['b1', 'gb', 'ACTIVE', 10 * GiB], ['b2', 'gb', 'OFFLINE', 10 * GiB]])
    // Both degraded: the choice falls back to room; the copy floor then refuses the write where it must (ingest).
    expect(new PlacementPolicy('most-free').chooseGroup(degraded, undefined, g => copyFloor(degraded, g, null, 'all'))).toBe('ga')
  })

  it('--min-copies and a numeric write quorum set the floor', () => {
    const v = view([['a1', 'ga', 'ACTIVE', 1], ['a2', 'ga', 'ACTIVE', 1], ['a3', 'ga', 'ACTIVE', 1]])
    expect(copyFloor(v, 'ga', 3, 'all')).toBe(3)
    expect(copyFloor(v, 'ga', null, 1)).toBe(1)
    expect(copyFloor(v, 'ga', 9, 'all')).toBe(3)
  })
})
