/** Shared helpers of the benchmarks: tables, stats, result files. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
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

/** CPU time (user + system, ms) a process has used so far, from /proc/<pid>/stat (NaN when gone). */
export async function cpuMsOf (pid: number | undefined): Promise<number> {
  const stat = await readFile(`/proc/${pid ?? 0}/stat`, 'utf8').catch(() => '')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11] ?? NaN) + Number(fields[12] ?? NaN)) * 10
}

/** Peak RSS (MiB) of a process so far, from /proc/<pid>/status (NaN when gone). */
export async function peakRssMiB (pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid ?? 0}/status`, 'utf8').catch(() => '')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024
}

/** CPU ms each process used while `work` ran, added into `into` (per process). */
export async function cpuDuring<T> (pids: Array<number | undefined>, into: number[], work: () => Promise<T>): Promise<T> {
  const before = await Promise.all(pids.map(cpuMsOf))
  const out = await work()
  const after = await Promise.all(pids.map(cpuMsOf))
  after.forEach((v, i) => { into[i] = (into[i] ?? 0) + v - (before[i] ?? 0) })
  return out
}

/**
 * Wait until the processes together use less than `maxCores` of a core over
 * a `windowMs` window (background work after a setup phase — replication,
 * checkpoints — must not land in the next measurement); gives up after `timeoutMs`.
 */
export async function quiet (pids: Array<number | undefined>, { maxCores = 0.1, windowMs = 1_000, timeoutMs = 60_000 } = {}): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    const used: number[] = []
    await cpuDuring(pids, used, async () => new Promise(resolve => setTimeout(resolve, windowMs)))
    if (used.reduce((a, v) => a + v, 0) / windowMs < maxCores) return true
  }
  return false
}
