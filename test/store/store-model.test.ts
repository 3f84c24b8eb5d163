/**
 * The store against its model under random interleavings (./store-model.ts):
 * concurrent uploads, deletes, reads, compactions, scrubs and syncs across
 * tiny volumes, with clean restarts and crashes that keep only what was
 * synced. Bounded here; `npm run stress -- --seed N --runs R --steps S` runs
 * it long.
 */
import { describe, expect, it } from 'vitest'
import { checkStoreModel } from './store-model.ts'

describe('store model', () => {
  it('acknowledged writes survive random interleavings, restarts and crashes; deletes stay deleted', async () => {
    const { runs, steps } = await checkStoreModel({ seed: 20261206, runs: 12, steps: 80 })
    expect(runs).toBe(12)
    expect(steps).toBeGreaterThan(0)
  }, 240_000)
})
