/**
 * `npm run stress -- [--seed N] [--runs R] [--steps S]`: the store's model-based
 * stress test (./store-model.ts) for as long as asked. A failure prints
 * fast-check's report: the seed, the path and the shrunk operations that
 * reproduce it (pass the same --seed to run it again).
 */
import { parseArgs } from 'node:util'
import { checkStoreModel } from './store-model.ts'

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    runs: { type: 'string', default: '50' },
    steps: { type: 'string', default: '200' }
  }
})
const num = (name: string, text: string): number => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1) { console.error(`--${name} must be a positive integer, not "${text}"`); process.exit(2) }
  return n
}
const options = { seed: num('seed', values.seed), runs: num('runs', values.runs), steps: num('steps', values.steps) }
console.log(`store model: seed ${options.seed}, ${options.runs} runs of at most ${options.steps} operations`)
const started = performance.now()
try {
  const r = await checkStoreModel(options)
  console.log(`passed: ${r.runs} runs, ${r.steps} operations (${r.acked} acknowledged uploads, ${r.deletes} deletes, ${r.chunkReads} chunk reads checked, ${r.rotations} rotations, ${r.compacted} volumes compacted, ${r.crashes} crashes, ${r.restarts} restarts) in ${((performance.now() - started) / 1000).toFixed(1)} s`)
} catch (err) {
  console.error((err as Error).message)
  process.exit(1)
}
