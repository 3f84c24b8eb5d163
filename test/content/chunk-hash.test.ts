import { describe, expect, it } from 'vitest'
import { CHUNK_LEAF_BYTES } from '../../src/constants.ts'
import { chunkDigest, hashChunk, leafCount, verifyLeaves } from '../../src/content/chunk-hash.ts'
import { randomBytes } from '../helpers/data.ts'

const L = CHUNK_LEAF_BYTES

describe('two-level chunk hashes', () => {
  it('hash a chunk through its leaves; any changed byte changes it', async () => {
    const data = randomBytes(16 * L - 100, 7)
    const { digest, leaves } = await hashChunk(data)
    expect(leafCount(data.byteLength)).toBe(16)
    expect(leaves.byteLength).toBe(16 * 32)
    const other = data.slice()
    other[L * 3 + 5] = (other[L * 3 + 5] ?? 0) ^ 1
    expect(await chunkDigest(other)).not.toEqual(digest)
  })

  it('verify a run of leaves with the leaf hashes, and refuse anything else', async () => {
    const data = randomBytes(16 * L - 100, 8)
    const { digest, leaves } = await hashChunk(data)
    const n = data.byteLength
    expect(await verifyLeaves(digest, leaves, n, 3, data.subarray(3 * L, 5 * L))).toBe(true)
    expect(await verifyLeaves(digest, leaves, n, 15, data.subarray(15 * L))).toBe(true) // the short last leaf
    expect(await verifyLeaves(digest, leaves, n, 0, data)).toBe(true)
    // a cut leaf, a wrong position, altered bytes, altered leaf hashes, past the end
    expect(await verifyLeaves(digest, leaves, n, 3, data.subarray(3 * L, 4 * L + 10))).toBe(false)
    expect(await verifyLeaves(digest, leaves, n, 4, data.subarray(3 * L, 4 * L))).toBe(false)
    const altered = data.slice(3 * L, 4 * L)
    altered[0] = (altered[0] ?? 0) ^ 1
    expect(await verifyLeaves(digest, leaves, n, 3, altered)).toBe(false)
    const forged = leaves.slice()
    forged[40] = (forged[40] ?? 0) ^ 1
    expect(await verifyLeaves(digest, forged, n, 3, data.subarray(3 * L, 4 * L))).toBe(false)
    expect(await verifyLeaves(digest, leaves, n, 16, new Uint8Array(10))).toBe(false)
  })
})
