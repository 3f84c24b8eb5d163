/**
 * The failover rule of every reader (src/stream/failover.ts) with stubbed
 * sources: one serving the right bytes, one whose bytes fail verification,
 * one that stalls until aborted, one that throws. The stall clock is
 * IdleTimeout's setTimeout, driven here by fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { chunkDigest } from '../../src/content/chunk-hash.ts'
import { chunksForRange, createManifest, verifyChunk } from '../../src/content/manifest.ts'
import { CorruptChunkError, FileNotFoundError } from '../../src/errors.ts'
import { MAX_STALL_RETRIES, SourcePool, fetchInOrder, noSourceLeft } from '../../src/stream/failover.ts'
import { randomBytes, sha256hex } from '../helpers/data.ts'
import type { Manifest } from '../../src/content/manifest.ts'
import type { ChunkSource, FailoverOptions } from '../../src/stream/failover.ts'
import type { Chunk } from '../../src/stream/get.ts'

const CHUNK = 1024
const STALL_MS = 1_000
const data = randomBytes(4 * CHUNK + 300, 7) // five chunks, the last one short
const manifest: Manifest = await (async () => {
  const chunks: Uint8Array[] = []
  for (let at = 0; at < data.byteLength; at += CHUNK) chunks.push(await chunkDigest(data.subarray(at, at + CHUNK)))
  return createManifest({ size: data.byteLength, chunkSize: CHUNK, chunks, name: 'failover.mp4', mime: 'video/mp4' })
})()
const LAST = manifest.chunks.length - 1

type Behaviour = 'good' | 'corrupt' | 'stall' | 'throw' | 'gone'
interface Stub extends ChunkSource { asked: number[] }

/**
 * A source that serves chunks faithfully until `at`, then behaves as told. It verifies what it sends, as
 * fetchChunks does: a corrupt chunk is a CorruptChunkError, never bytes handed on.
 */
function stub (id: string, behaviour: Behaviour = 'good', at = 0, times = Infinity): Stub {
  let misbehaved = 0
  const s: Stub = {
    id,
    asked: [],
    async * fetch (m, offset, length, { signal }) {
      s.asked.push(offset)
      const { first, last } = chunksForRange(m, offset, length)
      for (let index = first; index <= last; index++) {
        signal?.throwIfAborted() // as the real sources do
        const bytes = data.slice(index * CHUNK, (index + 1) * CHUNK)
        if (index === at && behaviour !== 'good' && misbehaved++ < times) {
          if (behaviour === 'throw') throw new Error(`${id}: connection reset`)
          if (behaviour === 'gone') throw new FileNotFoundError(`${id}: not here`)
          if (behaviour === 'stall') await new Promise((_resolve, reject) => { signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true }) })
          bytes[0] = (bytes[0] as number) ^ 0xff
        }
        if (!await verifyChunk(m, index, bytes)) throw new CorruptChunkError(`${id} sent a bad chunk ${index}`)
        yield { index, data: bytes }
      }
    }
  }
  return s
}

/** Read chunks first..last, moving the fake clock on while the read waits; the bytes and the error it ended with. */
async function read (pool: SourcePool, options: FailoverOptions = {}, first = 0, last = LAST): Promise<{ bytes: Uint8Array, err?: Error }> {
  const got: Chunk[] = []
  let err: Error | undefined
  let done = false
  const run = (async () => { for await (const c of fetchInOrder(manifest, first, last, first * CHUNK, Math.min(data.byteLength, (last + 1) * CHUNK), pool, { stallTimeoutMs: STALL_MS, ...options })) got.push(c) })()
    .catch((e: Error) => { err = e }).finally(() => { done = true })
  for (let i = 0; i < 20 && !done; i++) await vi.advanceTimersByTimeAsync(STALL_MS)
  expect(done, 'the read ended').toBe(true)
  await run
  expect(got.map(c => c.index)).toEqual(got.map((_, i) => first + i)) // in order, none twice
  return { bytes: Buffer.concat(got.map(c => c.data)), ...(err != null ? { err } : {}) }
}

const whole = sha256hex(data)

