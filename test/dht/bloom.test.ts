/**
 * The Bloom filter of group summaries (src/dht/bloom.ts) on its own: never a
 * false negative, about the designed false-positive rate at capacity, the
 * same bits on every node (the probes are part of the wire format), and a
 * round trip through the summary answer that carries it. All data is seeded:
 * the rates measured are the same on every run.
 */
import { createHash } from 'node:crypto'
import { encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import { BLOOM_BITS_PER_ENTRY, BLOOM_HASHES, BLOOM_MIN_BYTES, BloomFilter } from '../../src/dht/bloom.ts'
import { decodeMessage, encodeMessage } from '../../src/wire/codec.ts'
import { SummaryResponseSchema } from '../../src/wire/messages.ts'
import { createRng } from '../sim/rng.ts'

/** `n` file-ID-like strings, the same for the same seed. */
function ids (n: number, seed: number): string[] {
  const rng = createRng(seed)
  return Array.from({ length: n }, () => 'bafyrei' + Buffer.from(rng.bytes(24)).toString('hex'))
}

/** The designed rate: k probes into m bits holding n entries. */
const expectedRate = (n: number, m: number, k: number): number => (1 - Math.exp(-k * n / m)) ** k

function falsePositives (f: BloomFilter, probes: string[]): number {
  return probes.filter(p => f.has(p)).length / probes.length
}

describe('BloomFilter', () => {
  it('sizes itself at BLOOM_BITS_PER_ENTRY bits an entry, never below BLOOM_MIN_BYTES', () => {
    expect(BloomFilter.forCapacity(100_000).bits.byteLength).toBe(100_000 * BLOOM_BITS_PER_ENTRY / 8)
    expect(BloomFilter.forCapacity(100_000).capacity).toBe(100_000)
    expect(BloomFilter.forCapacity(10).bits.byteLength).toBe(BLOOM_MIN_BYTES)
    expect(BloomFilter.forCapacity(10).hashes).toBe(BLOOM_HASHES)
  })

  it('never a false negative, whatever the fill', () => {
    const f = BloomFilter.forCapacity(5_000)
    const added = ids(3 * f.capacity, 11) // three times over capacity: more false positives, still no false negative
    for (const id of added) f.add(id)
    expect(added.filter(id => !f.has(id))).toEqual([])
    expect(f.count).toBe(added.length)
  })

  it('about 1 % false positives at capacity, far fewer below it, many more above it', () => {
    const f = BloomFilter.forCapacity(20_000)
    const m = f.bits.byteLength * 8
    const entries = ids(f.capacity, 21)
    const probes = ids(40_000, 22)
    for (const id of entries.slice(0, f.capacity / 4)) f.add(id)
    const quarter = falsePositives(f, probes)
    for (const id of entries.slice(f.capacity / 4)) f.add(id)
    const full = falsePositives(f, probes)
    // Designed: (1 - e^(-7/10))^7 ≈ 0.82 %. The data is fixed, so the bound is a tolerance, not a gamble.
    expect(expectedRate(f.capacity, m, BLOOM_HASHES)).toBeCloseTo(0.0082, 4)
    expect(full).toBeGreaterThan(0.004)
    expect(full).toBeLessThan(0.015)
    expect(quarter).toBeLessThan(full / 10)
    for (const id of ids(f.capacity, 23)) f.add(id)
    expect(falsePositives(f, probes)).toBeGreaterThan(5 * full)
  })

  it('sets exactly the bits of the documented double hashing (every node must compute the same filter)', () => {
    const f = new BloomFilter(new Uint8Array(1000))
    const entry = 'bafyreiexample'
    f.add(entry)
    const h = createHash('sha256').update(entry).digest()
    const h1 = BigInt(h.readUInt32BE(0))
    const h2 = BigInt(h.readUInt32BE(4) | 1) & 0xffffffffn
    const m = 8000n
    const expected = new Uint8Array(1000)
    for (let i = 0n; i < BigInt(BLOOM_HASHES); i++) {
      const bit = Number(((h1 + i * h2) % 2n ** 32n) % m)
      expected[bit >>> 3] = (expected[bit >>> 3] as number) | (1 << (bit & 7))
    }
    expect(Buffer.from(f.bits).toString('hex')).toBe(Buffer.from(expected).toString('hex'))
    const one = new BloomFilter(new Uint8Array(1000), 1)
    one.add(entry)
    expect(one.bits.reduce((n, b) => n + popcount(b), 0)).toBe(1)
  })

  it('survives the summary answer that carries it: same bits, same answers', () => {
    const f = BloomFilter.forCapacity(2_000)
    const added = ids(1_500, 31)
    for (const id of added) f.add(id)
    const bytes = encodeMessage(SummaryResponseSchema, { group: 'g1', head: 42, count: f.count, hashes: f.hashes, bits: f.bits })
    const res = decodeMessage(SummaryResponseSchema, bytes, bytes.byteLength)
    const copy = new BloomFilter(res.bits, res.hashes, res.count)
    expect(copy.count).toBe(1_500)
    expect(Buffer.from(copy.bits).equals(Buffer.from(f.bits))).toBe(true)
    expect(added.every(id => copy.has(id))).toBe(true)
    const probes = ids(5_000, 32)
    expect(probes.map(p => copy.has(p))).toEqual(probes.map(p => f.has(p)))
  })

  it('a truncated or impossible summary is refused with a named error, never made into a filter', () => {
    const f = BloomFilter.forCapacity(100)
    const answer = { group: 'g1', head: 1, count: 0, hashes: f.hashes, bits: f.bits }
    const bytes = encodeMessage(SummaryResponseSchema, answer)
    expect(() => decodeMessage(SummaryResponseSchema, bytes.subarray(0, bytes.byteLength - 10), bytes.byteLength))
      .toThrow(expect.objectContaining({ name: 'InvalidMessageError', code: 'ERR_INVALID_MESSAGE' }))
    // Well-formed CBOR a peer could send, but not a filter.
    for (const bad of [{ hashes: 0 }, { hashes: 33 }, { hashes: 2.5 }, { bits: new Uint8Array(0) }, { count: -1 }, { bits: 'ff' }]) {
      expect(() => decodeMessage(SummaryResponseSchema, encode({ ...answer, ...bad }), 1 << 20))
        .toThrow(expect.objectContaining({ name: 'InvalidMessageError', message: expect.stringMatching(/^malformed message/) }))
    }
    // And the constructor holds the same line for a caller that skips the schema.
    expect(() => new BloomFilter(new Uint8Array(0))).toThrow(RangeError)
    expect(() => new BloomFilter(new Uint8Array(8), 2.5)).toThrow(RangeError)
  })
})

function popcount (b: number): number {
  let n = 0
  for (; b !== 0; b &= b - 1) n++
  return n
}
