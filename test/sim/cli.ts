/**
 * `npm run sim -- --nodes N --group-size G --seed S --faults K [--latency-ms L] [--window W] [--quiet]`
 * (--window: faults between two checks, default 5, 10 above 100 nodes; --latency-ms: added per link message, default 0)
 * Runs the seeded fault simulation (./scenario.ts) and ends with exactly one line:
 * `sim: nodes=N faults=K acked=A lost=L resurrected=R converged=yes|no seconds=T`
 * Exit code 0 when nothing was lost or resurrected and everything converged.
 */
import { parseArgs } from 'node:util'
import { formatResult, runSim } from './scenario.ts'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '30' },
    'group-size': { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    faults: { type: 'string', default: '10' },
    'latency-ms': { type: 'string', default: '0' },
    window: { type: 'string' },
    quiet: { type: 'boolean', default: false }
  },
  strict: true
})

const num = (name: string, v: string | undefined, min: number): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`sim: --${name} must be an integer ≥ ${min}, got "${v ?? ''}"\n`)
    process.exit(2)
  }
  return n
}

const result = await runSim({
  nodes: num('nodes', values.nodes, 2),
  groupSize: num('group-size', values['group-size'], 1),
  seed: num('seed', values.seed, 0),
  faults: num('faults', values.faults, 0),
  latencyMs: num('latency-ms', values['latency-ms'], 0),
  // By default the scenario sizes windows to the cluster.
  ...(values.window != null ? { window: num('window', values.window, 1) } : {}),
  log: values.quiet === true ? undefined : (line) => { process.stderr.write(`${line}\n`) }
})
process.stdout.write(`${formatResult(result)}\n`)
process.exit(result.lost === 0 && result.resurrected === 0 && result.converged ? 0 : 1)
