/** A reference model of HTTP Range (RFC 9110 §14) and a generator of Range headers, for the fuzz suites. */
import fc from 'fast-check'
import { MAX_RANGES } from '../../src/util/range.ts'
import type { parseRange } from '../../src/util/range.ts'

/** An RFC 9110 §14 reference: BigInt positions, OWS = SP / HTAB, empty list elements allowed. */
export function modelRange (header: string | undefined, size: number): ReturnType<typeof parseRange> {
  if (header == null || size === 0) return { kind: 'full' }
  const m = /^[ \t]*([^=]*?)[ \t]*=(.*)$/s.exec(header)
  if (m == null || (m[1] ?? '').toLowerCase() !== 'bytes') return { kind: 'full' }
  const specs = (m[2] ?? '').split(',').map(s => s.replace(/^[ \t]+|[ \t]+$/g, '')).filter(s => s !== '')
  if (specs.length === 0 || specs.length > MAX_RANGES) return { kind: 'full' }
  const big = BigInt(size)
  const ranges: Array<{ start: bigint, end: bigint }> = []
  for (const spec of specs) {
    const r = /^([0-9]*)-([0-9]*)$/.exec(spec)
    if (r == null) return { kind: 'full' }
    const [, a = '', b = ''] = r
    if (a === '' && b === '') return { kind: 'full' }
    if (a === '') {
      const suffix = BigInt(b)
      if (suffix > 0n) ranges.push({ start: suffix >= big ? 0n : big - suffix, end: big - 1n })
      continue
    }
    const first = BigInt(a)
    if (b !== '' && BigInt(b) < first) return { kind: 'full' } // invalid: the whole header is ignored
    if (first < big) ranges.push({ start: first, end: b === '' || BigInt(b) >= big ? big - 1n : BigInt(b) })
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable' }
  ranges.sort((x, y) => x.start < y.start ? -1 : x.start > y.start ? 1 : 0)
  const merged: Array<{ start: bigint, end: bigint }> = []
  for (const r of ranges) {
    const prev = merged.at(-1)
    if (prev != null && r.start <= prev.end + 1n) prev.end = r.end > prev.end ? r.end : prev.end
    else merged.push({ ...r })
  }
  return { kind: 'partial', ranges: merged.map(r => ({ start: Number(r.start), end: Number(r.end) })) }
}

export const ows = fc.constantFrom('', '', '', ' ', '\t', '  ')
export function rangeHeaderArb (size: number, opts: { hugeNumbers: boolean, ascii?: boolean }): fc.Arbitrary<string> {
  const small = fc.integer({ min: 0, max: size * 2 + 2 }).map(String)
  const numbers = [
    { weight: 6, arbitrary: small },
    { weight: 1, arbitrary: fc.constantFrom('0', '00', '007', String(size - 1), String(size), String(size + 1)) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 1e15 }).map(String) }
  ]
  if (opts.hugeNumbers) numbers.push({ weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 10n ** 25n }).map(String) })
  const num = fc.oneof(...numbers)
  // Two distinct numbers that may round to one double (past 2^53).
  const closePair = fc.tuple(fc.constantFrom(2n ** 53n, 2n ** 60n, 10n ** 20n), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }))
    .map(([base, x, y]) => `${base + BigInt(x)}-${base + BigInt(y)}`)
  const specArbs = [
    { weight: 5, arbitrary: fc.tuple(num, num).map(([a, b]) => `${a}-${b}`) },
    { weight: 2, arbitrary: num.map(a => `${a}-`) },
    { weight: 2, arbitrary: num.map(b => `-${b}`) },
    { weight: 1, arbitrary: fc.constantFrom('', '-', '--', '1-2-3', 'a-b', '1 - 2', '+1-2', '0x1-2', '1.5-2', '-0', '0-0', ...(opts.ascii === true ? [] : ['٣-٤', '1-²'])) },
    { weight: 1, arbitrary: fc.string({ maxLength: 6, unit: fc.constantFrom(...'0123456789-, =abyt') }) }
  ]
  if (opts.hugeNumbers) specArbs.push({ weight: 1, arbitrary: closePair })
  const spec = fc.tuple(ows, fc.oneof(...specArbs), ows).map(([a, s, b]) => a + s + b)
  const unit = fc.constantFrom('bytes', 'bytes', 'bytes', 'BYTES', 'Bytes', 'byte', 'items', '', 'bytes bytes')
  return fc.oneof(
    { weight: 10, arbitrary: fc.tuple(ows, unit, ows, fc.constantFrom('=', '=', '=', '==', ''), fc.array(spec, { minLength: 0, maxLength: 20 })).map(([a, u, b, eq, specs]) => `${a}${u}${b}${eq}${specs.join(',')}`) },
    { weight: 1, arbitrary: fc.string({ maxLength: 30, unit: fc.constantFrom(...'bytes=0123456789-, \t') }) }
  )
}
