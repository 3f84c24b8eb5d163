/**
 * The upload limiter (src/util/limiter.ts): never more than `concurrency`
 * tasks at once, waiters start in order, a waiter that is aborted or cleared
 * leaves without taking a slot, and a full waiting line refuses at once —
 * checked over random interleavings of starts, finishes and aborts.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Limiter } from '../../src/util/limiter.ts'

describe('Limiter', () => {
  it('keeps to its concurrency and order whatever the interleaving of finishes and aborts', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.constantFrom('add', 'finish', 'abort'), { minLength: 1, maxLength: 60 }),
      async (concurrency, steps) => {
        const limiter = new Limiter(concurrency, 1_000)
        let running = 0
        let peak = 0
        const started: number[] = []
        const tasks: Array<{ n: number, finish: () => void, abort: AbortController, outcome: Promise<string> }> = []
        let n = 0
        for (const step of steps) {
          if (step === 'add') {
            const gate = Promise.withResolvers<void>()
            const abort = new AbortController()
            const k = n++
            const outcome = limiter.run(async () => {
              running++
              peak = Math.max(peak, running)
              started.push(k)
              await gate.promise
              running--
              return 'ran'
            }, { signal: abort.signal }).catch(() => 'aborted')
            tasks.push({ n: k, finish: gate.resolve, abort, outcome })
          } else {
            const t = step === 'finish' ? tasks.find(t => started.includes(t.n)) : tasks.find(t => !started.includes(t.n))
            if (t == null) continue
            if (step === 'finish') t.finish()
            else t.abort.abort(new Error('gone'))
            tasks.splice(tasks.indexOf(t), 1)
          }
          await new Promise(resolve => setImmediate(resolve))
          expect(running).toBeLessThanOrEqual(concurrency)
        }
        // Drain: everything left finishes; nothing aborted ever started.
        while (tasks.length > 0) {
          await new Promise(resolve => setImmediate(resolve))
          // A task waits only while every slot is taken: with tasks left, one of them runs.
          const next = tasks.find(t => started.includes(t.n))
          if (next == null) throw new Error(`tasks ${tasks.map(t => t.n).join(', ')} wait with no task running`)
          next.finish()
          tasks.splice(tasks.indexOf(next), 1)
          expect(await next.outcome).toBe('ran')
        }
        expect(peak).toBeLessThanOrEqual(concurrency)
        // Tasks started in the order they were added (aborted ones skipped).
        expect(started).toEqual([...started].sort((a, b) => a - b))
        expect(limiter.size).toBe(0)
      }), { numRuns: 200 })
  })

  it('refuses when its waiting line is full, and clear() fails the waiting tasks only', async () => {
    const limiter = new Limiter(1, 1)
    const gate = Promise.withResolvers<void>()
    const first = limiter.run(async () => { await gate.promise; return 1 })
    const second = limiter.run(async () => 2)
    await expect(limiter.run(async () => 3)).rejects.toMatchObject({ name: 'UnavailableError' })
    limiter.clear(new Error('stopping'))
    await expect(second).rejects.toThrow('stopping')
    gate.resolve()
    expect(await first).toBe(1)
    expect(limiter.size).toBe(0)
    // The slot is free again.
    expect(await limiter.run(async () => 4)).toBe(4)
  })
})
