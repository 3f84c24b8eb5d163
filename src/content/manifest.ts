/**
 * Self-certifying file IDs. A file is cut into fixed-size chunks, each hashed
 * with SHA-256; the manifest core (size, chunk size, chunk hashes, name, mime)
 * is encoded as DAG-CBOR and its CIDv1 (dag-cbor, sha2-256) is the file ID.
 * Anyone holding the ID can verify the manifest, and with it every chunk.
 *
 * `createdAt` travels with the manifest but is not part of the ID, so the same
 * bytes under the same name (and type) always get the same ID — unless a
 * `tag` is given: it is part of the ID, so a tagged file is a file of its
 * own. The S3 layer tags every object it stores, so that each file belongs to
 * exactly one key's value and can be deleted when that value is replaced
 * (replica/reclaim.ts); two keys never share one.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'uint8arrays/equals'
import { z } from 'zod'
import { CHUNK_LEAF_BYTES, MAX_CHUNK_SIZE_BYTES, MAX_MANIFEST_BYTES, MAX_TAG_CHARS } from '../constants.ts'
import { InvalidFileIdError, InvalidManifestError } from '../errors.ts'
import { formatZodError } from '../util/zod.ts'
import { chunkDigest } from './chunk-hash.ts'
import { MIME_PATTERN, fileNameProblem } from './names.ts'
import { encodeManifestCore, isManifestCore } from './manifest-codec.ts'
import { bytesSchema } from '../wire/messages.ts'

export const MANIFEST_VERSION = 1
const DIGEST_BYTES = 32

export const ManifestCoreSchema = z.object({
  v: z.literal(MANIFEST_VERSION),
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  chunkSize: z.number().int().positive().max(MAX_CHUNK_SIZE_BYTES),
  /** Leaf size of the chunk hashes (see ./chunk-hash.ts); one value in this version. */
  leafSize: z.literal(CHUNK_LEAF_BYTES),
  chunks: z.array(bytesSchema.refine(d => d.byteLength === DIGEST_BYTES, 'a 32-byte SHA-256 digest')),
  name: z.string().superRefine((n, ctx) => { const p = fileNameProblem(n); if (p != null) ctx.addIssue({ code: 'custom', message: p }) }),
  mime: z.string().max(255).regex(MIME_PATTERN, 'a media type (type/subtype)'),
  /** Makes the ID unique to its writer's purpose (absent: the ID is the content's and name's). */
  tag: z.string().min(1).max(MAX_TAG_CHARS).regex(/^[\x21-\x7e]+$/, 'printable ASCII').optional()
}).strict().refine(m => m.chunks.length === Math.ceil(m.size / m.chunkSize), 'chunk count must match size / chunkSize')

export type ManifestCore = z.infer<typeof ManifestCoreSchema>

export interface Manifest extends ManifestCore {
  /** The file ID. */
  id: CID
  /** The manifest core's DAG-CBOR bytes (what the ID hashes). */
  bytes: Uint8Array
}

/** Build a manifest (and so the file ID) from its parts. */
export async function createManifest (core: Omit<ManifestCore, 'v' | 'leafSize'>): Promise<Manifest> {
  const { tag, ...rest } = core
  // An absent tag is no key at all: untagged files keep the IDs they always had.
  const full: ManifestCore = { v: MANIFEST_VERSION, leafSize: CHUNK_LEAF_BYTES, ...rest, ...(tag != null ? { tag } : {}) }
  if (!isManifestCore(full)) {
    const parsed = ManifestCoreSchema.safeParse(full)
    if (!parsed.success) throw new InvalidManifestError(formatZodError(parsed.error))
  }
  const bytes = encodeManifestCore(full)
  const id = CID.createV1(dagCbor.code, await sha256.digest(bytes))
  return { ...full, id, bytes }
}

/** Decode manifest bytes received from anywhere; `expected` makes it self-certifying. */
export async function decodeManifest (bytes: Uint8Array, expected?: CID): Promise<Manifest> {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) throw new InvalidManifestError(`manifest of ${bytes.byteLength} bytes is too large`)
  const id = CID.createV1(dagCbor.code, await sha256.digest(bytes))
  if (expected != null && !id.equals(expected)) {
    throw new InvalidManifestError(`manifest hashes to ${id.toString()}, not ${expected.toString()}`)
  }
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new InvalidManifestError(`undecodable manifest: ${(err as Error).message}`)
  }
  // The common shape is checked by hand (./manifest-codec.ts); anything else by the schema, with its reason.
  let core: ManifestCore
  if (isManifestCore(value)) {
    core = value
  } else {
    const parsed = ManifestCoreSchema.safeParse(value)
    if (!parsed.success) throw new InvalidManifestError(formatZodError(parsed.error))
    core = parsed.data
  }
  // One manifest, one encoding: out-of-order keys or invalid UTF-8 would give one file several IDs.
  if (!equals(encodeManifestCore(core), bytes)) throw new InvalidManifestError('manifest is not in canonical DAG-CBOR')
  return { ...core, id, bytes }
}

/** Parse a file ID string: a CIDv1 with the dag-cbor codec and a sha2-256 hash. */
export function parseFileId (text: string): CID {
  let cid: CID
  try {
    if (text.length > 128) throw new Error('too long')
    cid = CID.parse(text)
  } catch {
    throw new InvalidFileIdError(`"${text.slice(0, 80)}" is not a dsm file ID (a CIDv1 such as bafyrei…)`)
  }
  if (cid.version !== 1 || cid.code !== dagCbor.code || cid.multihash.code !== sha256.code || cid.toString() !== text) {
    throw new InvalidFileIdError(`"${text.slice(0, 80)}" is not a dsm file ID (a base32 CIDv1, dag-cbor, sha2-256)`)
  }
  return cid
}

export function chunkCount (m: Pick<ManifestCore, 'size' | 'chunkSize'>): number {
  return Math.ceil(m.size / m.chunkSize)
}

/** Byte length of chunk `index` (the last one may be short). */
export function chunkLength (m: Pick<ManifestCore, 'size' | 'chunkSize'>, index: number): number {
  return Math.min(m.chunkSize, m.size - index * m.chunkSize)
}

/** Chunks overlapping bytes [offset, offset + length). */
export function chunksForRange (m: Pick<ManifestCore, 'size' | 'chunkSize'>, offset: number, length: number): { first: number, last: number } {
  if (length <= 0) return { first: 0, last: -1 }
  return { first: Math.floor(offset / m.chunkSize), last: Math.floor((offset + length - 1) / m.chunkSize) }
}

/** True when `data` is chunk `index` of the manifest. */
export async function verifyChunk (m: Pick<ManifestCore, 'chunks' | 'size' | 'chunkSize' | 'leafSize'>, index: number, data: Uint8Array): Promise<boolean> {
  const expected = m.chunks[index]
  if (expected == null || data.byteLength !== chunkLength(m, index)) return false
  return equals(await chunkDigest(data, m.leafSize), expected)
}
