/**
 * Open volume files kept for reads, least recently used first out, counted
 * by their users. A handle is closed only when nobody reads through it: one
 * evicted (the cache is full) or dropped (its volume was removed) while reads
 * are in flight closes once the last of them is done. A reader that asks
 * while the handle is being opened waits for that one open, so one volume
 * never has two read handles, and none is left to the garbage collector.
 */
import type { VolumeFile, VolumeFiles } from './volume-files.ts'

interface Entry {
  id: number
  opened: Promise<VolumeFile>
  users: number
  /** Out of the cache: close once `users` is 0. */
  evicted: boolean
}

export class ReadHandles {
  /** Handles that failed to close (counted, never thrown into a reader). */
  closeFailures = 0
  private readonly files: VolumeFiles
  private readonly max: number
  private readonly pathOf: (id: number) => string
  /** Insertion order is recency: a use moves its entry to the end. */
  private readonly entries = new Map<number, Entry>()
  private readonly closing = new Set<Promise<void>>()

  constructor (files: VolumeFiles, max: number, pathOf: (id: number) => string) {
    this.files = files
    this.max = max
    this.pathOf = pathOf
  }

  /** Run `fn` with a read handle of volume `id`, held until `fn` settles. */
  async with<T> (id: number, fn: (file: VolumeFile) => Promise<T>): Promise<T> {
    const entry = this.acquire(id)
    try {
      return await fn(await entry.opened)
    } finally {
      this.release(entry)
    }
  }

  /** The volume is gone: its handle closes once its readers are done. */
  drop (id: number): void {
    const entry = this.entries.get(id)
    if (entry == null) return
    this.entries.delete(id)
    this.evict(entry)
  }

  /** Close every handle; waits for the reads in flight and for closes already under way. */
  async closeAll (): Promise<void> {
    for (const entry of [...this.entries.values()]) this.drop(entry.id)
    while (this.closing.size > 0) await Promise.all(this.closing)
  }

  get size (): number { return this.entries.size }

  private acquire (id: number): Entry {
    let entry = this.entries.get(id)
    if (entry != null) {
      this.entries.delete(id)
    } else {
      entry = { id, opened: this.files.openRead(this.pathOf(id)), users: 0, evicted: false }
      const failed = entry
      // A failed open (the volume was removed meanwhile) must not stay cached.
      failed.opened.catch(() => { if (this.entries.get(id) === failed) this.entries.delete(id) })
    }
    entry.users++
    this.entries.set(id, entry)
    this.trim()
    return entry
  }

  private release (entry: Entry): void {
    entry.users--
    if (entry.evicted && entry.users === 0) this.close(entry)
  }

  /** Evict the least recently used idle handles beyond the limit (busy ones stay until released). */
  private trim (): void {
    if (this.entries.size <= this.max) return
    for (const entry of this.entries.values()) {
      if (this.entries.size <= this.max) return
      if (entry.users > 0) continue
      this.entries.delete(entry.id)
      this.evict(entry)
    }
  }

  private evict (entry: Entry): void {
    entry.evicted = true
    if (entry.users === 0) this.close(entry)
  }

  private close (entry: Entry): void {
    const done = entry.opened
      .then(async file => { await file.close() }, () => { /* never opened: nothing to close */ })
      .catch(() => { this.closeFailures++ })
      .finally(() => { this.closing.delete(done) })
    this.closing.add(done)
  }
}
