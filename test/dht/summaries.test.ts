/**
 * Group summaries (src/dht/summaries.ts, src/dht/bloom.ts): a cold
 * read asks the group a summary points to first, a file newer than every
 * summary is still found, and a stranger to the group is refused one.
 */
import { describe, expect, it } from 'vitest'
import { BLOOM_MIN_BYTES, BloomFilter } from '../../src/dht/bloom.ts'
import { parseFileId } from '../../src/content/manifest.ts'
import { SummaryRequestSchema, SummaryResponseSchema, PROTOCOLS } from '../../src/wire/messages.ts'
import { request } from '../../src/wire/rpc.ts'
import { randomBytes, sha256hex, upload } from '../helpers/data.ts'
import { createSimCluster, readWhole } from '../sim/cluster.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import type { SimCluster } from '../sim/cluster.ts'

const GROUPS = 6

describe('BloomFilter', () => {
  it('never forgets an entry and errs on about 1 % of others at capacity', () => {
    const f = BloomFilter.forCapacity(20_000)
    const ids = Array.from({ length: f.capacity }, (_, i) => `bafy-in-${i}`)
    for (const id of ids) f.add(id)
    expect(ids.filter(id => !f.has(id))).toEqual([])
    const probes = 20_000
    const wrong = Array.from({ length: probes }, (_, i) => `bafy-out-${i}`).filter(id => f.has(id)).length
    expect(wrong / probes).toBeLessThan(0.02)
  })

  it('refuses impossible shapes', () => {
    expect(() => new BloomFilter(new Uint8Array(0))).toThrow(RangeError)
    expect(() => new BloomFilter(new Uint8Array(8), 0)).toThrow(RangeError)
    expect(() => new BloomFilter(new Uint8Array(8), 33)).toThrow(RangeError)
    expect(BloomFilter.forCapacity(0).bits.byteLength).toBe(BLOOM_MIN_BYTES)
  })
})

const url = (c: SimCluster, i: number): string => c.node(i).http?.url as string

describe('locating through group summaries', () => {
  it('a cold read asks the one group its summary points to; a file newer than the summary is found all the same', async () => {
    // One node per group, so that "asked one member" means "asked one group".
    const c = await createSimCluster({ nodes: GROUPS + 1, http: true, configure: (i) => i < GROUPS ? { group: `g${i + 1}`, groupSize: 1, minCopies: 1 } : { spare: true } })
    try {
      await c.ready()
      const files: Array<{ id: string, sha: string, group: number }> = []
      for (let g = 0; g < GROUPS; g++) {
        for (let k = 0; k < 3; k++) {
          const data = randomBytes(10_000, 100 * g + k)
          const res = await upload(url(c, g), data, `g${g}-${k}.bin`, { group: `g${g + 1}` })
          expect(res.status, JSON.stringify(res.body)).toBe(201)
          files.push({ id: res.body.id as string, sha: sha256hex(data), group: g })
        }
      }
      const reader = c.node(GROUPS)
      const { locator, summaries } = reader.replica
      // The first read has no summary to go by; it asks every group and fetches their summaries meanwhile.
      expect(sha256hex(await readWhole(reader, (files[0] as { id: string }).id))).toBe((files[0] as { sha: string }).sha)
      await c.waitFor(() => [...Array(GROUPS).keys()].every(g => summaries.verdict(`g${g + 1}`, files[3 * g]?.id as string) === 'probably'),
        { message: 'the reader holds every group\'s summary' })
      for (const f of files.slice(1)) {
        const before = locator.counters.asked
        await locator.locate(parseFileId(f.id))
        // The right group only, or one more on a false positive (~1 %).
        expect(locator.counters.asked - before, `asked for ${f.id} (group g${f.group + 1})`).toBeLessThanOrEqual(2)
      }
      expect(summaries.bytes).toBeGreaterThanOrEqual(GROUPS * BLOOM_MIN_BYTES)
      // Newer than the summaries the reader holds: their groups' log heads moved on, so they are stale, and the
      // file is found by asking the groups without a fresh summary.
      const late = randomBytes(10_000, 999)
      const res = await upload(url(c, 2), late, 'late.bin', { group: 'g3' })
      expect(res.status).toBe(201)
      expect(sha256hex(await readWhole(reader, res.body.id as string))).toBe(sha256hex(late))
    } finally {
      await c.close()
    }
  })

  it('a summary is only for the group\'s members to give and only about their own group', async () => {
    const c = await createSimCluster({ nodes: 2, configure: (i) => ({ group: `g${i + 1}`, groupSize: 1, minCopies: 1 }) })
    try {
      await c.ready()
      const ask = async (group: string): Promise<unknown> => request(c.node(0).libp2p, peerIdFromString(c.peerId(1)), PROTOCOLS.summary,
        SummaryRequestSchema, { group }, SummaryResponseSchema, { signal: AbortSignal.timeout(10_000), maxResponseBytes: 5 * 1024 * 1024 })
      expect(await ask('g2')).toMatchObject({ group: 'g2', hashes: 7 })
      await expect(ask('g1')).rejects.toMatchObject({ code: 'ERR_NOT_A_MEMBER' })
    } finally {
      await c.close()
    }
  })
})
