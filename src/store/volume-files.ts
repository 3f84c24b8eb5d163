/**
 * The file operations volumes need, behind one small interface: positional
 * writes and reads, fdatasync, truncate, create, list, remove. Production
 * uses the node:fs implementation below; the store's crash tests plug in a
 * disk that keeps unsynced writes apart and loses them on a simulated crash
 * (test/helpers/crash-disk.ts), which a real file system cannot be made to
 * do from inside a process.
 */
import { constants } from 'node:fs'
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises'
import { fsyncDir } from '../util/fs.ts'
import type { FileHandle } from 'node:fs/promises'

export interface VolumeFile {
  /** Write `buffers` one after the other at `position` (page cache only). */
  writev(buffers: Uint8Array[], position: number): Promise<void>
  /** Read up to `length` bytes at `position` into `buf` at `offset`; how many were read. */
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number>
  /** Make every write that finished before the call durable. */
  datasync(): Promise<void>
  truncate(length: number): Promise<void>
  size(): Promise<number>
  close(): Promise<void>
}

export interface VolumeFiles {
  /** Create the directory if missing. */
  mkdir(dir: string): Promise<void>
  /** Names in the directory ([] if it does not exist). */
  list(dir: string): Promise<string[]>
  /** Open an existing file for reads (ENOENT if missing). */
  openRead(path: string): Promise<VolumeFile>
  /**
   * Open for positional writes, never O_APPEND (a torn tail is written over).
   * `create: 'new'` makes a file that must not exist yet; `'any'` opens or
   * creates it. Either way its directory entry is durable before this resolves.
   */
  openWrite(path: string, create: 'new' | 'any'): Promise<VolumeFile>
  /** Size of a file, undefined if it does not exist. */
  size(path: string): Promise<number | undefined>
  remove(path: string): Promise<void>
}

class NodeVolumeFile implements VolumeFile {
  private readonly fh: FileHandle

  constructor (fh: FileHandle) {
    this.fh = fh
  }

  async writev (buffers: Uint8Array[], position: number): Promise<void> {
    let expected = 0
    for (const b of buffers) expected += b.byteLength
    const { bytesWritten } = await this.fh.writev(buffers, position)
    // A short write (disk full mid-write) must not pass for a stored needle.
    if (bytesWritten !== expected) throw new Error(`short write: ${bytesWritten} of ${expected} bytes at ${position}`)
  }

  async read (buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return (await this.fh.read(buf, offset, length, position)).bytesRead
  }

  async datasync (): Promise<void> { await this.fh.datasync() }
  async truncate (length: number): Promise<void> { await this.fh.truncate(length) }
  async size (): Promise<number> { return (await this.fh.stat()).size }
  async close (): Promise<void> { await this.fh.close() }
}

function dirOf (path: string): string {
  return path.slice(0, Math.max(0, path.lastIndexOf('/'))) || '.'
}

/** Volumes on the local file system (node:fs, I/O on libuv's thread pool). */
export const nodeVolumeFiles: VolumeFiles = {
  async mkdir (dir) { await mkdir(dir, { recursive: true }) },
  async list (dir) { return readdir(dir).catch(() => [] as string[]) },
  async openRead (path) { return new NodeVolumeFile(await open(path, 'r')) },
  async openWrite (path, create) {
    const flags = constants.O_RDWR | constants.O_CREAT | (create === 'new' ? constants.O_EXCL : 0)
    const fh = await open(path, flags, 0o644)
    // A needle synced into a file whose directory entry is not durable is lost with the entry.
    await fsyncDir(dirOf(path)).catch(async (err: unknown) => { await fh.close(); throw err })
    return new NodeVolumeFile(fh)
  },
  async size (path) {
    try {
      return (await stat(path)).size
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  },
  async remove (path) { await rm(path, { force: true }) }
}
