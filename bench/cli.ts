/**
 * `npm run bench -- cli [--runs N]`: how long `dsm` commands take from exec
 * to exit — `dsm --help`, and `dsm ls` / `dsm groups` against a running node
 * (one `bin/dsm node` process). Baseline, same run: the pinned Node starting
 * and exiting with nothing to do (`node -e 0`), which no command can beat.
 * Median and max of N runs each.
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DSM_BIN, eventually, startProcNode } from '../test/sim/proc.ts'
import { printTable, stats, writeResults } from './lib.ts'

const NODE_BIN = join(import.meta.dirname, '..', 'node_modules', '.bin', 'node')

function timeRun (cmd: string, args: string[], env: Record<string, string> = {}): number {
  const t0 = performance.now()
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  const ms = performance.now() - t0
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${String(r.status)}: ${r.stderr.toString()}`)
  return ms
}

function parseRuns (args: string[]): number {
  const i = args.indexOf('--runs')
  const runs = i >= 0 ? Number(args[i + 1]) : 15
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer (got ${String(args[i + 1])})`)
  return runs
}

export async function run (args: string[]): Promise<void> {
  const runs = parseRuns(args)
  const root = await mkdtemp(join(tmpdir(), 'dsm-bench-cli-'))
  const node = await startProcNode({ dataDir: join(root, 'n1'), args: ['--group', 'g1'] })
  try {
    await eventually(async () => (await fetch(`${node.url}/api/peers`)).json() as Promise<Array<{ state: string }>>, p => p.some(m => m.state === 'ACTIVE'), 30_000, 'the node is ACTIVE')
    const env = { DSM_NODE: node.url }
    const cases: Array<[string, string, string[]]> = [
      ['baseline: node -e 0', NODE_BIN, ['-e', '0']],
      ['dsm --help', DSM_BIN, ['--help']],
      ['dsm ls', DSM_BIN, ['ls']],
      ['dsm groups', DSM_BIN, ['groups']]
    ]
    const results: Record<string, { median_ms: number, max_ms: number }> = {}
    for (const [name, cmd, argv] of cases) {
      timeRun(cmd, argv, env) // warm the page cache
      const s = stats(Array.from({ length: runs }, () => timeRun(cmd, argv, env)))
      results[name] = { median_ms: s.median, max_ms: s.max }
    }
    const base = results['baseline: node -e 0']?.median_ms ?? NaN
    printTable(`dsm commands, exec to exit (ms, ${runs} runs each)`, ['command', 'median', 'max', 'above a bare node start'],
      Object.entries(results).map(([name, r]) => [name, r.median_ms, r.max_ms, name.startsWith('baseline') ? '' : (r.median_ms - base).toFixed(1)]))
    const path = writeResults('cli', { runs, results, help_ms: results['dsm --help']?.median_ms, ls_ms: results['dsm ls']?.median_ms, node_start_ms: base })
    process.stdout.write(`\nwrote ${path}\n`)
  } finally {
    await node.stop()
    await rm(root, { recursive: true, force: true })
  }
}
