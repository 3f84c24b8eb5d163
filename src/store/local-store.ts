/**
 * A node's local replica store: chunk files + index + clock, with the rules
 * that keep them consistent — keep the disk reserve free, commit a file only
 * after its chunks are durable, never collect a chunk that a live file or an
 * upload in flight still needs, and check index against disk at start.
 */
import { TypedEventEmitter } from 'main-event'
import { toString as toHex } from 'uint8arrays'
import { CAPACITY_REFRESH_MS } from '../constants.ts'
import { InsufficientStorageError } from '../errors.ts'
import { HybridClock } from '../replica/clock.ts'
import { sizeOf } from '../util/size.ts'
import { ChunkStore } from './chunk-store.ts'
import { FileIndex } from './file-index.ts'
import type { Db } from './db.ts'
import type { AddOp, ApplyEffect, DeleteOp, FileRow } from './file-index.ts'
import type { Capacity } from '../node/local-status.ts'
import type { SizeSpec } from '../util/size.ts'

export interface LocalStoreEvents {
  /** A file became present here (committed, synced or repaired). */
  'file:present': CustomEvent<FileRow>
  'file:deleted': CustomEvent<{ id: string }>
  /** A chunk on disk failed verification. */
  'chunk:corrupt': CustomEvent<{ digest: Uint8Array, files: string[] }>
}

export interface LocalStoreInit {
  db: Db
  dataDir: string
  reserve: SizeSpec
  capacity: () => Promise<Capacity>
}

/** Space held for one transfer (see LocalStore.reserveSpace). */
export interface SpaceReservation {
  /** Bytes still reserved and not written. */
  left: number
  release(): void
}

export interface ConsistencyReport {
  /** Chunk files no live file refers to (crash leftovers), removed. */
  orphanChunksRemoved: number
  /** Present files with a chunk missing on disk, turned pending (to be fetched again). */
  filesMissingChunks: string[]
}

export class LocalStore extends TypedEventEmitter<LocalStoreEvents> {
  readonly index: FileIndex
  readonly chunks: ChunkStore
  readonly clock = new HybridClock()
  private readonly init: LocalStoreInit
  private readonly pins = new Map<string, number>()
  private capacity?: Capacity & { at: number }
  /** Bytes written since the last statfs (the file system does not show them yet). */
  private writtenBytes = 0
  /** Bytes reserved by transfers and not written yet. */
  private reservedBytes = 0

  constructor (init: LocalStoreInit) {
    super()
    this.init = init
    this.index = new FileIndex(init.db)
    this.chunks = new ChunkStore(init.dataDir)
  }

  /** `keepOrphans`: leave unreferenced chunk files for now (a rebuilt index hopes to reuse them). */
  async start (options: { keepOrphans?: boolean } = {}): Promise<ConsistencyReport> {
    await this.chunks.init()
    const report = await this.checkConsistency(options)
    for (const row of this.index.withState('present', 1)) this.clock.observe(row.ts)
    return report
  }

  /** Bytes to keep free: the configured reserve of the disk holding the data dir. */
  async reserveBytes (): Promise<number> {
    return sizeOf(this.init.reserve, (await this.init.capacity()).total)
  }

  /**
   * Hold `bytes` of space for a transfer that announced its size (an upload
   * with a Content-Length), or throw InsufficientStorageError (507) if they do
   * not fit above the reserve. Its chunks then draw on the reservation, so
   * each byte is counted once; `release` gives back what was not used.
   */
  async reserveSpace (bytes: number): Promise<SpaceReservation> {
    await this.claim(bytes)
    this.reservedBytes += bytes
    const reservation: SpaceReservation = {
      left: bytes,
      release: () => {
        this.reservedBytes -= reservation.left
        reservation.left = 0
      }
    }
    return reservation
  }

  /**
   * Count `bytes` about to be written, drawing on `reservation` first; throw
   * InsufficientStorageError if what is left over does not fit. The disk is
   * asked (statfs) at most every CAPACITY_REFRESH_MS; in between, what we
   * wrote since is subtracted, so the check stays cheap per chunk.
   */
  async ensureSpace (bytes: number, reservation?: SpaceReservation): Promise<void> {
    const covered = Math.min(bytes, reservation?.left ?? 0)
    if (bytes > covered) await this.claim(bytes - covered)
    if (reservation != null && covered > 0) {
      reservation.left -= covered
      this.reservedBytes -= covered
    }
    this.writtenBytes += bytes
  }

  /** Throw unless `bytes` fit above the reserve, next to what is written since the last statfs and still reserved. */
  private async claim (bytes: number): Promise<void> {
    const now = Date.now()
    if (this.capacity == null || now - this.capacity.at > CAPACITY_REFRESH_MS) {
      this.capacity = { ...await this.init.capacity(), at: now }
      // The file system now counts what we wrote; reservations not yet written stay ours.
      this.writtenBytes = 0
    }
    const { free, total } = this.capacity
    const reserve = sizeOf(this.init.reserve, total)
    const available = free - this.writtenBytes - this.reservedBytes
    if (available - bytes < reserve) {
      throw new InsufficientStorageError(`storing ${bytes} more bytes would leave ${Math.max(0, available - bytes)} free, below the reserve of ${reserve} bytes`)
    }
  }

