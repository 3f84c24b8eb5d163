/**
 * The fault simulation (test/sim/scenario.ts) at CI size: 30 real nodes in
 * one process, a seeded window of faults (kills, restarts, partitions, slow
 * disks) with uploads, reads and deletes, then heal and the invariants.
 * `npm run sim` runs the same code at any size.
 */
import { describe, expect, it } from 'vitest'
import { formatResult, runSim } from '../sim/scenario.ts'

const SIM_NODES = 30
const SIM_FAULTS = 5
/** Its schedule: partition, heal, partition, kill, restart; files written before them, two deleted during them. */
const SIM_SEED = 3
/** Measured 32–70 s alone on the 2-core host; room for a test file running beside it. */
const SIM_TIMEOUT_MS = 150_000

describe('fault simulation', () => {
  it(`${SIM_NODES} nodes, ${SIM_FAULTS} faults: no acknowledged file lost, no deleted file back, S3 keys as their history allows, views converge`, async () => {
    const log: string[] = []
    const r = await runSim({ nodes: SIM_NODES, groupSize: 3, seed: SIM_SEED, faults: SIM_FAULTS, log: (line) => { log.push(line) } })
    // The log tells what went wrong (which file, which node, what the views looked like).
    const context = `${formatResult(r)}\n${log.join('\n')}`
    expect(r.acked, context).toBeGreaterThan(0)
    expect(r.lost, context).toBe(0)
    expect(r.resurrected, context).toBe(0)
    expect(r.underReplicated, context).toBe(0)
    expect(r.keysAcked, context).toBeGreaterThan(0)
    expect(r.keyViolations, context).toBe(0)
    expect(r.converged, context).toBe(true)
  }, SIM_TIMEOUT_MS)
})
