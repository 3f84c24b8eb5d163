/**
 * The history checker of the simulation's S3 workload (test/sim/name-history.ts)
 * itself: it must reject what a linearizable register cannot hold, or the
 * simulation's "no violation" would prove nothing.
 */
import { describe, expect, it } from 'vitest'
import { KeyHistory } from '../sim/name-history.ts'

describe('the key history checker', () => {
  it('after acknowledged writes one after the other, only the last is allowed; before any, only absent', () => {
    const h = new KeyHistory()
    expect(h.allowed('k')).toEqual([undefined])
    h.record('k', 'a', h.now(), h.now(), 'acked')
    h.record('k', 'b', h.now(), h.now(), 'acked')
    expect(h.allowed('k')).toEqual(['b'])
    expect(h.check('k', 'a')).toMatch(/read a, allowed b/)
    h.record('k', undefined, h.now(), h.now(), 'acked')
    expect(h.allowed('k')).toEqual([undefined])
    expect(h.check('k', 'b')).toBeDefined()
    expect(h.check('k', undefined)).toBeUndefined()
  })

  it('overlapping writes may end either way; a refused write never shows; an uncertain one may, until an acknowledged write follows it', () => {
    const h = new KeyHistory()
    const a0 = h.now()
    const b0 = h.now()
    h.record('k', 'a', a0, h.now(), 'acked')
    h.record('k', 'b', b0, h.now(), 'acked')
    expect(h.allowed('k').sort()).toEqual(['a', 'b'])
    h.record('k', 'c', h.now(), h.now(), 'refused')
    expect(h.check('k', 'c')).toBeDefined()
    h.record('k', 'd', h.now(), h.now(), 'uncertain')
    // Uncertain: it may have been written (after a and b) or not.
    expect(h.allowed('k').sort()).toEqual(['a', 'b', 'd'])
    h.record('k', 'e', h.now(), h.now(), 'acked')
    expect(h.allowed('k')).toEqual(['e'])
    expect(h.check('other', 'x')).toMatch(/key other: read x/)
  })

  it('a read during the writes: no value superseded before it was asked, none asked after it was answered', () => {
    const h = new KeyHistory()
    h.record('k', 'a', h.now(), h.now(), 'acked')
    const readAsked = h.now()
    h.record('k', 'b', h.now(), h.now(), 'acked')
    const readAnswered = h.now()
    h.record('k', 'c', h.now(), h.now(), 'acked')
    // Overlapping b: a or b; never c (asked after), never absent (superseded by a before the read).
    expect(h.allowed('k', readAsked, readAnswered).sort()).toEqual(['a', 'b'])
    expect(h.check('k', undefined, readAsked, readAnswered)).toMatch(/read absent \[/)
    expect(h.check('k', 'c', readAsked, readAnswered)).toBeDefined()
  })
})
