/**
 * Chunks on disk, content-addressed by their SHA-256: `chunks/ab/cd/abcd…`
 * (two levels of 256 directories keep any directory small). A chunk is
 * written to `tmp/`, fsynced and renamed into place; the directories touched
 * are fsynced before the index commits the file, so a committed file's chunks
 * survive a crash, and a crash before the commit leaves only unreferenced
 * chunks that the start-up check removes. Reads verify the hash.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { toString as toHex, fromString as fromHex } from 'uint8arrays'
import { equals } from 'uint8arrays/equals'
import { CorruptChunkError } from '../errors.ts'
import { hashChunk } from '../replica/chunk-hash.ts'
import { fsyncDir } from '../util/fs.ts'

export class ChunkStore {
  readonly root: string
  private readonly tmp: string
  /** Shard directories known to exist (saves a mkdir per chunk). */
  private readonly dirs = new Set<string>()

  constructor (dataDir: string) {
    this.root = join(dataDir, 'chunks')
    this.tmp = join(dataDir, 'tmp')
  }

  /** Create the directories and drop temp files left by a crash. */
  async init (): Promise<void> {
    await rm(this.tmp, { recursive: true, force: true })
    await mkdir(this.tmp, { recursive: true })
    await mkdir(this.root, { recursive: true })
  }

  pathOf (digest: Uint8Array): string {
    const hex = toHex(digest, 'base16')
    return join(this.root, hex.slice(0, 2), hex.slice(2, 4), hex)
  }

  async has (digest: Uint8Array): Promise<boolean> {
    try {
      await stat(this.pathOf(digest))
      return true
    } catch {
      return false
    }
  }

  /**
   * Store a chunk whose digest the caller computed. Returns the directory to
   * fsync before committing. The rename replaces any existing copy with the
   * same bytes (content addressing), which also heals a damaged one, and
   * costs fewer file-system calls than checking first.
   */
  async write (digest: Uint8Array, data: Uint8Array): Promise<string> {
    const path = this.pathOf(digest)
    const dir = dirname(path)
    const tmp = join(this.tmp, randomBytes(8).toString('hex'))
    try {
      const fh = await open(tmp, 'wx')
      try {
        await fh.writeFile(data)
        await fh.datasync()
      } finally {
        await fh.close()
      }
      if (!this.dirs.has(dir)) {
        await mkdir(dir, { recursive: true })
        this.dirs.add(dir)
      }
      await rename(tmp, path)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
    return dir
  }

  /** Make the renames into these directories durable. */
  async syncDirs (dirs: Iterable<string>): Promise<void> {
    await Promise.all([...new Set(dirs)].map(async d => fsyncDir(d)))
  }

  /** Read and verify a chunk; a mismatch throws CorruptChunkError. */
  async read (digest: Uint8Array): Promise<Uint8Array> {
    return (await this.readWithLeaves(digest)).data
  }

  /** Read and verify a chunk, keeping the leaf hashes the check computed (a partial send needs them). */
  async readWithLeaves (digest: Uint8Array): Promise<{ data: Uint8Array, leaves: Uint8Array }> {
    const data = new Uint8Array(await readFile(this.pathOf(digest)))
    const hashed = await hashChunk(data)
    if (!equals(hashed.digest, digest)) {
      throw new CorruptChunkError(`chunk ${toHex(digest, 'base16').slice(0, 16)}… on disk does not match its hash`)
    }
    return { data, leaves: hashed.leaves }
  }

  async delete (digest: Uint8Array): Promise<void> {
    await rm(this.pathOf(digest), { force: true })
  }

  /** Every chunk digest on disk (for the start-up consistency check). */
  async * list (): AsyncGenerator<Uint8Array> {
    for (const a of await readdir(this.root).catch(() => [])) {
      for (const b of await readdir(join(this.root, a)).catch(() => [])) {
        for (const name of await readdir(join(this.root, a, b)).catch(() => [])) {
          if (/^[0-9a-f]{64}$/.test(name)) yield fromHex(name, 'base16')
        }
      }
    }
  }
}
