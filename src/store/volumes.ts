/**
 * Volumes: append-only files of needles, as Haystack and SeaweedFS keep
 * photos — `<data>/volumes/00000001.vol`, a new one once the active one
 * would pass its maximum size. A needle is one chunk:
 *
 *   magic "DSN1" (4) ‖ length (u32 BE) ‖ digest (32) ‖ bytes (length)
 *
 * Appends go to the page cache (positional writes on libuv's pool, never
 * the event loop); `sync(volumes)` makes them durable with one fdatasync per
 * volume, shared by every writer waiting (group commit). Where each needle
 * lives is kept by the index (./chunk-store.ts), so a read is one pread; the
 * header makes a volume readable without the index (rebuild, compaction,
 * torn-tail checks). Nothing is written in place, nothing is fsynced per chunk.
 *
 * Concurrency rules (docs/storage.md lists them with the rest of the store's):
 *  - an append reserves its offset synchronously, in the same turn as the
 *    size check, so two appends never get one offset;
 *  - one rotation at a time: appends that find the active volume full while
 *    a rotation runs wait for it, then check again;
 *  - a sealed volume's handle closes only once every append to it finished
 *    and a flush that began after the last one completed (the store flushes
 *    it itself when its writers did not);
 *  - a volume holding needles that are not indexed yet (`holds`) or still
 *    writable is never removed; a removed volume takes no new index rows;
 *  - every handle opened here is closed here (`stop` waits for them).
 */
import { join } from 'node:path'
import { DiskSyncError, StoreStoppedError } from '../errors.ts'
import { GroupCommit } from './group-commit.ts'
import { ReadHandles } from './read-handles.ts'
import { nodeVolumeFiles } from './volume-files.ts'
import type { BufferPool } from '../util/buffer-pool.ts'
import type { VolumeFile, VolumeFiles } from './volume-files.ts'

/** A volume is closed for appends past this size (compaction then rewrites whole volumes). */
export const VOLUME_MAX_BYTES = 1024 * 1024 * 1024
/** Open volume files kept for reads (others are reopened on demand). */
export const VOLUME_READ_HANDLES = 64
export const NEEDLE_HEADER_BYTES = 40
const MAGIC = 0x44534e31 // "DSN1"

export interface NeedleLocation { volume: number, offset: number, length: number }

export interface VolumeSetInit {
  maxBytes?: number
  /** The file system (tests plug in one that can lose unsynced writes). */
  files?: VolumeFiles
  readHandles?: number
}

const volumeName = (id: number): string => `${String(id).padStart(8, '0')}.vol`

interface Volume {
  id: number
  file: VolumeFile
  /** Bytes reserved by appends (the next needle's offset). */
  size: number
  commit: GroupCommit
  /** Appends finished since the last flush began. */
  dirty: boolean
  /** Appends whose write is still in flight. */
  pending: number
  /** No longer the active volume. */
  sealed: boolean
}

export class VolumeSet {
  readonly dir: string
  /** Volumes started since this process began (metrics, tests). */
  rotations = 0
  /** Write handles that failed to close (counted: every append to them was flushed first). */
  closeFailures = 0
  private readonly maxBytes: number
  private readonly files: VolumeFiles
  private readonly readers: ReadHandles
  private active?: Volume
  /** The rotation in flight: appends that find the active volume full wait for it. */
  private rotation?: Promise<void>
  /** Volumes that still have a write handle (the active one, sealed ones not yet flushed). */
  private readonly writable = new Map<number, Volume>()
  /** Needles appended and not yet indexed (or discarded), per volume. */
  private readonly holds = new Map<number, number>()
  private readonly removed = new Set<number>()
  /** Work this set owns (appends, final flushes, closes): stop waits for it. */
  private readonly tasks = new Set<Promise<unknown>>()
  private state: 'idle' | 'running' | 'stopping' = 'idle'

  constructor (dataDir: string, init: VolumeSetInit = {}) {
    this.dir = join(dataDir, 'volumes')
    this.maxBytes = init.maxBytes ?? VOLUME_MAX_BYTES
    this.files = init.files ?? nodeVolumeFiles
    this.readers = new ReadHandles(this.files, init.readHandles ?? VOLUME_READ_HANDLES, id => this.path(id))
  }

