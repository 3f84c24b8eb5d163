/**
 * Volumes: append-only files of needles, as Haystack and SeaweedFS keep
 * photos — `<data>/volumes/00000001.vol`, a new one once the active one
 * passes VOLUME_MAX_BYTES. A needle is one chunk:
 *
 *   magic "DSN1" (4) ‖ length (u32 BE) ‖ digest (32) ‖ bytes (length)
 *
 * Appends go to the page cache (positional writes on libuv's pool, never
 * the event loop); `sync(volumes)` makes them durable with one fdatasync per
 * volume, shared by every writer waiting (group commit). Where each needle
 * lives is kept by the index (./chunk-store.ts), so a read is one pread; the
 * header makes a volume readable without the index (rebuild, compaction,
 * torn-tail checks). Nothing is written in place, nothing is fsynced per chunk.
 */
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { LRUCache } from 'lru-cache'
import { GroupCommit } from './group-commit.ts'
import type { FileHandle } from 'node:fs/promises'

/** A volume is closed for appends past this size (compaction then rewrites whole volumes). */
export const VOLUME_MAX_BYTES = 1024 * 1024 * 1024
/** Open volume files kept for reads (others are reopened on demand). */
export const VOLUME_READ_HANDLES = 64
export const NEEDLE_HEADER_BYTES = 40
const MAGIC = 0x44534e31 // "DSN1"

export interface NeedleLocation { volume: number, offset: number, length: number }

const volumeName = (id: number): string => `${String(id).padStart(8, '0')}.vol`

interface Volume {
  id: number
  fh: FileHandle
  /** Bytes reserved by appends (the next needle's offset). */
  size: number
  commit: GroupCommit
  /** Appends finished since the last fdatasync began. */
  dirty: boolean
  /** Appends whose write is still in flight. */
  pending: number
  /** No longer the active volume: its handle closes once its last append is synced. */
  sealed: boolean
}

export class VolumeSet {
  readonly dir: string
  private active?: Volume
  /** Volumes written since their last sync (by id), so sync() knows whom to flush. */
  private readonly writable = new Map<number, Volume>()
  private readonly readers = new LRUCache<number, FileHandle>({
    max: VOLUME_READ_HANDLES,
    dispose: (fh) => { fh.close().catch(() => {}) }
  })

  private readonly maxBytes: number

  constructor (dataDir: string, maxBytes = VOLUME_MAX_BYTES) {
    this.dir = join(dataDir, 'volumes')
    this.maxBytes = maxBytes
  }

