/**
 * The manifest core's hand-written check and encoder (src/content/manifest-codec.ts) against their
 * references: the check may say yes only where the schema does, and the encoder must write the bytes
 * @ipld/dag-cbor writes.
 */
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CHUNK_LEAF_BYTES, MAX_CHUNK_SIZE_BYTES } from '../../src/constants.ts'
import { encodeManifestCore, isManifestCore } from '../../src/content/manifest-codec.ts'
import { ManifestCoreSchema, createManifest, decodeManifest } from '../../src/content/manifest.ts'
import { runs } from '../helpers/fuzz.ts'

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

const edges = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]
const chunkSizeArb = fc.oneof(fc.constantFrom(1, 23, 24, 255, 256, 65_536, 1_048_576, MAX_CHUNK_SIZE_BYTES), fc.integer({ min: 1, max: MAX_CHUNK_SIZE_BYTES }))
const nameArb = fc.oneof(fc.constantFrom('a.mp4', 'ü ñ 日本.txt', 'x'.repeat(255), 'clip (1).webm'), fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }))
const tagArb = fc.option(fc.oneof(fc.constantFrom('s3:media/a', '!', '~'.repeat(64)), fc.string({ minLength: 1, maxLength: 64, unit: fc.integer({ min: 0x21, max: 0x7e }).map(c => String.fromCharCode(c)) })), { nil: undefined })

/** Valid manifest cores: at most 40 chunks (size up to 40 chunk sizes, or an edge size with a large chunk size). */
const validCore = fc.tuple(chunkSizeArb, fc.nat(40), fc.nat(), nameArb, fc.constantFrom('video/mp4', 'application/octet-stream', 'text/plain'), tagArb)
  .map(([chunkSize, n, extra, name, mime, tag]) => {
    const size = n === 0 ? 0 : (n - 1) * chunkSize + 1 + (extra % chunkSize)
    const chunks = Array.from({ length: Math.ceil(size / chunkSize) }, (_, i) => new Uint8Array(32).fill(i & 0xff))
    return { v: 1 as const, size, chunkSize, leafSize: CHUNK_LEAF_BYTES, chunks, name, mime, ...(tag != null ? { tag } : {}) }
  })
  .filter(m => ManifestCoreSchema.safeParse(m).success)
const bigCore = fc.constantFrom(...edges).map(size => ({ v: 1 as const, size, chunkSize: MAX_CHUNK_SIZE_BYTES, leafSize: CHUNK_LEAF_BYTES, chunks: [], name: 'big.bin', mime: 'video/mp4' }))

/** Values a peer could send: valid cores with one field broken, or swapped for something else. */
const mutated = fc.tuple(validCore, fc.constantFrom('v', 'size', 'chunkSize', 'leafSize', 'chunks', 'name', 'mime', 'tag', 'extra', 'whole'),
  fc.constantFrom<unknown>(undefined, null, 0, -1, 1.5, 2, NaN, Infinity, '', 'a/b', '\u0000', '../x', 'video/mp4', 'x'.repeat(300), [], [new Uint8Array(31)], [new Uint8Array(32)], new Uint8Array(32), {}, CHUNK_LEAF_BYTES, MAX_CHUNK_SIZE_BYTES + 1, 2 ** 53, ' ', 'tag with space', 'ok'))
  .map(([m, key, v]) => {
    if (key === 'whole') return v
    const out: Record<string, unknown> = { ...m }
    out[key] = v
    return out
  })

describe('manifest core: the hand-written check and encoder', () => {
  it('writes the bytes @ipld/dag-cbor writes', () => {
    fc.assert(fc.property(fc.oneof(validCore, bigCore), m => {
      expect(hex(encodeManifestCore(m))).toBe(hex(dagCbor.encode(m)))
    }), runs(500))
  })

  it('says yes only where the schema does, and to every valid core here', () => {
    let yes = 0
    fc.assert(fc.property(fc.oneof(validCore, mutated), v => {
      if (isManifestCore(v)) {
        yes++
        expect(ManifestCoreSchema.safeParse(v).success).toBe(true)
      }
    }), runs(2000))
    fc.assert(fc.property(validCore, m => { expect(isManifestCore(m)).toBe(true) }), runs(200))
    expect(yes).toBeGreaterThan(100)
    // Not a plain object: the schema decides (and refuses).
    expect(isManifestCore(Object.assign(Object.create({ inherited: 1 }), { v: 1 }))).toBe(false)
  })

  it('a decoded manifest is the same whichever way it was checked; a non-canonical one is refused', async () => {
    const m = await createManifest({ size: 5, chunkSize: 4, chunks: [new Uint8Array(32), new Uint8Array(32).fill(1)], name: 'a.bin', mime: 'text/plain' })
    expect(hex(m.bytes)).toBe(hex(dagCbor.encode({ v: 1, size: 5, chunkSize: 4, leafSize: CHUNK_LEAF_BYTES, chunks: m.chunks, name: 'a.bin', mime: 'text/plain' })))
    const back = await decodeManifest(m.bytes, m.id)
    expect(back.chunks).toEqual(m.chunks)
    // The same map with its keys in another order: same values, another ID — refused.
    const vField = [0x61, 0x76, 0x01] // "v": 1, first in canonical order
    expect([...m.bytes.subarray(1, 4)]).toEqual(vField)
    const reordered = new Uint8Array([0xa7, ...m.bytes.subarray(4), ...vField])
    await expect(decodeManifest(reordered)).rejects.toMatchObject({ name: 'InvalidManifestError', message: expect.stringMatching(/canonical/) })
  })
})
