import { describe, expect, it } from 'vitest'
import { orderReplicas } from '../../src/stream/replica-choice.ts'
import type { MemberRecord } from '../../src/membership/view.ts'

function member (peerId: string, load = 0, state: MemberRecord['state'] = 'ACTIVE', self = false): MemberRecord {
  return {
    peerId,
    group: 'g1',
    state,
    spare: false,
    reserve: 0,
    addrs: [],
    total: 0,
    free: 0,
    load,
    version: '',
    incarnation: 1,
    seq: 1,
    sync: { head: 0, filesToGo: 0, bytesToGo: 0 },
    lastSeen: 0,
    confirmed: true,
    self
  }
}

const ids = (ms: MemberRecord[]): string[] => ms.map(m => m.peerId)

describe('replica order of a read', () => {
  const group = [member('a'), member('b'), member('c'), member('me', 0, 'ACTIVE', true), member('off', 0, 'OFFLINE'), member('s', 0, 'SYNCING')]

  it('ACTIVE members other than us only, by peer id when nothing else tells them apart', () => {
    expect(ids(orderReplicas(group, { rttOf: () => undefined }))).toEqual(['a', 'b', 'c'])
  })

  it('a member we are connected to comes before one we would have to dial, then round-trip time decides', () => {
    const connected = new Set(['c', 'b'])
    const rtt: Record<string, number> = { b: 9, c: 2 }
    expect(ids(orderReplicas(group, { rttOf: (p) => rtt[p], connected: (p) => connected.has(p) }))).toEqual(['c', 'b', 'a'])
  })

  it('load comes before the connection; a replica that served bad bytes comes last', () => {
    const loaded = [member('a', 0), member('b', 3), member('c', 0)]
    const connected = new Set(['b', 'c'])
    expect(ids(orderReplicas(loaded, { rttOf: () => undefined, connected: (p) => connected.has(p) }))).toEqual(['c', 'a', 'b'])
    expect(ids(orderReplicas(loaded, { rttOf: () => undefined, connected: (p) => connected.has(p), avoided: (p) => p === 'c' }))).toEqual(['a', 'b', 'c'])
  })
})
