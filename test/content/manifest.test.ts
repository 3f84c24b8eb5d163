import { describe, expect, it } from 'vitest'
import { chunkDigest } from '../../src/content/chunk-hash.ts'
import { chunksForRange, createManifest, decodeManifest, parseFileId, verifyChunk } from '../../src/content/manifest.ts'
import { randomBytes } from '../helpers/data.ts'

async function manifestOf (data: Uint8Array, name: string, chunkSize = 1024): Promise<Awaited<ReturnType<typeof createManifest>>> {
  const chunks: Uint8Array[] = []
  for (let at = 0; at < data.byteLength; at += chunkSize) chunks.push(await chunkDigest(data.subarray(at, at + chunkSize)))
  return createManifest({ size: data.byteLength, chunkSize, chunks, name, mime: 'video/mp4' })
}

describe('self-certifying file IDs', () => {
  it('same bytes and name → same ID; another name or byte → another ID', async () => {
    const data = randomBytes(10_000)
    const a = await manifestOf(data, 'a.mp4')
    expect((await manifestOf(data, 'a.mp4')).id.toString()).toBe(a.id.toString())
    expect((await manifestOf(data, 'b.mp4')).id.toString()).not.toBe(a.id.toString())
    const other = data.slice()
    other[5000] = (other[5000] ?? 0) ^ 1
    expect((await manifestOf(other, 'a.mp4')).id.toString()).not.toBe(a.id.toString())
    expect(a.id.toString()).toMatch(/^bafyrei/)
  })

  it('a tag makes a file of its own (decoded and checked like the rest); no tag keeps the ID untagged files always had', async () => {
    const data = randomBytes(3000, 4)
    const chunks = [await chunkDigest(data)]
    const core = { size: data.byteLength, chunkSize: 4096, chunks, name: 'clip.mp4', mime: 'video/mp4' }
    const plain = await createManifest(core)
    // The ID of an untagged manifest is pinned: it must not change with the tag's introduction.
    expect((await createManifest({ ...core, tag: undefined })).id.toString()).toBe(plain.id.toString())
    const t1 = await createManifest({ ...core, tag: 'Az0-_x' })
    const t2 = await createManifest({ ...core, tag: 'Az0-_y' })
    expect(new Set([plain, t1, t2].map(m => m.id.toString())).size).toBe(3)
    expect((await decodeManifest(t1.bytes, t1.id)).tag).toBe('Az0-_x')
    await expect(createManifest({ ...core, tag: 'with space' })).rejects.toMatchObject({ name: 'InvalidManifestError' })
    await expect(createManifest({ ...core, tag: 'x'.repeat(65) })).rejects.toMatchObject({ name: 'InvalidManifestError' })
  })

  it('verifies every chunk against the manifest, including a short last one', async () => {
    const data = randomBytes(2500)
    const m = await manifestOf(data, 'x')
    expect(m.chunks).toHaveLength(3)
    expect(await verifyChunk(m, 0, data.subarray(0, 1024))).toBe(true)
    expect(await verifyChunk(m, 2, data.subarray(2048))).toBe(true)
    expect(await verifyChunk(m, 1, data.subarray(0, 1024))).toBe(false)
    expect(await verifyChunk(m, 2, data.subarray(2047))).toBe(false)
    expect(await verifyChunk(m, 3, data.subarray(0, 10))).toBe(false)
  })

  it('a manifest must hash to the ID it claims', async () => {
    const m = await manifestOf(randomBytes(3000), 'x')
    const decoded = await decodeManifest(m.bytes, m.id)
    expect(decoded.size).toBe(3000)
    const other = await manifestOf(randomBytes(3000, 2), 'x')
    await expect(decodeManifest(other.bytes, m.id)).rejects.toMatchObject({ name: 'InvalidManifestError' })
    await expect(decodeManifest(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ name: 'InvalidManifestError' })
  })

  it('refuses a manifest whose chunk count does not match its size', async () => {
    await expect(createManifest({ size: 5000, chunkSize: 1024, chunks: [new Uint8Array(32)], name: 'x', mime: 'a/b' }))
      .rejects.toMatchObject({ name: 'InvalidManifestError' })
  })

  it.each(['', 'hello', 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', '../../etc/passwd', 'bafyrei' + 'a'.repeat(200)])(
    'parseFileId refuses %j with InvalidFileIdError', (text) => {
      expect(() => parseFileId(text)).toThrow(expect.objectContaining({ name: 'InvalidFileIdError' }))
    })

  it('maps byte ranges to chunks', () => {
    const m = { size: 2500, chunkSize: 1024 }
    expect(chunksForRange(m, 0, 1)).toEqual({ first: 0, last: 0 })
    expect(chunksForRange(m, 1023, 2)).toEqual({ first: 0, last: 1 })
    expect(chunksForRange(m, 2048, 452)).toEqual({ first: 2, last: 2 })
  })
})
