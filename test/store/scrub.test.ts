/**
 * The scrub keeps its progress: a pass cut short by a restart resumes where
 * it stopped, a node never scrubbed starts a pass at once, and one scrubbed
 * lately waits out the pause.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { tempStore } from '../helpers/temp-store.ts'
import type { LocalStore } from '../../src/store/local-store.ts'
import { chunkDigest } from '../../src/content/chunk-hash.ts'
import { silentLogger } from '../../src/logger.ts'
import { Scrub, scrubProgress } from '../../src/store/scrub.ts'
import type { StagedChunk } from '../../src/store/chunk-store.ts'
import type { Db } from '../../src/store/db.ts'

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f() })

async function storeWithChunks (n: number): Promise<{ db: Db, store: LocalStore }> {
  const { db, store } = await tempStore(cleanup)
  const staged: StagedChunk[] = []
  for (let i = 0; i < n; i++) {
    const data = new TextEncoder().encode(`chunk ${i}`)
    staged.push(await store.putChunk(await chunkDigest(data), data))
  }
  db.transaction(() => { store.chunks.insert(staged) })
  return { db, store }
}

describe('scrub progress', () => {
  it('a pass cut short resumes where it stopped; then the next waits out the pause', async () => {
    const { db, store } = await storeWithChunks(20)
    const progress = scrubProgress(db)
    const first = new Scrub({ chunks: store.chunks, logger: silentLogger, corrupt: () => {}, progress }, { pageSize: 5, bytesPerS: 2 ** 40 })
    const stop = new AbortController()
    const saving = progress.save
    let saves = 0
    progress.save = (p) => { saving(p); if (++saves === 2) stop.abort() }
    await expect(first.pass({ signal: stop.signal })).rejects.toThrow()
    progress.save = saving
    expect(first.counters.checked).toBe(10)
    expect(progress.load()?.after).not.toBe('')
    // A new process: the pass resumes at the 11th chunk, and ends the pass.
    const second = new Scrub({ chunks: store.chunks, logger: silentLogger, corrupt: () => {}, progress }, { pageSize: 5, bytesPerS: 2 ** 40 })
    expect((await second.pass()).checked).toBe(10)
    expect(progress.load()).toMatchObject({ after: '' })
    expect(progress.load()?.lastPassAt).toBeGreaterThan(0)
  })

  it('a node never scrubbed starts a pass when it starts', async () => {
    const { db, store } = await storeWithChunks(3)
    const scrub = new Scrub({ chunks: store.chunks, logger: silentLogger, corrupt: () => {}, progress: scrubProgress(db) }, { passPauseMs: 3_600_000, bytesPerS: 2 ** 40 })
    const passed = new Promise<void>(resolve => { const t = setInterval(() => { if (scrub.counters.passes > 0) { clearInterval(t); resolve() } }, 5) })
    await scrub.start()
    cleanup.push(async () => { await scrub.stop() })
    await passed
    expect(scrub.counters.checked).toBe(3)
  })
})