  /**
   * Open the directory; appends continue in the newest volume, which is cut
   * back to the end of the last needle the index knows (`tailOf`): what lies
   * beyond is a torn needle or appends of uploads that never committed.
   */
  async start (tailOf: (volume: number) => number): Promise<void> {
    if (this.state !== 'idle') return
    await this.files.mkdir(this.dir)
    const last = (await this.ids()).at(-1)
    const v = await this.openWritable(last ?? 1, last != null ? tailOf(last) : 0, 'any')
    if (await v.file.size() > v.size) {
      await v.file.truncate(v.size)
      await v.file.datasync()
    }
    this.removed.clear()
    this.state = 'running'
  }

  /** Stop: waits for appends and flushes in flight, then closes every handle. */
  async stop (): Promise<void> {
    if (this.state !== 'running') return
    this.state = 'stopping'
    await this.rotation?.catch(() => {})
    while (this.tasks.size > 0) await Promise.allSettled(this.tasks)
    const closes = [...this.writable.values()].map(async v => { await v.file.close() })
    this.writable.clear()
    this.holds.clear()
    this.active = undefined
    const results = await Promise.allSettled([...closes, this.readers.closeAll()])
    this.state = 'idle'
    const failed = results.find(r => r.status === 'rejected')
    if (failed != null) throw (failed as PromiseRejectedResult).reason
  }

  /** Volume ids on disk, ascending. */
  async ids (): Promise<number[]> {
    const names = await this.files.list(this.dir)
    return names.flatMap(n => /^(\d{8})\.vol$/.test(n) ? [Number(n.slice(0, 8))] : []).sort((a, b) => a - b)
  }

  path (id: number): string { return join(this.dir, volumeName(id)) }

  /** The volume appends go to now. */
  get activeId (): number { return this.running().id }

  /** Handles open for writing (the active volume and sealed ones awaiting their last flush). */
  get writableCount (): number { return this.writable.size }

  /** Read handles open. */
  get readHandles (): number { return this.readers.size }

  /**
   * Append a needle (page cache only); where it went. The needle is held
   * (its volume is not removed) until `release` says it was indexed or dropped.
   */
  async append (digest: Uint8Array, data: Uint8Array): Promise<NeedleLocation> {
    const bytes = NEEDLE_HEADER_BYTES + data.byteLength
    let v = this.running()
    // Check and reserve in one turn: no await between seeing room and taking it.
    // A volume whose flush failed takes no more needles: its syncs fail for good.
    while (this.rotation != null || v.commit.failed != null || (v.size > 0 && v.size + bytes > this.maxBytes)) {
      this.rotation ??= this.rotate(v)
      await this.rotation
      v = this.running()
    }
    const offset = v.size
    v.size += bytes
    v.pending++
    this.hold(v.id)
    const header = Buffer.alloc(NEEDLE_HEADER_BYTES)
    header.writeUInt32BE(MAGIC, 0)
    header.writeUInt32BE(data.byteLength, 4)
    header.set(digest, 8)
    const write = this.own(v.file.writev([header, data], offset))
    try {
      await write
      // Marked after the write: a flush that began before it finished must not count it as synced.
      v.dirty = true
    } catch (err) {
      this.release(v.id)
      throw err
    } finally {
      v.pending--
      if (v.sealed && v.pending === 0) this.finish(v)
    }
    return { volume: v.id, offset: offset + NEEDLE_HEADER_BYTES, length: data.byteLength }
  }

  /** Make every append to these volumes durable (one fdatasync each, shared with concurrent callers). */
  async sync (volumes: Iterable<number>): Promise<void> {
    await Promise.all([...new Set(volumes)].map(async id => {
      const v = this.writable.get(id)
      if (v == null) {
        // Retired: every append to it was flushed before its handle closed.
        if (this.removed.has(id)) throw new DiskSyncError(`volume ${id} was removed before its needles were indexed`)
        return
      }
      await v.commit.sync()
      this.retireIfDone(v)
    }))
  }

  /** Needles appended to `volume` were indexed or dropped: it may be compacted and removed again. */
  release (volume: number, count = 1): void {
    const n = (this.holds.get(volume) ?? 0) - count
    if (n > 0) this.holds.set(volume, n)
    else this.holds.delete(volume)
  }

  /** The volume was removed: rows must not point into it any more. */
  isRemoved (volume: number): boolean { return this.removed.has(volume) }

