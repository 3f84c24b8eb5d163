/**
 * Tests are hermetic: a `DSM_*` variable in the shell that runs them (the
 * quick start has users export DSM_TOKEN; an operator may have DSM_NODE or
 * DSM_DATA set) must change no outcome. Every such variable is removed from
 * each test worker before it starts — and from what the processes it spawns
 * inherit — except the test knobs documented in docs (DSM_SIM_*,
 * DSM_DURABILITY_*, DSM_KEEP_DATA), which exist to steer tests.
 */
const TEST_KNOBS = /^DSM_(SIM_|DURABILITY_|KEEP_DATA$)/

for (const name of Object.keys(process.env)) {
  if (name.startsWith('DSM_') && !TEST_KNOBS.test(name)) delete process.env[name]
}
