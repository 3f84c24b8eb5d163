/**
 * Deleted files whose chunks stay readable for a while, for the reads that
 * were already under way when the delete came. A delete removes the file at
 * once (every new read is a 404); the chunks of the deleted copy are pinned
 * for `graceMs` and then go the way of any unused chunk. A holder's own reads
 * pin what they read for as long as they last (LocalStore.holdChunks); this
 * grace is for readers elsewhere, which ask a holder for one segment after
 * another and would otherwise lose the file between two of them.
 *
 * Each grace is a row (table `lingering`), written in the delete's
 * transaction: a node that crashes during a grace collects those chunks at
 * its next start instead of keeping them indexed for ever.
 */
import type { Db } from './db.ts'
import type { FileRow } from './file-index.ts'
import type { StatementSync } from 'node:sqlite'

/** How long the chunks of a deleted file stay readable by reads under way. */
export const DELETED_READ_GRACE_MS = 60_000
/** A chunk digest is a SHA-256 (content/chunk-hash.ts): the digests of a grace are stored end to end. */
const DIGEST_BYTES = 32

export interface LingeringComponents {
  db: Db
  pin(digest: Uint8Array): void
  /** Unpin, and drop the chunks nothing uses any more. */
  release(digests: Uint8Array[]): void
  /** Drop the chunks nothing uses and nothing pins (the start's collection). */
  collect(digests: Uint8Array[]): void
}

interface Held { manifest: Uint8Array, digests: Uint8Array[], timer: ReturnType<typeof setTimeout> }

export class Lingering {
  private readonly c: LingeringComponents
  private readonly graceMs: number
  private readonly held = new Map<string, Held>()
  private readonly q: { put: StatementSync, remove: StatementSync, all: StatementSync }

  constructor (components: LingeringComponents, graceMs: number = DELETED_READ_GRACE_MS) {
    this.c = components
    this.graceMs = graceMs
    const p = (s: string): StatementSync => components.db.sql.prepare(s)
    this.q = {
      put: p('INSERT OR REPLACE INTO lingering (file_id, manifest, digests, until) VALUES (?, ?, ?, ?)'),
      remove: p('DELETE FROM lingering WHERE file_id = ?'),
      all: p('SELECT file_id, digests FROM lingering')
    }
  }

  /**
   * The graces a crash cut short: collect their chunks (after the start pinned
   * what prepared uploads need). Returns how many there were.
   */
  recover (): number {
    const rows = this.q.all.all() as Array<{ file_id: string, digests: Uint8Array }>
    for (const row of rows) {
      this.c.db.transaction(() => {
        this.q.remove.run(row.file_id)
        this.c.collect(split(row.digests))
      })
    }
    return rows.length
  }

  /**
   * Pin a deleted file's chunks for the grace. Called inside the delete's
   * transaction, before the delete collects them.
   */
  hold (row: Pick<FileRow, 'id' | 'manifest'>, digests: Uint8Array[]): void {
    if (this.graceMs <= 0 || row.manifest == null || digests.length === 0 || digests.some(d => d.byteLength !== DIGEST_BYTES)) return
    for (const d of digests) this.c.pin(d)
    // A file deleted again in its grace (re-added, deleted): pinned twice above, released once here.
    this.end(row.id)
    this.q.put.run(row.id, row.manifest, join(digests), Date.now() + this.graceMs)
    const timer = setTimeout(() => { this.end(row.id) }, this.graceMs)
    timer.unref()
    this.held.set(row.id, { manifest: row.manifest, digests, timer })
  }

  /** The encoded manifest of a deleted file still in its grace. */
  manifest (id: string): Uint8Array | undefined {
    return this.held.get(id)?.manifest
  }

  get size (): number {
    return this.held.size
  }

  private end (id: string): void {
    const h = this.held.get(id)
    if (h == null) return
    clearTimeout(h.timer)
    this.held.delete(id)
    this.c.db.transaction(() => {
      this.q.remove.run(id)
      this.c.release(h.digests)
    })
  }

  /** End every grace now (the store stops: its reads are over). */
  clear (): void {
    for (const id of [...this.held.keys()]) this.end(id)
  }
}

function join (digests: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(digests.length * DIGEST_BYTES)
  digests.forEach((d, i) => { out.set(d, i * DIGEST_BYTES) })
  return out
}

function split (bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let at = 0; at + DIGEST_BYTES <= bytes.byteLength; at += DIGEST_BYTES) out.push(bytes.slice(at, at + DIGEST_BYTES))
  return out
}
