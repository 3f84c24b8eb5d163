import { describe, expect, it } from 'vitest'
import { LOCATE_WAVE_DELAY_MS, LOCATE_WAVE_PEERS } from '../../src/dht/locate.ts'
import { askInWaves } from '../../src/dht/locate.ts'

const peers = Array.from({ length: 40 }, (_, i) => `p${i}`)

/** An ask that says no at once, yes for `holder`, and never answers for the `silent` ones; records who was asked. */
function asker (holder: string | undefined, silent: string[] = []): { ask: (p: string) => Promise<string>, asked: string[] } {
  const asked: string[] = []
  const ask = async (p: string): Promise<string> => {
    asked.push(p)
    if (silent.includes(p)) return new Promise<string>(() => {})
    if (p === holder) return `found at ${p}`
    throw new Error(`${p} has no such file`)
  }
  return { ask, asked }
}

describe('locate asks in waves', () => {
  it('a holder in the first wave: only that wave is asked', async () => {
    const { ask, asked } = asker('p5')
    expect(await askInWaves(peers, ask, AbortSignal.timeout(5_000))).toBe('found at p5')
    expect(asked).toHaveLength(LOCATE_WAVE_PEERS)
  })

  it('a holder in the last wave: each wave starts when the one before has all said no', async () => {
    const { ask, asked } = asker('p39')
    // A delay longer than the test's timeout: only the "all said no" rule can start waves 2 and 3.
    expect(await askInWaves(peers, ask, AbortSignal.timeout(5_000), { size: LOCATE_WAVE_PEERS, delayMs: 600_000 })).toBe('found at p39')
    expect(asked).toEqual(peers)
  })

  it('a silent peer does not stall the search: the next wave starts after the delay', async () => {
    const { ask, asked } = asker('p20', ['p3'])
    const started = Date.now()
    expect(await askInWaves(peers, ask, AbortSignal.timeout(5_000))).toBe('found at p20')
    expect(Date.now() - started).toBeGreaterThanOrEqual(LOCATE_WAVE_DELAY_MS - 5)
    expect(asked).toHaveLength(2 * LOCATE_WAVE_PEERS)
  })

  it('nobody has it: undefined after everyone was asked once; an abort ends the search', async () => {
    const none = asker(undefined)
    expect(await askInWaves(peers, none.ask, AbortSignal.timeout(5_000))).toBeUndefined()
    expect([...none.asked].sort()).toEqual([...peers].sort())
    const hung = asker(undefined, peers)
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 50)
    expect(await askInWaves(peers, hung.ask, controller.signal)).toBeUndefined()
    expect(hung.asked).toHaveLength(LOCATE_WAVE_PEERS)
    const late = asker('p0')
    expect(await askInWaves(peers, late.ask, AbortSignal.abort())).toBeUndefined()
    expect(late.asked).toHaveLength(0)
  })
})
