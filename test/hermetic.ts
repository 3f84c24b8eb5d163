/**
 * Tests are hermetic: a `DSM_*` variable in the shell that runs them (the
 * quick start has users export DSM_TOKEN; an operator may have DSM_NODE or
 * DSM_DATA set) must change no outcome. Every such variable is removed from
 * each test worker before it starts — and from what the processes it spawns
 * inherit — except the test knobs documented in docs (DSM_SIM_*,
 * DSM_DURABILITY_*, DSM_TEST_*, DSM_KEEP_DATA), which exist to steer tests.
 *
 * And no test file may leak a file handle, in this process or in a node
 * process it started (./helpers/leaks.ts): after each file the heap is
 * collected (vitest runs workers with --expose-gc), so an unclosed FileHandle
 * warns, and the file fails.
 */
import { afterAll } from 'vitest'
import { takeLeaks, watchThisProcess } from './helpers/leaks.ts'

const TEST_KNOBS = /^DSM_(SIM_|DURABILITY_|TEST_|KEEP_DATA$)/

for (const name of Object.keys(process.env)) {
  if (name.startsWith('DSM_') && !TEST_KNOBS.test(name)) delete process.env[name]
}

watchThisProcess()

afterAll(async () => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc != null) {
    // Twice, a timer turn apart: the promise machinery holds the last handle it resolved for a turn; the warning
    // comes from the collected handle's finalizer, on a later turn still.
    for (let i = 0; i < 2; i++) {
      await new Promise(resolve => setTimeout(resolve, 10))
      gc()
    }
    for (let i = 0; i < 3; i++) await new Promise(resolve => setImmediate(resolve))
  }
  const leaks = takeLeaks()
  if (leaks.length > 0) throw new Error(`file handles were left to the garbage collector:\n${leaks.join('\n')}`)
})
