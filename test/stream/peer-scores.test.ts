/**
 * What a node remembers of peers that served bad bytes (src/stream/peer-scores.ts):
 * one strike puts a peer last, the penalty halves every half-life, and a
 * record decayed to nothing is forgotten. The clock is injected.
 */
import { describe, expect, it } from 'vitest'
import { PEER_SCORE_AVOID_BELOW, PEER_SCORE_BAD_CHUNK, PEER_SCORE_HALF_LIFE_MS, PeerScores } from '../../src/stream/peer-scores.ts'

const HALF = PEER_SCORE_HALF_LIFE_MS

function scores (): { s: PeerScores, clock: { now: number } } {
  const clock = { now: 1_000_000 }
  return { s: new PeerScores(() => clock.now), clock }
}

describe('PeerScores', () => {
  it('the constants say what the docs say: one bad chunk is enough to be avoided', () => {
    expect(PEER_SCORE_BAD_CHUNK).toBeLessThan(PEER_SCORE_AVOID_BELOW)
    expect(PEER_SCORE_AVOID_BELOW).toBeLessThan(0)
  })

  it('a peer with a clean record scores 0, is not avoided and is not listed', () => {
    const { s } = scores()
    expect(s.score('clean')).toBe(0)
    expect(s.avoided('clean')).toBe(false)
    expect(s.snapshot()).toEqual([])
  })

  it('one bad chunk: the penalty, avoided, listed; other peers untouched', () => {
    const { s } = scores()
    s.badChunk('liar')
    expect(s.score('liar')).toBe(PEER_SCORE_BAD_CHUNK)
    expect(s.avoided('liar')).toBe(true)
    expect(s.avoided('honest')).toBe(false)
    expect(s.snapshot()).toEqual([{ peerId: 'liar', score: PEER_SCORE_BAD_CHUNK }])
  })

  it('the penalty halves every half-life; at the threshold exactly the peer is no longer avoided', () => {
    const { s, clock } = scores()
    s.badChunk('p')
    clock.now += HALF / 2
    expect(s.score('p')).toBeCloseTo(PEER_SCORE_BAD_CHUNK / Math.SQRT2, 9)
    expect(s.avoided('p')).toBe(true)
    clock.now += HALF / 2
    expect(s.score('p')).toBeCloseTo(PEER_SCORE_BAD_CHUNK / 2, 9) // -10
    expect(s.avoided('p')).toBe(false) // strictly below the threshold is avoided
    clock.now += HALF
    expect(s.score('p')).toBeCloseTo(PEER_SCORE_BAD_CHUNK / 4, 9)
    expect(s.avoided('p')).toBe(false)
  })

  it('strikes add up on the decayed score, and a repeat offender stays avoided longer', () => {
    const { s, clock } = scores()
    s.badChunk('p')
    clock.now += HALF
    s.badChunk('p') // -10 left of the first, -20 more
    expect(s.score('p')).toBeCloseTo(1.5 * PEER_SCORE_BAD_CHUNK, 9)
    s.badChunk('once')
    clock.now += HALF
    expect(s.avoided('once')).toBe(false)
    expect(s.avoided('p')).toBe(true) // -15
    expect(s.score('p')).toBeCloseTo(0.75 * PEER_SCORE_BAD_CHUNK, 9)
  })

  it('a penalty decayed to almost nothing is forgotten: score 0 and gone from the snapshot', () => {
    const { s, clock } = scores()
    s.badChunk('a')
    clock.now += 5 * HALF
    s.badChunk('b')
    expect(s.snapshot().map(p => p.peerId).sort()).toEqual(['a', 'b'])
    clock.now += 6 * HALF // a: -20 * 2^-11 ≈ -0.0098, above the -0.01 floor; b: -20 * 2^-6
    expect(s.score('a')).toBe(0)
    expect(s.snapshot().map(p => p.peerId)).toEqual(['b'])
    // Forgotten means a clean slate: a new strike counts from 0, not from a remainder.
    s.badChunk('a')
    expect(s.score('a')).toBe(PEER_SCORE_BAD_CHUNK)
  })

  it('takes Date.now when no clock is given', () => {
    const s = new PeerScores()
    s.badChunk('p')
    expect(s.score('p')).toBeLessThan(PEER_SCORE_AVOID_BELOW)
    expect(s.score('p')).toBeGreaterThanOrEqual(PEER_SCORE_BAD_CHUNK)
  })
})
