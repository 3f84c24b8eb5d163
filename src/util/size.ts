/** Byte sizes as people write them: `1048576`, `512KiB`, `1.5 GB`, `10%` (where allowed). */

const UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40
}

export type SizeSpec = { bytes: number } | { percent: number }

/** Parse a size; returns undefined when the text is not one. */
export function parseSize (text: string, options: { allowPercent?: boolean } = {}): SizeSpec | undefined {
  // Trim first: leading/trailing \s* in the pattern backtracks quadratically on long blank runs.
  const m = /^(\d+(?:\.\d+)?) ?([a-zA-Z%]*)$/.exec(text.trim())
  if (m == null) return undefined
  const value = Number(m[1])
  const unit = (m[2] ?? '').toLowerCase()
  if (unit === '%') return options.allowPercent === true && value <= 100 ? { percent: value } : undefined
  const factor = unit === '' ? 1 : UNITS[unit]
  if (factor == null) return undefined
  const bytes = Math.round(value * factor)
  return Number.isSafeInteger(bytes) ? { bytes } : undefined
}

/** Resolve a spec against a total (for percentages). */
export function sizeOf (spec: SizeSpec, total: number): number {
  return 'bytes' in spec ? spec.bytes : Math.floor(total * spec.percent / 100)
}
