/**
 * Chunks, content-addressed by their hash, in two homes chosen by size:
 *
 *  - small ones (≤ INLINE_CHUNK_BYTES) inline in the index row, so a file of
 *    a few KiB costs one row in one transaction — no file created, renamed
 *    or fsynced, and the transaction's WAL sync is the upload's only forced
 *    write;
 *  - the others as needles appended to volume files (./volumes.ts), synced
 *    once per group commit before the index refers to them.
 *
 * Each row keeps the chunk's leaf hashes (SHA-256 per 64 KiB leaf, the
 * inputs of its digest) and a CRC-32 per leaf. Local reads check the CRC of
 * the leaves they return — a few GB/s, where SHA-256 costs ~1 GB/s per core —
 * while SHA-256 keeps guarding every transfer between nodes (the receiver
 * checks it) and the background scrub (./scrub.ts) re-hashes stored chunks.
 * A seek reads only the leaves it needs, and serving leaves to a peer needs
 * no hashing: the leaf hashes are stored.
 */
// CRC-32 (IEEE, the same values as zlib's): @node-rs/crc32 runs it hardware-accelerated (Rust's crc32fast),
// ~12 GB/s here against zlib's ~5.7; every leaf is checked on every read (docs/performance.md).
import { crc32 } from '@node-rs/crc32'
import { toString as toHex } from 'uint8arrays'
import { CHUNK_LEAF_BYTES, MAX_CHUNK_SIZE_BYTES } from '../constants.ts'
import { ChunkNotStoredError, CorruptChunkError } from '../errors.ts'
import { hashChunk, leafCount } from '../content/chunk-hash.ts'
import { NEEDLE_HEADER_BYTES, VolumeSet } from './volumes.ts'
import type { BufferPool } from '../util/buffer-pool.ts'
import type { Db } from './db.ts'
import type { VolumeSetInit } from './volumes.ts'
import type { StatementSync } from 'node:sqlite'

/** Chunks up to this size live inline in the index (a 4 KiB upload is one row). */
export const INLINE_CHUNK_BYTES = 64 * 1024

/** A chunk written (page cache, or held for its row) but not yet in the index. */
export interface StagedChunk {
  digest: Uint8Array
  length: number
  /** 0: inline (`data` goes into the row); else the volume holding it. */
  volume: number
  offset: number
  leaves: Uint8Array
  crcs: Uint8Array
  data?: Uint8Array
  /** Its volume may not be removed until this chunk is indexed or discarded (see VolumeSet.release). */
  held?: boolean
}

/** Where the bytes of a chunk were read from (a verdict on them applies to that copy only). */
export interface ChunkLocation { volume: number, offset: number }

/** Verified bytes of a chunk: whole (`start` 0, all leaves) or the leaves covering a range. */
export interface ChunkBytes {
  data: Uint8Array
  /** Offset of `data` in the chunk (a multiple of the leaf size). */
  start: number
  /** Every leaf hash of the chunk (what a reader needs to verify any run of leaves). */
  leaves: Uint8Array
  /** The stored copy that was read (a read from this node's store). */
  at?: ChunkLocation
}

export type StoredChunkBytes = ChunkBytes & { at: ChunkLocation }

interface Row { digest: Uint8Array, volume: number, offset: number, length: number, leaves: Uint8Array, crcs: Uint8Array, data: Uint8Array | null }

function leafCrcs (data: Uint8Array, leafSize: number): Uint8Array {
  const n = leafCount(data.byteLength, leafSize)
  const out = Buffer.alloc(n * 4)
  for (let i = 0; i < n; i++) out.writeUInt32BE(crc32(data.subarray(i * leafSize, (i + 1) * leafSize)), i * 4)
  return out
}

