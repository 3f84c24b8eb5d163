/**
 * A disk for volumes that can crash: every file has what the page cache
 * holds (what reads see) and what is on the platter (what survives). A write
 * changes the first; fdatasync copies the first to the second, as of the
 * moment it began. `crash()` returns the disk as a machine would find it
 * after power loss: the synced bytes, and of every page written since its
 * last sync some written back and some not (4 KiB pages, chosen by the
 * seeded rng) — so an unsynced needle may be lost, torn or whole. The old
 * disk is dead from then on: every operation on it fails, as the process
 * that used it would have.
 *
 * Each operation also yields a seeded number of turns (microtasks or a
 * macrotask) before it takes effect, so concurrent appends, reads, syncs and
 * removals interleave differently from run to run, reproducibly per seed.
 */
import { basename } from 'node:path'
import type { VolumeFile, VolumeFiles } from '../../src/store/volume-files.ts'
import type { Rng } from '../sim/rng.ts'

const PAGE_BYTES = 4096

interface DiskFile {
  /** The page cache: what reads see. */
  cache: Buffer
  /** The platter: what a crash leaves. */
  platter: Buffer
}

function grow (buf: Buffer, size: number): Buffer {
  if (buf.byteLength >= size) return buf
  const out = Buffer.alloc(size)
  buf.copy(out)
  return out
}

export class CrashDisk implements VolumeFiles {
  /** Operations done (a test can wait for progress). */
  ops = 0
  private readonly files = new Map<string, DiskFile>()
  private readonly rng: Rng
  private dead = false

  constructor (rng: Rng) {
    this.rng = rng
  }

  /** Power loss now: the disk as it comes back (this one is dead). */
  crash (): CrashDisk {
    this.dead = true
    const after = new CrashDisk(this.rng)
    for (const [name, f] of this.files) {
      const size = this.rng.int(2) === 0 ? f.platter.byteLength : Math.max(f.platter.byteLength, f.cache.byteLength)
      const out = Buffer.alloc(size)
      f.platter.copy(out, 0, 0, Math.min(size, f.platter.byteLength))
      // Each page written since its last sync may or may not have reached the platter.
      for (let at = 0; at < size; at += PAGE_BYTES) {
        const end = Math.min(size, at + PAGE_BYTES)
        const cached = f.cache.subarray(at, Math.min(end, f.cache.byteLength))
        const synced = f.platter.subarray(at, Math.min(end, f.platter.byteLength))
        if (!cached.equals(synced) && this.rng.int(2) === 0) cached.copy(out, at)
      }
      after.files.set(name, { cache: Buffer.from(out), platter: out })
    }
    return after
  }

  /** Bytes as a reader would see them now (for assertions). */
  contents (path: string): Buffer | undefined {
    return this.files.get(basename(path))?.cache
  }

  async mkdir (): Promise<void> { await this.turn() }

  async list (): Promise<string[]> {
    await this.turn()
    return [...this.files.keys()]
  }

  async openRead (path: string): Promise<VolumeFile> {
    await this.turn()
    const name = basename(path)
    if (!this.files.has(name)) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' })
    return this.handle(name)
  }

  async openWrite (path: string, create: 'new' | 'any'): Promise<VolumeFile> {
    await this.turn()
    const name = basename(path)
    if (this.files.has(name) && create === 'new') throw Object.assign(new Error(`EEXIST: file already exists, open '${path}'`), { code: 'EEXIST' })
    // Creation is durable at once (the real implementation fsyncs the directory before it returns).
    if (!this.files.has(name)) this.files.set(name, { cache: Buffer.alloc(0), platter: Buffer.alloc(0) })
    return this.handle(name)
  }

  async size (path: string): Promise<number | undefined> {
    await this.turn()
    return this.files.get(basename(path))?.cache.byteLength
  }

  async remove (path: string): Promise<void> {
    await this.turn()
    this.files.delete(basename(path))
  }

  private handle (name: string): VolumeFile {
    // Like a descriptor: it keeps the file it opened even once the name is removed.
    const file = this.files.get(name) as DiskFile
    let closed = false
    const live = async (): Promise<void> => {
      await this.turn()
      if (closed) throw Object.assign(new Error('EBADF: file handle closed'), { code: 'EBADF' })
    }
    return {
      writev: async (buffers, position) => {
        await live()
        let at = position
        for (const b of buffers) {
          file.cache = grow(file.cache, at + b.byteLength)
          file.cache.set(b, at)
          at += b.byteLength
        }
      },
      read: async (buf, offset, length, position) => {
        await live()
        const n = Math.max(0, Math.min(length, file.cache.byteLength - position))
        file.cache.copy(buf, offset, position, position + n)
        return n
      },
      datasync: async () => {
        // What the sync covers is fixed when it begins; it lands when it ends.
        if (closed || this.dead) throw Object.assign(new Error('EBADF: file handle closed'), { code: 'EBADF' })
        const snapshot = Buffer.from(file.cache)
        await live()
        file.platter = snapshot
      },
      truncate: async (length) => {
        await live()
        file.cache = grow(file.cache, length).subarray(0, length)
        file.platter = Buffer.from(file.platter.subarray(0, Math.min(length, file.platter.byteLength)))
      },
      size: async () => { await live(); return file.cache.byteLength },
      close: async () => { await live(); closed = true }
    }
  }

  /** A seeded pause before an operation takes effect; a dead disk fails everything. */
  private async turn (): Promise<void> {
    this.ops++
    const n = this.rng.int(8)
    if (n === 7) await new Promise(resolve => setImmediate(resolve))
    else for (let i = 0; i < n; i++) await null
    if (this.dead) throw Object.assign(new Error('EIO: the machine crashed'), { code: 'EIO' })
  }
}