  /** Write a chunk (the caller pins it until its file commits), drawing on `reservation` if given. Returns its directory. */
  async putChunk (digest: Uint8Array, data: Uint8Array, reservation?: SpaceReservation): Promise<string> {
    await this.ensureSpace(data.byteLength, reservation)
    return this.chunks.write(digest, data)
  }

  /** Keep chunks from being collected while an upload or fetch still needs them. */
  pin (digest: Uint8Array): void {
    const key = toHex(digest, 'base16')
    this.pins.set(key, (this.pins.get(key) ?? 0) + 1)
  }

  unpin (digests: Iterable<Uint8Array>): void {
    for (const d of digests) {
      const key = toHex(d, 'base16')
      const n = (this.pins.get(key) ?? 0) - 1
      if (n <= 0) this.pins.delete(key)
      else this.pins.set(key, n)
    }
  }

  /** Make chunk directories durable, then commit the add to the index. */
  async commitAdd (op: AddOp, dirs: Iterable<string>, hasAllChunks = true): Promise<ApplyEffect> {
    await this.chunks.syncDirs(dirs)
    this.clock.observe(op.ts)
    const effect = this.index.apply(op, hasAllChunks)
    const row = this.index.get(op.id)
    if (effect === 'added' && row?.state === 'present') this.safeDispatchEvent('file:present', { detail: row })
    // Sync may have learned of the file first (pending); the chunks are all here now.
    if (hasAllChunks && row?.state === 'pending') this.markPresent(op.id)
    return effect
  }

  /** Apply a delete; chunks no other live file uses are removed. */
  async applyDelete (op: DeleteOp): Promise<ApplyEffect> {
    const digests = this.index.chunksOf(op.id)
    this.clock.observe(op.ts)
    const effect = this.index.apply(op, false)
    if (effect === 'deleted') {
      await this.collect(digests)
      this.safeDispatchEvent('file:deleted', { detail: { id: op.id } })
    }
    return effect
  }

  /** Drop every file of groups other than `group` (we moved; they live on in their group). */
  async dropOtherGroups (group: string): Promise<number> {
    const ids = this.index.filesOutside(group)
    for (const id of ids) {
      const digests = this.index.chunksOf(id)
      this.index.forget(id)
      await this.collect(digests)
    }
    return ids.length
  }

  /** A pending file got all its chunks. */
  markPresent (id: string): void {
    this.index.setState(id, 'present')
    const row = this.index.get(id)
    if (row != null) this.safeDispatchEvent('file:present', { detail: row })
  }

  /** Chunks found corrupt on this disk since start. */
  corruptChunks = 0

  /**
   * Read a chunk, verified. A corrupt chunk is removed (so a good copy can
   * take its place), reported (event) and the error rethrown.
   */
  async readChunk (digest: Uint8Array): Promise<Uint8Array> {
    return (await this.readChunkWithLeaves(digest)).data
  }

  /** readChunk, also returning the leaf hashes its verification computed. */
  async readChunkWithLeaves (digest: Uint8Array): Promise<{ data: Uint8Array, leaves: Uint8Array }> {
    try {
      return await this.chunks.readWithLeaves(digest)
    } catch (err) {
      if ((err as Error).name === 'CorruptChunkError') {
        this.corruptChunks++
        await this.chunks.delete(digest)
        this.safeDispatchEvent('chunk:corrupt', { detail: { digest, files: this.index.filesWithChunk(digest) } })
      }
      throw err
    }
  }

  /** Remove chunks that no live file references and no transfer pins. */
  async collect (digests: Iterable<Uint8Array>): Promise<void> {
    for (const d of digests) {
      if (this.pins.has(toHex(d, 'base16')) || this.index.isReferenced(d)) continue
      await this.chunks.delete(d)
    }
  }

  /** Remove chunk files that no live file refers to and no transfer pins; returns how many. */
  async collectOrphans (): Promise<number> {
    const live = new Set(this.index.liveDigests().map(d => toHex(d, 'base16')))
    let removed = 0
    for await (const d of this.chunks.list()) {
      const key = toHex(d, 'base16')
      if (!live.has(key) && !this.pins.has(key)) {
        await this.chunks.delete(d)
        removed++
      }
    }
    return removed
  }

  /**
   * The start-up check: the index and the chunk files must agree. Chunk files
   * no live file refers to are leftovers of uploads that never committed:
   * removed. A present file with a chunk missing turns pending, so sync
   * fetches it again from the group.
   */
  async checkConsistency (options: { keepOrphans?: boolean } = {}): Promise<ConsistencyReport> {
    const orphanChunksRemoved = options.keepOrphans === true ? 0 : await this.collectOrphans()
    const filesMissingChunks: string[] = []
    for (const row of this.index.withState('present')) {
      for (const d of this.index.chunksOf(row.id)) {
        if (!await this.chunks.has(d)) {
          this.index.setState(row.id, 'pending')
          filesMissingChunks.push(row.id)
          break
        }
      }
    }
    return { orphanChunksRemoved, filesMissingChunks }
  }
}
