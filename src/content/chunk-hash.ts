/**
 * Chunk hashes: a two-level hash tree. A chunk is split into leaves of
 * CHUNK_LEAF_BYTES (the last may be short); its hash is
 * SHA-256(SHA-256(leaf 0) ‖ SHA-256(leaf 1) ‖ …). A reader holding the chunk
 * hash verifies any run of leaves given the leaf hashes: hash the leaf hashes
 * to check them against the chunk hash, then each leaf against its hash.
 */
import { equals } from 'uint8arrays/equals'
import { CHUNK_LEAF_BYTES } from '../constants.ts'
import { sha256Digest } from './sha256.ts'

const DIGEST_BYTES = 32

export function leafCount (chunkBytes: number, leafSize = CHUNK_LEAF_BYTES): number {
  return Math.max(1, Math.ceil(chunkBytes / leafSize))
}

/** The concatenated SHA-256 of every leaf of `data`. */
export async function leafHashes (data: Uint8Array, leafSize = CHUNK_LEAF_BYTES): Promise<Uint8Array> {
  const n = leafCount(data.byteLength, leafSize)
  const out = new Uint8Array(n * DIGEST_BYTES)
  for (let i = 0; i < n; i++) out.set(await sha256Digest(data.subarray(i * leafSize, (i + 1) * leafSize)), i * DIGEST_BYTES)
  return out
}

/** The chunk hash, and the leaf hashes it was computed from. */
export async function hashChunk (data: Uint8Array, leafSize = CHUNK_LEAF_BYTES): Promise<{ digest: Uint8Array, leaves: Uint8Array }> {
  const leaves = await leafHashes(data, leafSize)
  return { digest: await sha256Digest(leaves), leaves }
}

export async function chunkDigest (data: Uint8Array, leafSize = CHUNK_LEAF_BYTES): Promise<Uint8Array> {
  return (await hashChunk(data, leafSize)).digest
}

/**
 * Verify `data` as leaves firstLeaf… of a chunk whose hash is `digest`, given
 * all of that chunk's leaf hashes. Every leaf must be whole except the chunk's
 * last one.
 */
export async function verifyLeaves (digest: Uint8Array, leaves: Uint8Array, chunkBytes: number, firstLeaf: number, data: Uint8Array, leafSize = CHUNK_LEAF_BYTES): Promise<boolean> {
  const n = leafCount(chunkBytes, leafSize)
  if (leaves.byteLength !== n * DIGEST_BYTES || !equals(await sha256Digest(leaves), digest)) return false
  if (!Number.isInteger(firstLeaf) || firstLeaf < 0 || firstLeaf >= n) return false
  const start = firstLeaf * leafSize
  if (data.byteLength === 0 || start + data.byteLength > chunkBytes) return false
  // Whole leaves only (the chunk's last leaf may be short): a cut leaf cannot be checked.
  if (data.byteLength % leafSize !== 0 && start + data.byteLength !== chunkBytes) return false
  for (let at = 0, leaf = firstLeaf; at < data.byteLength; at += leafSize, leaf++) {
    const expected = leaves.subarray(leaf * DIGEST_BYTES, (leaf + 1) * DIGEST_BYTES)
    if (!equals(await sha256Digest(data.subarray(at, at + leafSize)), expected)) return false
  }
  return true
}

export interface HashedChunk { data: Uint8Array, digest: Uint8Array, leaves: Uint8Array }

/** A stage of an upload's pipeline: each chunk with its hash and leaf hashes. */
export async function * hashChunks (chunks: AsyncIterable<Uint8Array>, leafSize = CHUNK_LEAF_BYTES): AsyncGenerator<HashedChunk> {
  for await (const data of chunks) yield { data, ...await hashChunk(data, leafSize) }
}
