/**
 * Which tabs of a swarm a browser node dials (src/browser/peer-dials.ts):
 * departed tabs at the top of a tracker's list must not hide a live holder.
 */
import { describe, expect, it } from 'vitest'
import { PEER_REDIAL_AFTER_MS, PeerDials } from '../../src/browser/peer-dials.ts'

const swarm = (ids: string[]): Array<[string, { addrs: string[] }]> => ids.map(id => [id, { addrs: [`/p2p/${id}`] }])

describe('PeerDials', () => {
  it('passes over a peer whose dial failed, until PEER_REDIAL_AFTER_MS, and reaches the ones behind it', async () => {
    let now = 1_000
    const dials = new PeerDials(() => now)
    const list = swarm(['gone1', 'gone2', 'gone3', 'live'])
    const errors: unknown[] = []
    // Room for three: the three departed tabs at the top are dialed, and fail.
    const first = dials.candidates(list, () => false, 3).map(([p]) => p)
    expect(first).toEqual(['gone1', 'gone2', 'gone3'])
    // Each failure is told with its slot free: the engine dials the next peer from there.
    for (const p of first) dials.track(p, Promise.reject(new Error('NO_RESERVATION')), err => { expect(dials.pending([p])).toHaveLength(0); errors.push(err) })
    await Promise.all(dials.pending(first))
    expect(errors).toHaveLength(3)
    expect(dials.failedLately('gone1')).toBe(true)
    // The next announce: the live tab is dialed, not the departed ones again.
    expect(dials.candidates(list, () => false, 3).map(([p]) => p)).toEqual(['live'])
    now += PEER_REDIAL_AFTER_MS + 1
    expect(dials.failedLately('gone1')).toBe(false)
    expect(dials.candidates(list, () => false, 3).map(([p]) => p)).toEqual(['gone1', 'gone2', 'gone3'])
  })

  it('dials a peer once at a time, skips connected peers and peers without an address, and clears a failure on success', async () => {
    const dials = new PeerDials()
    let release = (): void => {}
    dials.track('a', new Promise<void>(resolve => { release = resolve }), () => {})
    const list: Array<[string, { addrs: string[] }]> = [...swarm(['a', 'b', 'c']), ['d', { addrs: [] }]]
    expect(dials.candidates(list, p => p === 'b', 8).map(([p]) => p)).toEqual(['c'])
    expect(dials.pending(['a', 'b'])).toHaveLength(1)
    release()
    await Promise.all(dials.pending(['a']))
    expect(dials.pending(['a'])).toHaveLength(0)
    expect(dials.failedLately('a')).toBe(false)
    expect(dials.candidates(list, () => false, 0)).toEqual([])
  })
})