describe('fetchInOrder', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('yields every chunk of a good source, each reported with its source', async () => {
    const good = stub('good')
    const served: Array<[string, number]> = []
    const { bytes, err } = await read(new SourcePool([good]), { onChunk: (s, c) => { served.push([s.id, c.index]) } })
    expect(err).toBeUndefined()
    expect(sha256hex(bytes)).toBe(whole)
    expect(served).toEqual([0, 1, 2, 3, 4].map(i => ['good', i]))
    expect(good.asked).toEqual([0])
  })

  it.each(['corrupt', 'throw', 'stall'] as const)('a source that turns %s mid-read is left for the next one, from its next chunk', async (behaviour) => {
    const bad = stub('bad', behaviour, 2)
    const good = stub('good')
    const failed = vi.fn()
    const { bytes, err } = await read(new SourcePool([bad, good]), { onSourceFailed: failed })
    expect(err).toBeUndefined()
    expect(sha256hex(bytes)).toBe(whole)
    expect(good.asked).toEqual([2 * CHUNK])
    expect(failed).toHaveBeenCalledTimes(1)
    const why = { corrupt: 'CorruptChunkError', throw: 'Error', stall: 'TimeoutError' }[behaviour]
    expect(failed.mock.calls[0]).toEqual([bad, expect.objectContaining({ name: why })])
  })

  it('a source that sends the wrong chunk, or ends early, is failed over', async () => {
    const skips: ChunkSource = { id: 'skips', async * fetch () { yield { index: 1, data: data.slice(CHUNK, 2 * CHUNK) } } }
    const short: ChunkSource = { id: 'short', async * fetch () { yield { index: 0, data: data.slice(0, CHUNK) } } }
    const pool = new SourcePool([skips, short, stub('good')])
    const { bytes, err } = await read(pool)
    expect(err).toBeUndefined()
    expect(sha256hex(bytes)).toBe(whole)
    expect(pool.failures.map(e => e.message)).toEqual(['source skips sent chunk 1, expected 0', 'source short ended at chunk 1 of 4'])
  })

  it(`a source that only stalls is asked again once all others failed, at most ${MAX_STALL_RETRIES} more times`, async () => {
    const slow = stub('slow', 'stall', 0)
    const broken = stub('broken', 'throw', 0)
    const pool = new SourcePool([slow, broken])
    const { bytes, err } = await read(pool)
    expect(bytes.byteLength).toBe(0)
    expect(slow.asked).toHaveLength(1 + MAX_STALL_RETRIES)
    expect(broken.asked).toHaveLength(1)
    expect(err).toMatchObject({ name: 'UnavailableError', code: 'ERR_UNAVAILABLE' })
    expect((err?.cause as AggregateError).errors.map((e: Error) => e.name)).toEqual(['TimeoutError', 'Error', 'TimeoutError', 'TimeoutError'])
    expect(pool.healthy).toBe(0)
  })

  it('a stalled source that recovers on its second chance finishes the read', async () => {
    const slow = stub('slow', 'stall', 3, 1)
    const { bytes, err } = await read(new SourcePool([slow, stub('broken', 'corrupt', 3)]))
    expect(err).toBeUndefined()
    expect(sha256hex(bytes)).toBe(whole)
    expect(slow.asked).toEqual([0, 3 * CHUNK])
  })

  it('when every source says the file is gone, the read is a FileNotFoundError', async () => {
    const { err } = await read(new SourcePool([stub('a', 'gone', 0), stub('b', 'gone', 0)]))
    expect(err).toMatchObject({ name: 'FileNotFoundError', code: 'ERR_FILE_NOT_FOUND' })
    const mixed = await read(new SourcePool([stub('a', 'gone', 0), stub('b', 'throw', 0)]))
    expect(mixed.err).toMatchObject({ name: 'UnavailableError' })
    expect(mixed.err?.message).toContain('last error: b: connection reset')
  })

  it('the consumer taking its time is not a stall; its own abort ends the read without blaming the source', async () => {
    const good = stub('good')
    const failed = vi.fn()
    const controller = new AbortController()
    const chunks = fetchInOrder(manifest, 0, LAST, 0, data.byteLength, new SourcePool([good]), { stallTimeoutMs: STALL_MS, signal: controller.signal, onSourceFailed: failed })
    expect((await chunks.next()).value).toMatchObject({ index: 0 })
    await vi.advanceTimersByTimeAsync(10 * STALL_MS)
    expect((await chunks.next()).value).toMatchObject({ index: 1 })
    controller.abort(new Error('client went away'))
    await expect(chunks.next()).rejects.toThrow('client went away')
    expect(failed).not.toHaveBeenCalled()
    expect(good.asked).toEqual([0])
  })
})

describe('SourcePool', () => {
  it('hands out the first `parallel` sources in turn, the next one once one fails', () => {
    const [a, b, c] = [stub('a'), stub('b'), stub('c')]
    const pool = new SourcePool([a, b, c], 2)
    expect([pool.next(), pool.next(), pool.next()].map(s => s?.id)).toEqual(['a', 'b', 'a'])
    pool.fail(a, new Error('reset'))
    expect(pool.healthy).toBe(2)
    expect([pool.next(), pool.next()].map(s => s?.id).sort()).toEqual(['b', 'c'])
    pool.fail(b, Object.assign(new Error('slow'), { name: 'TimeoutError' }))
    pool.fail(c, new Error('reset'))
    expect(pool.healthy).toBe(1) // b, while retries are left
    expect(pool.next()?.id).toBe('b')
    expect(new SourcePool([], 0).next()).toBeUndefined()
  })
})

describe('noSourceLeft', () => {
  it('names the chunk, the file and the last failure; with no failure at all it is unavailable', () => {
    const err = noSourceLeft(manifest, 3, [new Error('first'), new Error('second')])
    expect(err).toMatchObject({ name: 'UnavailableError', message: `no replica could serve chunk 3 of ${manifest.id.toString()} (last error: second)` })
    expect((err.cause as AggregateError).errors).toHaveLength(2)
    expect(noSourceLeft(manifest, 0, [])).toMatchObject({ name: 'UnavailableError' })
    expect(noSourceLeft(manifest, 0, [new FileNotFoundError('gone')])).toMatchObject({ name: 'FileNotFoundError' })
  })
})
