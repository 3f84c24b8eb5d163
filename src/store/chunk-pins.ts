/**
 * Which stored chunks may go: pins and collection. A chunk goes when no live
 * file refers to it and nothing pins it. Pins are counted, in memory (not
 * kept across restarts): an upload or fetch still writing chunks, a prepared
 * upload not decided yet, a deleted file's grace (./lingering.ts), a read
 * under way (`hold`). A collection that passes over a pinned chunk remembers
 * it, and the hold's release looks again at those alone — a read's release
 * used to cost a query per chunk, a fifth of a small Range's CPU.
 *
 * Every check and its removal happen in one turn: no await separates them.
 */
import { digestKey } from './digest-key.ts'
import type { ChunkStore } from './chunk-store.ts'
import type { Db } from './db.ts'
import type { FileIndex } from './file-index.ts'

export interface ChunkPinsComponents {
  db: Db
  index: Pick<FileIndex, 'isReferenced' | 'liveDigests'>
  chunks: Pick<ChunkStore, 'remove' | 'digests'>
}

export class ChunkPins {
  private readonly c: ChunkPinsComponents
  private readonly pins = new Map<string, number>()
  /** Chunks a collection passed over because they were pinned: looked at again when a hold lets go. */
  private readonly deferred = new Set<string>()

  constructor (components: ChunkPinsComponents) {
    this.c = components
  }

  /** Keep a chunk from being collected (once more). */
  pin (digest: Uint8Array): void {
    const key = digestKey(digest)
    this.pins.set(key, (this.pins.get(key) ?? 0) + 1)
  }

  unpin (digests: Iterable<Uint8Array>): void {
    for (const d of digests) {
      const key = digestKey(d)
      const n = (this.pins.get(key) ?? 0) - 1
      if (n <= 0) this.pins.delete(key)
      else this.pins.set(key, n)
    }
  }

  /**
   * Pin chunks until the returned function is called (once; later calls do
   * nothing); chunks that became unused meanwhile go then.
   */
  hold (digests: Uint8Array[]): () => void {
    for (const d of digests) this.pin(d)
    let held = true
    return () => {
      if (!held) return
      held = false
      this.release(digests)
    }
  }

  /** Unpin, and drop those of them a collection passed over that nothing pins any more and no file uses. */
  release (digests: Uint8Array[]): void {
    this.unpin(digests)
    if (this.deferred.size === 0) return
    const due = digests.filter(d => this.deferred.has(digestKey(d)))
    if (due.length > 0) this.collect(due)
  }

  /** Drop the chunks no live file refers to and nothing pins (their volume bytes become garbage). */
  collect (digests: Iterable<Uint8Array>): void {
    const unused: Uint8Array[] = []
    for (const d of digests) {
      const key = digestKey(d)
      if (this.pins.has(key)) this.deferred.add(key)
      else {
        this.deferred.delete(key)
        if (!this.c.index.isReferenced(d)) unused.push(d)
      }
    }
    if (unused.length > 0) this.c.db.transaction(() => { this.c.chunks.remove(unused) })
  }

  /** Drop every stored chunk that no live file refers to and nothing pins; returns how many. */
  collectOrphans (): number {
    const live = new Set(this.c.index.liveDigests().map(d => digestKey(d)))
    const orphans = this.c.chunks.digests().filter(d => { const key = digestKey(d); return !live.has(key) && !this.pins.has(key) })
    if (orphans.length > 0) this.c.db.transaction(() => { this.c.chunks.remove(orphans) })
    return orphans.length
  }
}
