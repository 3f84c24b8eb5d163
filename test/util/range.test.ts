import { describe, expect, it } from 'vitest'
import { parseRange } from '../../src/util/range.ts'

describe('Range header (RFC 9110)', () => {
  it.each([
    ['bytes=0-9', { kind: 'partial', ranges: [{ start: 0, end: 9 }] }],
    ['bytes=-5', { kind: 'partial', ranges: [{ start: 95, end: 99 }] }],
    ['bytes=-500', { kind: 'partial', ranges: [{ start: 0, end: 99 }] }],
    ['bytes=90-', { kind: 'partial', ranges: [{ start: 90, end: 99 }] }],
    ['bytes=50-5000', { kind: 'partial', ranges: [{ start: 50, end: 99 }] }],
    ['BYTES = 1-2', { kind: 'partial', ranges: [{ start: 1, end: 2 }] }],
    ['bytes=0-9, 5-20', { kind: 'partial', ranges: [{ start: 0, end: 20 }] }],
    ['bytes=20-29,0-9', { kind: 'partial', ranges: [{ start: 0, end: 9 }, { start: 20, end: 29 }] }],
    ['bytes=0-9,200-300', { kind: 'partial', ranges: [{ start: 0, end: 9 }] }],
    ['bytes=100-200', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=5-2', { kind: 'full' }],
    ['bytes=abc', { kind: 'full' }],
    ['bytes=', { kind: 'full' }],
    ['bytes=-', { kind: 'full' }],
    ['bytes=1-2-3', { kind: 'full' }],
    ['items=0-5', { kind: 'full' }],
    ['0-5', { kind: 'full' }],
    [Array.from({ length: 17 }, (_, i) => `${i * 2}-${i * 2}`).join(',').replace(/^/, 'bytes='), { kind: 'full' }]
  ])('%s on 100 bytes', (header, expected) => {
    expect(parseRange(header, 100)).toEqual(expected)
  })

  it('serves an empty file whole', () => {
    expect(parseRange('bytes=0-0', 0)).toEqual({ kind: 'full' })
  })
})