  /** Appends may still land in it or wait to be indexed: not to be compacted or removed. */
  busy (volume: number): boolean {
    return volume === this.active?.id || this.writable.has(volume) || this.holds.has(volume)
  }

  /** Read `length` bytes at `offset` of a volume (a needle's bytes, or part of them); into a buffer of `pool` when one is given. */
  async read (volume: number, offset: number, length: number, pool?: BufferPool): Promise<Uint8Array> {
    return this.readers.with(volume, async file => {
      const buf = pool != null ? pool.take(length) : Buffer.allocUnsafe(length)
      let done = 0
      while (done < length) {
        const n = await file.read(buf, done, length - done, offset + done)
        if (n === 0) break
        done += n
      }
      return done === length ? buf : buf.subarray(0, done)
    })
  }

  /** The needles of a volume in order, from its headers (stops at a torn or foreign tail). */
  async * scan (volume: number): AsyncGenerator<NeedleLocation & { digest: Uint8Array }> {
    const size = await this.size(volume)
    let at = 0
    while (at + NEEDLE_HEADER_BYTES <= size) {
      const header = Buffer.from(await this.read(volume, at, NEEDLE_HEADER_BYTES))
      if (header.readUInt32BE(0) !== MAGIC) return
      const length = header.readUInt32BE(4)
      if (at + NEEDLE_HEADER_BYTES + length > size) return
      yield { volume, offset: at + NEEDLE_HEADER_BYTES, length, digest: Uint8Array.from(header.subarray(8, 40)) }
      at += NEEDLE_HEADER_BYTES + length
    }
  }

  /** Size of a volume file (0 if missing). */
  async size (volume: number): Promise<number> {
    return await this.files.size(this.path(volume)) ?? 0
  }

  /** Delete a whole volume (compaction moved its live needles away; the index no longer points into it). */
  async remove (volume: number): Promise<void> {
    if (this.busy(volume)) throw new Error(`volume ${volume} is still written or holds needles not yet indexed; it stays`)
    this.removed.add(volume)
    // Reads in flight keep their handle until they are done; the file's blocks are freed when it closes.
    this.readers.drop(volume)
    await this.files.remove(this.path(volume))
  }

  private running (): Volume {
    if (this.state !== 'running' || this.active == null) throw new StoreStoppedError('the volume store is not running')
    return this.active
  }

  private hold (volume: number): void {
    this.holds.set(volume, (this.holds.get(volume) ?? 0) + 1)
  }

  private async openWritable (id: number, size: number, create: 'new' | 'any'): Promise<Volume> {
    const file = await this.files.openWrite(this.path(id), create)
    const v: Volume = { id, file, size, dirty: false, pending: 0, sealed: false, commit: undefined as unknown as GroupCommit }
    v.commit = new GroupCommit(async () => {
      if (!v.dirty) return
      v.dirty = false
      await file.datasync()
    })
    this.writable.set(id, v)
    this.active = v
    return v
  }

  /** Start the next volume; the sealed one closes once its writers are done and flushed. */
  private async rotate (from: Volume): Promise<void> {
    try {
      // The old volume stays active until the new one exists: a failed open leaves appends where they were.
      await this.openWritable(from.id + 1, 0, 'new')
      this.rotations++
      from.sealed = true
      if (from.pending === 0) this.finish(from)
    } finally {
      this.rotation = undefined
    }
  }

  /** A sealed volume's last append finished: flush what its writers did not, then close it. */
  private finish (v: Volume): void {
    if (this.writable.get(v.id) !== v) return
    this.own(v.commit.sync().then(() => { this.retireIfDone(v) }, () => {
      // The flush failed: the volume keeps its handle and refuses every sync (its writers were not acknowledged).
    }))
  }

  private retireIfDone (v: Volume): void {
    if (!v.sealed || v.pending > 0 || v.dirty || v.commit.busy || this.writable.get(v.id) !== v) return
    this.writable.delete(v.id)
    this.own(v.file.close()).catch(() => { this.closeFailures++ })
  }

  /** Track a promise until it settles (stop waits for it); the caller still sees its result. */
  private own<T> (p: Promise<T>): Promise<T> {
    this.tasks.add(p)
    const forget = (): void => { this.tasks.delete(p) }
    p.then(forget, forget)
    return p
  }
}
