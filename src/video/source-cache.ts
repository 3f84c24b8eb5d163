/**
 * Local copies of sources for the jobs running here: fetched once (jobs of
 * one video on one member share it), removed when the last job using it
 * lets go.
 */
import { createHash } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fetchSource } from './tasks.ts'
import type { VideoFiles } from './tasks.ts'
import type { AbortOptions } from '@libp2p/interface'

interface Entry { users: number, ready: Promise<string> }

export class SourceCache {
  private readonly dir: string
  private readonly files: VideoFiles
  private readonly entries = new Map<string, Entry>()

  constructor (dir: string, files: VideoFiles) {
    this.dir = dir
    this.files = files
  }

  /** The path of a local copy of `source`; call release() once done with it. */
  async acquire (source: string, options: AbortOptions = {}): Promise<string> {
    let entry = this.entries.get(source)
    if (entry == null) {
      const path = join(this.dir, createHash('sha256').update(source).digest('hex').slice(0, 32))
      // Reserved before any await: a second job of the same source waits for this copy.
      entry = { users: 0, ready: mkdir(this.dir, { recursive: true }).then(async () => { await fetchSource(this.files, source, path, options); return path }) }
      this.entries.set(source, entry)
      entry.ready.catch(() => { if (this.entries.get(source) === entry) this.entries.delete(source) })
    }
    entry.users++
    try {
      return await entry.ready
    } catch (err) {
      entry.users--
      throw err
    }
  }

  async release (source: string): Promise<void> {
    const entry = this.entries.get(source)
    if (entry == null || --entry.users > 0) return
    this.entries.delete(source)
    const path = await entry.ready.catch(() => undefined)
    if (path != null) await rm(path, { force: true })
  }
}
