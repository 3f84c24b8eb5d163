import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // No DSM_* variable of the user's shell reaches a test (test/hermetic.ts).
    setupFiles: ['test/hermetic.ts'],
    // Names the suites that skipped on this machine at the end of the run (test/helpers/skip.ts).
    globalSetup: ['test/skip-summary.ts'],
    // Multi-node tests start real libp2p nodes: give them time, but not forever.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: run files in parallel two at a time, tests within a file in order.
    pool: 'forks',
    // The leak check (test/hermetic.ts) collects the heap after each file.
    execArgv: ['--expose-gc'],
    maxWorkers: 2,
    fileParallelism: true
  }
})