  /**
   * Open the directory; appends continue in the newest volume, which is cut
   * back to the end of the last needle the index knows (`tailOf`): what lies
   * beyond is a torn needle or appends of uploads that never committed.
   */
  async start (tailOf: (volume: number) => number): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const ids = await this.ids()
    const last = ids.at(-1)
    const v = await this.openActive(last ?? 1, last != null ? tailOf(last) : 0)
    if ((await v.fh.stat()).size > v.size) {
      await v.fh.truncate(v.size)
      await v.fh.datasync()
    }
  }

  async stop (): Promise<void> {
    for (const v of this.writable.values()) await v.fh.close().catch(() => {})
    this.writable.clear()
    this.active = undefined
    this.readers.clear()
  }

  /** Volume ids on disk, ascending. */
  async ids (): Promise<number[]> {
    const names = await readdir(this.dir).catch(() => [] as string[])
    return names.flatMap(n => /^(\d{8})\.vol$/.test(n) ? [Number(n.slice(0, 8))] : []).sort((a, b) => a - b)
  }

  path (id: number): string { return join(this.dir, volumeName(id)) }

  /** Append a needle (page cache only); where it went. Appends are ordered by offset reservation, not by completion. */
  async append (digest: Uint8Array, data: Uint8Array): Promise<NeedleLocation> {
    let v = this.active as Volume
    if (v.size + NEEDLE_HEADER_BYTES + data.byteLength > this.maxBytes && v.size > 0) v = await this.rotate()
    const offset = v.size
    v.size += NEEDLE_HEADER_BYTES + data.byteLength
    v.pending++
    const header = Buffer.alloc(NEEDLE_HEADER_BYTES)
    header.writeUInt32BE(MAGIC, 0)
    header.writeUInt32BE(data.byteLength, 4)
    header.set(digest, 8)
    try {
      await v.fh.writev([header, data], offset)
      // Marked after the write: a flush that began before it finished must not count it as synced.
      v.dirty = true
    } finally {
      v.pending--
    }
    return { volume: v.id, offset: offset + NEEDLE_HEADER_BYTES, length: data.byteLength }
  }

  /** Make every append to these volumes durable (one fdatasync each, shared with concurrent callers). */
  async sync (volumes: Iterable<number>): Promise<void> {
    await Promise.all([...new Set(volumes)].map(async id => {
      const v = this.writable.get(id)
      if (v == null) return
      await v.commit.sync()
      this.retireIfDone(v)
    }))
  }

  /** Read `length` bytes at `offset` of a volume (a needle's bytes, or part of them). */
  async read (volume: number, offset: number, length: number): Promise<Uint8Array> {
    const fh = await this.reader(volume)
    const buf = Buffer.allocUnsafe(length)
    let done = 0
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, offset + done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return done === length ? buf : buf.subarray(0, done)
  }

  /** The needles of a volume in order, from its headers (stops at a torn or foreign tail). */
  async * scan (volume: number): AsyncGenerator<NeedleLocation & { digest: Uint8Array }> {
    const size = (await stat(this.path(volume))).size
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
    return (await stat(this.path(volume)).catch(() => ({ size: 0 }))).size
  }

  /** The volume appends go to now. */
  get activeId (): number { return (this.active as Volume).id }

  /** Delete a whole volume (compaction moved its live needles away; the index no longer points into it). */
  async remove (volume: number): Promise<void> {
    if (volume === this.active?.id) throw new Error('the active volume cannot be removed')
    const v = this.writable.get(volume)
    this.writable.delete(volume)
    await v?.fh.close().catch(() => {})
    // A read in flight keeps its handle; the file's blocks are freed when it closes.
    this.readers.delete(volume)
    await rm(this.path(volume), { force: true })
  }

  private async reader (volume: number): Promise<FileHandle> {
    // Reads use handles of their own: a writer's handle closes when its volume is retired (close waits for reads in flight).
    let fh = this.readers.get(volume)
    if (fh == null) {
      fh = await open(this.path(volume), 'r')
      this.readers.set(volume, fh)
    }
    return fh
  }

  private async openActive (id: number, size: number): Promise<Volume> {
    // Create it if missing, then write at the offsets the index says (never O_APPEND: a torn tail is overwritten).
    await (await open(this.path(id), 'a')).close()
    const fh = await open(this.path(id), 'r+')
    const v: Volume = { id, fh, size, dirty: false, pending: 0, sealed: false, commit: undefined as unknown as GroupCommit }
    v.commit = new GroupCommit(async () => {
      if (!v.dirty) return
      v.dirty = false
      await fh.datasync()
    })
    this.writable.set(id, v)
    this.active = v
    return v
  }

  /** Seal the active volume and start the next one; the sealed one closes once its writers synced. */
  private async rotate (): Promise<Volume> {
    const sealed = this.active as Volume
    sealed.sealed = true
    const next = await this.openActive(sealed.id + 1, 0)
    this.retireIfDone(sealed)
    return next
  }

  private retireIfDone (v: Volume): void {
    if (!v.sealed || v.pending > 0 || v.dirty || this.writable.get(v.id) !== v) return
    this.writable.delete(v.id)
    v.fh.close().catch(() => { /* nothing left to lose: every append was synced */ })
  }
}
