/** Shared helpers of the benchmarks: tables, stats, result files. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const RESULTS_DIR = join(import.meta.dirname, 'results')

export interface Stats { min: number, median: number, max: number }

export function stats (values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b)
  return { min: s[0] ?? NaN, median: s[Math.floor(s.length / 2)] ?? NaN, max: s[s.length - 1] ?? NaN }
}

export function percentile (values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN
}

export function printTable (title: string, header: string[], rows: Array<Array<string | number>>): void {
  const cells = rows.map(r => r.map(c => typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(1)) : c))
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map(r => (r[i] ?? '').length)))
  const line = (r: string[]): string => '| ' + r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ') + ' |'
  process.stdout.write(`\n${title}\n${line(header)}\n|${widths.map(w => '-'.repeat(w + 2)).join('|')}|\n${cells.map(line).join('\n')}\n`)
}

export function writeResults (name: string, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const path = join(RESULTS_DIR, `${name}.json`)
  writeFileSync(path, JSON.stringify({ measuredAt: new Date().toISOString(), node: process.version, ...data as object }, null, 2) + '\n')
  return path
}

export const MiB = 1024 * 1024
