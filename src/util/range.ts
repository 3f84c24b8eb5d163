/**
 * The `Range` request header (RFC 9110 §14.1–14.2), bytes only.
 *
 * - A header we cannot use is ignored and the whole file is served (200):
 *   another unit, bad syntax, a range whose last-pos is below its first-pos
 *   (the RFC calls that invalid), more than MAX_RANGES ranges, or an empty file.
 * - A valid header with no satisfiable range → 416 (Content-Range: bytes * /size).
 *   Satisfiable: an int-range whose first-pos < size, or a suffix-range with a
 *   non-zero length; last-pos past the end is clipped.
 * - Overlapping or adjacent ranges are merged; one range left → 206 with
 *   Content-Range, several → 206 multipart/byteranges.
 */
export const MAX_RANGES = 16

export interface ByteRange { start: number, end: number } // inclusive

export type RangeDecision =
  | { kind: 'full' }
  | { kind: 'unsatisfiable' }
  | { kind: 'partial', ranges: ByteRange[] }

const SPEC = /^(\d*)-(\d*)$/

export function parseRange (header: string | undefined, size: number): RangeDecision {
  if (header == null || size === 0) return { kind: 'full' }
  const eq = header.indexOf('=')
  if (eq === -1 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'full' }
  const specs = header.slice(eq + 1).split(',').map(s => s.trim()).filter(s => s !== '')
  if (specs.length === 0 || specs.length > MAX_RANGES) return { kind: 'full' }
  const ranges: ByteRange[] = []
  for (const spec of specs) {
    const m = SPEC.exec(spec)
    if (m == null) return { kind: 'full' }
    const [, a = '', b = ''] = m
    if (a === '' && b === '') return { kind: 'full' }
    // Positions may exceed 2^53: compare them exactly (BigInt), then clip to the file.
    if (a === '') {
      const suffix = BigInt(b)
      if (suffix > 0n) ranges.push({ start: suffix >= BigInt(size) ? 0 : size - Number(suffix), end: size - 1 })
      continue
    }
    const first = BigInt(a)
    if (b !== '' && BigInt(b) < first) return { kind: 'full' }
    if (first < BigInt(size)) {
      const last = b === '' ? size - 1 : Number(BigInt(b) < BigInt(size - 1) ? BigInt(b) : BigInt(size - 1))
      ranges.push({ start: Number(first), end: last })
    }
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable' }
  return { kind: 'partial', ranges: merge(ranges) }
}

function merge (ranges: ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((x, y) => x.start - y.start)
  const out: ByteRange[] = []
  for (const r of sorted) {
    const prev = out.at(-1)
    if (prev != null && r.start <= prev.end + 1) prev.end = Math.max(prev.end, r.end)
    else out.push({ ...r })
  }
  return out
}
