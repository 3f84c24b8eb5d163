/**
 * A Bloom filter of strings (file IDs): what a group's summary is made of.
 * Sized for `capacity` entries at BLOOM_BITS_PER_ENTRY bits each with
 * BLOOM_HASHES probes — about 1 % false positives when full, never a false
 * negative. Probes come from one SHA-256 of the entry (double hashing), so
 * every node computes the same bits whatever its platform.
 */
import { createHash } from 'node:crypto'

/** Bits per entry at capacity (10 bits, 7 probes: ~0.8 % false positives). */
export const BLOOM_BITS_PER_ENTRY = 10
export const BLOOM_HASHES = 7
/** The smallest filter (bytes), so that an empty group's summary can take its first uploads. */
export const BLOOM_MIN_BYTES = 1024

export class BloomFilter {
  readonly bits: Uint8Array
  readonly hashes: number
  /** Entries added (an upper bound of the distinct ones). */
  count: number

  constructor (bits: Uint8Array, hashes = BLOOM_HASHES, count = 0) {
    if (bits.byteLength === 0) throw new RangeError('a Bloom filter needs at least one byte')
    if (!Number.isInteger(hashes) || hashes < 1 || hashes > 32) throw new RangeError(`a Bloom filter takes 1-32 probes, not ${hashes}`)
    this.bits = bits
    this.hashes = hashes
    this.count = count
  }

  /** An empty filter for `capacity` entries. */
  static forCapacity (capacity: number): BloomFilter {
    const bytes = Math.max(BLOOM_MIN_BYTES, Math.ceil(capacity * BLOOM_BITS_PER_ENTRY / 8))
    return new BloomFilter(new Uint8Array(bytes))
  }

  /** Entries it holds at about 1 % false positives. */
  get capacity (): number {
    return Math.floor(this.bits.byteLength * 8 / BLOOM_BITS_PER_ENTRY)
  }

  add (entry: string): void {
    for (const bit of this.probes(entry)) this.bits[bit >>> 3] = (this.bits[bit >>> 3] as number) | (1 << (bit & 7))
    this.count++
  }

  /** False: certainly not added. True: probably added. */
  has (entry: string): boolean {
    for (const bit of this.probes(entry)) if (((this.bits[bit >>> 3] as number) & (1 << (bit & 7))) === 0) return false
    return true
  }

  private probes (entry: string): number[] {
    const h = createHash('sha256').update(entry).digest()
    const m = this.bits.byteLength * 8
    const h1 = h.readUInt32BE(0)
    const h2 = h.readUInt32BE(4) | 1
    return Array.from({ length: this.hashes }, (_, i) => (h1 + Math.imul(i, h2) >>> 0) % m)
  }
}