function statements (db: Db) {
  const p = (sql: string): StatementSync => db.sql.prepare(sql)
  return {
    get: p('SELECT * FROM chunks WHERE digest = ?'),
    has: p('SELECT 1 FROM chunks WHERE digest = ?'),
    insert: p('INSERT OR IGNORE INTO chunks (digest, volume, offset, length, leaves, crcs, data) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    delete: p('DELETE FROM chunks WHERE digest = ?'),
    deleteAt: p('DELETE FROM chunks WHERE digest = ? AND volume = ? AND offset = ?'),
    // The start-up check's queries walk the (volume, offset) index: a few steps per volume, whatever the chunk count.
    tail: p('SELECT offset + length AS tail FROM chunks WHERE volume = ? ORDER BY offset DESC LIMIT 1'),
    nextVolume: p('SELECT volume FROM chunks WHERE volume > ? ORDER BY volume LIMIT 1'),
    nearEnd: p('SELECT digest, offset, length FROM chunks WHERE volume = ? AND offset >= ? ORDER BY offset'),
    inVolume: p('SELECT digest, offset, length FROM chunks WHERE volume = ? ORDER BY offset'),
    liveBytes: p('SELECT volume, SUM(length) AS live FROM chunks WHERE volume > 0 GROUP BY volume'),
    all: p('SELECT digest FROM chunks'),
    after: p('SELECT digest FROM chunks WHERE digest > ? ORDER BY digest LIMIT ?'),
    move: p('UPDATE chunks SET volume = ?, offset = ? WHERE digest = ? AND volume = ? AND offset = ?')
  }
}

export class ChunkStore {
  readonly volumes: VolumeSet
  private readonly q: ReturnType<typeof statements>
  private readonly leafSize = CHUNK_LEAF_BYTES

  constructor (db: Db, dataDir: string, volumes: VolumeSetInit = {}) {
    this.volumes = new VolumeSet(dataDir, volumes)
    this.q = statements(db)
  }

  /** Open the volumes: appends resume after the last needle the index refers to (a torn tail is written over). */
  async start (): Promise<void> {
    await this.volumes.start(volume => (this.q.tail.get(volume) as { tail: number } | undefined)?.tail ?? 0)
  }

  async stop (): Promise<void> {
    await this.volumes.stop()
  }

  has (digest: Uint8Array): boolean {
    return this.q.has.get(digest) != null
  }

  /** Where a chunk's bytes are: inline (volume 0) or in a volume; undefined if not stored. */
  locate (digest: Uint8Array): { volume: number, offset: number, length: number } | undefined {
    const row = this.q.get.get(digest) as Row | undefined
    return row == null ? undefined : { volume: row.volume, offset: row.offset, length: row.length }
  }

  /**
   * Write a chunk whose digest the caller computed (`leaves`: its leaf
   * hashes, if the caller has them): into a volume (page cache) or held for
   * an inline row. Nothing refers to it until `insert` runs in a transaction.
   */
  async stage (digest: Uint8Array, data: Uint8Array, leaves?: Uint8Array): Promise<StagedChunk> {
    const leafHashes = leaves ?? (await hashChunk(data, this.leafSize)).leaves
    const crcs = leafCrcs(data, this.leafSize)
    if (data.byteLength <= INLINE_CHUNK_BYTES) {
      return { digest, length: data.byteLength, volume: 0, offset: 0, leaves: leafHashes, crcs, data: Uint8Array.from(data) }
    }
    const at = await this.volumes.append(digest, data)
    return { digest, length: data.byteLength, volume: at.volume, offset: at.offset, leaves: leafHashes, crcs, held: true }
  }

  /** Staged chunks that will not be indexed (their transfer failed): their volume bytes are garbage. */
  discard (staged: Iterable<StagedChunk>): void {
    for (const s of staged) this.unhold(s)
  }

  private unhold (s: StagedChunk): void {
    if (s.held !== true) return
    s.held = false
    this.volumes.release(s.volume)
  }

  /** A needle found in a volume (a rebuild): its row, for bytes already on disk and already verified by the caller. */
  found (digest: Uint8Array, at: { volume: number, offset: number }, data: Uint8Array, leaves: Uint8Array): StagedChunk {
    return { digest, length: data.byteLength, volume: at.volume, offset: at.offset, leaves, crcs: leafCrcs(data, this.leafSize) }
  }

  /** Make the staged chunks' volume bytes durable (inline ones are made durable by their transaction). */
  async sync (staged: Iterable<StagedChunk>): Promise<void> {
    await this.volumes.sync([...staged].flatMap(s => s.volume > 0 ? [s.volume] : []))
  }

  /**
   * Index staged chunks (inside the caller's transaction; a chunk already
   * indexed keeps its row). A needle whose volume was removed cannot be
   * indexed: that would be a row pointing at nothing (holds prevent it; this
   * is the last line).
   */
  insert (staged: Iterable<StagedChunk>): void {
    const list = [...staged]
    for (const s of list) {
      if (s.volume > 0 && this.volumes.isRemoved(s.volume)) throw new Error(`chunk ${toHex(s.digest, 'base16').slice(0, 16)}… was written to volume ${s.volume}, which compaction removed`)
    }
    for (const s of list) this.q.insert.run(s.digest, s.volume, s.offset, s.length, s.leaves, s.crcs, s.data ?? null)
    for (const s of list) this.unhold(s)
  }

  /** Drop chunks from the index; their volume bytes become garbage for compaction. */
  remove (digests: Iterable<Uint8Array>): void {
    for (const d of digests) this.q.delete.run(d)
  }

  /** Drop a chunk's row if it still points at `at` (a verdict on one copy must not drop another); whether it did. */
  removeAt (digest: Uint8Array, at: ChunkLocation): boolean {
    return this.q.deleteAt.run(digest, at.volume, at.offset).changes > 0
  }

  /**
   * Read a chunk, or only the leaves covering [from, to) of it, checked
   * against the stored CRCs. Throws CorruptChunkError when the bytes do not
   * match (a damaged disk); a chunk not in the index is an Error.
   */
  async read (digest: Uint8Array, range?: { from: number, to: number }, pool?: BufferPool): Promise<StoredChunkBytes> {
    try {
      return await this.readOnce(digest, range, pool)
    } catch (err) {
      // Compaction may have moved the chunk and deleted its old volume between our lookup and our read: look again.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.readOnce(digest, range, pool)
      throw err
    }
  }

  private async readOnce (digest: Uint8Array, range?: { from: number, to: number }, pool?: BufferPool): Promise<StoredChunkBytes> {
    const row = this.q.get.get(digest) as Row | undefined
    if (row == null) throw new ChunkNotStoredError(`chunk ${toHex(digest, 'base16').slice(0, 16)}… is not stored here`)
    const leaves = leafCount(row.length, this.leafSize)
    const firstLeaf = range == null ? 0 : Math.floor(range.from / this.leafSize)
    const lastLeaf = range == null ? leaves - 1 : Math.min(leaves - 1, Math.floor((Math.max(range.from + 1, range.to) - 1) / this.leafSize))
    const start = firstLeaf * this.leafSize
    const end = Math.min(row.length, (lastLeaf + 1) * this.leafSize)
    const at = { volume: row.volume, offset: row.offset }
    const data = row.volume === 0
      ? (row.data ?? new Uint8Array(0)).subarray(start, end)
      : await this.volumes.read(row.volume, row.offset + start, end - start, pool)
    const crcs = Buffer.from(row.crcs.buffer, row.crcs.byteOffset, row.crcs.byteLength)
    for (let i = firstLeaf; i <= lastLeaf; i++) {
      const leaf = data.subarray((i - firstLeaf) * this.leafSize, (i - firstLeaf + 1) * this.leafSize)
      if (data.byteLength !== end - start || crc32(leaf) !== crcs.readUInt32BE(i * 4)) {
        throw new CorruptChunkError(`chunk ${toHex(digest, 'base16').slice(0, 16)}… on disk does not match its checksum (leaf ${i})`, { at })
      }
    }
    return { data, start, leaves: row.leaves, at }
  }

  /** Every indexed chunk's digest (the scrub walks them). */
  digests (): Uint8Array[] {
    return (this.q.all.all() as Array<{ digest: Uint8Array }>).map(r => r.digest)
  }

  /** Up to `limit` digests after `after`, in digest order (walking the store a page at a time). */
  digestsAfter (after: Uint8Array, limit: number): Uint8Array[] {
    return (this.q.after.all(after, limit) as Array<{ digest: Uint8Array }>).map(r => r.digest)
  }

  /** The volumes the index refers to, in order (one index step each). */
  indexedVolumes (): number[] {
    const out: number[] = []
    let row = this.q.nextVolume.get(0) as { volume: number } | undefined
    while (row != null) {
      out.push(row.volume)
      row = this.q.nextVolume.get(row.volume) as { volume: number } | undefined
    }
    return out
  }

  /** Needles the index places (partly) beyond `size` bytes of their volume: only the last MAX_CHUNK_SIZE_BYTES can. */
  beyond (volume: number, size: number): Uint8Array[] {
    const from = Math.max(0, size - MAX_CHUNK_SIZE_BYTES - NEEDLE_HEADER_BYTES)
    const rows = this.q.nearEnd.all(volume, from) as Array<{ digest: Uint8Array, offset: number, length: number }>
    return rows.filter(r => r.offset + r.length > size).map(r => r.digest)
  }

  /** Live bytes per volume (what compaction weighs against each volume's size). */
  liveBytes (): Map<number, number> {
    return new Map((this.q.liveBytes.all() as Array<{ volume: number, live: number }>).map(r => [r.volume, r.live]))
  }

  /** Needles the index keeps in a volume, in offset order. */
  inVolume (volume: number): Array<{ digest: Uint8Array, offset: number, length: number }> {
    return this.q.inVolume.all(volume) as Array<{ digest: Uint8Array, offset: number, length: number }>
  }

  /** Point a chunk at its new home, if it still lives where compaction found it (returns whether it moved). */
  move (digest: Uint8Array, from: { volume: number, offset: number }, to: { volume: number, offset: number }): boolean {
    return this.q.move.run(to.volume, to.offset, digest, from.volume, from.offset).changes > 0
  }
}
