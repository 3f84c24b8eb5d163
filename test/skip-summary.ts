/**
 * Global setup: collects the suites that skipped (./helpers/skip.ts) across
 * the test workers and names them in one line at the end of the run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SKIP_LOG_ENV } from './helpers/skip.ts'

export default function setup (): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'dsm-skips-'))
  const log = join(dir, 'skipped.txt')
  // Set before the workers start: they inherit it.
  process.env[SKIP_LOG_ENV] = log
  return () => {
    let lines: string[] = []
    try { lines = readFileSync(log, 'utf8').split('\n').filter(l => l !== '') } catch { /* nothing skipped */ }
    rmSync(dir, { recursive: true, force: true })
    if (lines.length > 0) console.warn(`\nSKIPPED ${lines.length} suite(s) on this machine:\n  ${[...new Set(lines)].join('\n  ')}\n(CI installs what they need and runs them all: .ci/run)`)
  }
}
