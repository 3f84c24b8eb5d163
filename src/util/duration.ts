/** Durations as people write them: `60000` (ms), `500ms`, `60s`, `2m`, `1h`. */
const FACTORS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

export function parseDuration (text: string): number | undefined {
  // Trim first: leading/trailing \s* in the pattern backtracks quadratically on long blank runs.
  const m = /^(\d+(?:\.\d+)?) ?(ms|s|m|h)?$/.exec(text.trim())
  if (m == null) return undefined
  const ms = Math.round(Number(m[1]) * (FACTORS[m[2] ?? ''] ?? NaN))
  return Number.isSafeInteger(ms) ? ms : undefined
}
