/**
 * Group sync (anti-entropy). Every member keeps, per other member, a cursor
 * in that member's group log; it pulls what lies after the cursor
 * (`/dsm/sync/1.0.0`), applies it last-writer-wins, then fetches the chunks
 * of files it learned about (pending) from any member that holds them,
 * verified. Cursors and pending files are persisted, so a restarted or
 * interrupted sync resumes where it stopped, from whichever member answers.
 *
 * A SYNCING member turns ACTIVE once, in one round, it has pulled every
 * reachable ACTIVE member's log to its head and has nothing pending.
 */
import { rpcHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { pullNames } from './name-sync.ts'
import { frameBytesFor } from '../wire/answer.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { NotAMemberError, toError } from '../errors.ts'
import { anySignal } from '../util/abort.ts'
import { readChunks } from '../stream/range-reader.ts'
import { remoteSource } from '../stream/sources.ts'
import { PROTOCOLS, SyncRequestSchema, SyncResponseSchema } from '../wire/messages.ts'
import { request } from '../wire/rpc.ts'
import { decodeManifest } from '../content/manifest.ts'
import { ChunkWriter } from '../store/chunk-writer.ts'
import type { Manifest } from '../content/manifest.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { MembershipView, MemberRecord } from '../membership/view.ts'
import type { FileRow } from '../store/file-index.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { LogEntry, SyncResponse } from '../wire/messages.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions, Startable } from '@libp2p/interface'

/** A member pulls each mate's log at least this often, even when heartbeats say nothing moved. */
export const SYNC_FULL_PULL_INTERVAL_MS = 10_000
/**
 * Progress (files held, to go) is published at most this often: counting
 * them scans the file index, and under a stream of uploads every heartbeat
 * of a mate starts a round.
 */
export const SYNC_PROGRESS_INTERVAL_MS = 1_000
/** Entries per page of a group-log pull. */
export const SYNC_PAGE_ENTRIES = 500
/** Manifest bytes per page of a group-log pull (bounds the answer frame). */
export const SYNC_PAGE_BYTES = 8 * 1024 * 1024
/** A round waits this long at most for the DHT to name mates it does not know (a lonely member's first round). */
export const SYNC_FIND_GROUP_TIMEOUT_MS = 3_000
/** Files fetched in parallel while catching up. */
export const SYNC_FETCH_CONCURRENCY = 2

export interface SyncComponents {
  selfId: string
  store: LocalStore
  status: LocalStatus
  view: MembershipView
  dialer: Dialer
  /**
   * Resolves once we heard from the cluster (bootstrap view merged). Until
   * then an empty view would look like a group of one: a restarted member
   * must not declare itself caught up before it knows its group mates.
   */
  waitForContact: (options: AbortOptions) => Promise<void>
  /** Make the view know a group's members when it does not (the DHT tracker: dht/group-finder.ts). */
  findGroup?: (group: string, options: AbortOptions) => Promise<unknown>
  /**
   * Whether this node caught up with its group once (default: it has). A new
   * member never calls itself caught up alone while mates it cannot reach
   * hold files: cut off from them, it would be ACTIVE with nothing.
   */
  hasSynced?: () => boolean
  logger: Logger
}

export interface SyncInit {
  intervalMs: number
  /**
   * The index is being rebuilt (dsm node --rebuild; the store re-indexed the
   * chunks in its volumes, verified): the node turns ACTIVE only after pulling
   * a mate's log, never alone. Cleared once it is ACTIVE.
   */
  rebuilding?: boolean
}

/** Answer a pull: our log for `group` after `since`, bounded by entries and bytes. */
export function answerSync (store: LocalStore, group: string, since: number, limit: number): SyncResponse {
  const head = store.index.head()
  const rows = store.index.changesSince(group, since, Math.min(limit, SYNC_PAGE_ENTRIES))
  const entries: LogEntry[] = []
  let bytes = 0
  for (const r of rows) {
    bytes += (r.manifest?.byteLength ?? 0) + 200
    if (entries.length > 0 && bytes > SYNC_PAGE_BYTES) break
    entries.push(toEntry(r))
  }
  const more = entries.length < rows.length || rows.length === Math.min(limit, SYNC_PAGE_ENTRIES)
  return { entries, head: more ? (entries.at(-1)?.seq ?? since) : head, more }
}

function toEntry (r: FileRow): LogEntry {
  return r.state === 'deleted'
    ? { id: r.id, kind: 'delete', seq: r.seq, ts: r.ts, origin: r.origin }
    : { id: r.id, kind: 'add', seq: r.seq, ts: r.ts, origin: r.origin, ...(r.manifest != null ? { manifest: r.manifest } : {}), createdAt: r.createdAt }
}

export class GroupSync implements Startable {
  private readonly c: SyncComponents
  private readonly init: SyncInit
  /** While rebuilding (until ACTIVE): the node may not call itself caught up without a mate to sync from. */
  rebuilding: boolean
  private timer?: ReturnType<typeof setInterval>
  private controller?: AbortController
  private running?: Promise<void>
  private again = false
  /** Sync rounds completed (a test waits for rounds, not for time). */
  rounds = 0
  private waitSaid = false
  private headUpdate?: ReturnType<typeof setImmediate>
  /** When progress was last published, and the timer of the next one (publishProgress). */
  private lastProgress?: number
  private progressTimer?: ReturnType<typeof setTimeout>
  /** When we last pulled each mate's log (ms). */
  private readonly lastPull = new Map<string, number>()

  constructor (components: SyncComponents, init: SyncInit) {
    this.c = components
    this.init = init
    this.rebuilding = init.rebuilding === true
  }

  async start (): Promise<void> {
    if (this.controller != null) return
    this.controller = new AbortController()
    this.timer = setInterval(() => { this.kick() }, this.init.intervalMs)
    this.c.view.addEventListener('change', this.onMemberChange)
    this.c.store.addEventListener('file:present', this.onLogMoved)
    this.c.store.addEventListener('file:deleted', this.onLogMoved)
    this.c.store.addEventListener('name:changed', this.onLogMoved)
    this.kick()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.c.view.removeEventListener('change', this.onMemberChange)
    this.c.store.removeEventListener('file:present', this.onLogMoved)
    this.c.store.removeEventListener('file:deleted', this.onLogMoved)
    this.c.store.removeEventListener('name:changed', this.onLogMoved)
    clearImmediate(this.headUpdate)
    this.headUpdate = undefined
    clearTimeout(this.progressTimer)
    this.progressTimer = undefined
    this.controller?.abort()
    this.controller = undefined
    await this.running?.catch(() => {})
  }

  /** Run a round now (or right after the one in progress). */
  kick (): void {
    if (this.controller == null) return
    if (this.running != null) { this.again = true; return }
    const signal = this.controller.signal
    this.running = this.round({ signal })
      .catch(err => { if (!signal.aborted) this.c.logger.warn({ err: toError(err).message }, 'sync round failed') })
      .finally(() => {
        this.running = undefined
        if (this.again) { this.again = false; this.kick() }
      })
  }

  /**
   * Our log moved (a write, a delete): the next heartbeat carries the new
   * head, not the one of the last sync round (mates pull sooner, and a new
   * member knows that we hold files). Once per turn, however many files.
   */
  private readonly onLogMoved = (): void => {
    this.headUpdate ??= setImmediate(() => {
      this.headUpdate = undefined
      this.c.status.setSync({ ...this.c.status.sync, head: this.c.store.index.head(), names: this.c.store.names.head() })
    })
  }

  /** A member whose log moved past our cursor is worth a pull now. */
  private readonly onMemberChange = (evt: CustomEvent<MemberRecord>): void => {
    const m = evt.detail
    if (!m.self && m.group != null && m.group === this.c.status.group &&
      (m.sync.head > this.c.store.index.cursor(m.peerId) || (m.sync.names ?? 0) > this.c.store.names.cursor(m.peerId))) this.kick()
  }

  private async round (options: AbortOptions): Promise<void> {
    await this.c.waitForContact(options)
    const group = this.c.status.group
    if (group == null) return
    // No mate in view (a restarted member, a configured joiner, before gossip): ask the DHT who they are, rather
    // than sync with nobody — or, alone, declare ourselves caught up.
    await this.c.findGroup?.(group, { signal: anySignal(options.signal, AbortSignal.timeout(SYNC_FIND_GROUP_TIMEOUT_MS)) })
    const peers = this.c.view.groupMembers(group).filter(m => !m.self && m.state !== 'OFFLINE' && m.state !== 'JOINING')
    const pulled = new Set<string>()
    const now = Date.now()
    for (const peer of peers) {
      if (!this.due(peer, now)) continue
      try {
        await this.pull(peer.peerId, group, options)
        await pullNames(this.c, peer.peerId, group, options)
        pulled.add(peer.peerId)
        this.lastPull.set(peer.peerId, now)
      } catch (err) {
        options.signal?.throwIfAborted()
        this.c.logger.debug({ err: toError(err).message, peer: peer.peerId.slice(-8) }, 'pull failed; other members cover it')
      }
    }
    await this.fetchPending(group, options)
    this.publishProgress()
    const active = peers.filter(p => p.state === 'ACTIVE')
    // A file no mate can heal stays pending, but must not hold a recruit in SYNCING for ever (it is named instead).
    // Counted only while it matters (a member not yet ACTIVE): the count scans the index.
    const caughtUp = this.c.status.state === 'SYNCING' && this.pendingCount() - this.damaged.size <= 0 && (active.length === 0 ? this.mayBeAlone(group) : active.some(p => pulled.has(p.peerId)))
    this.rounds++
    if (caughtUp && this.c.status.group === group) {
      this.c.status.setState('ACTIVE')
      this.c.logger.info({ group }, 'caught up with the group: ACTIVE')
    }
  }

  /**
   * With no ACTIVE mate in reach, is a member caught up by itself? A member
   * rebuilding its index never is (that needs a mate). A member that caught up
   * with its group before is (a group restarting, or the last one standing). A
   * new member is only while no mate it knows of, in any state, holds files: a
   * group starting together begins empty, but mates that are out of reach
   * (OFFLINE, partitioned) may hold everything.
   */
  private mayBeAlone (group: string): boolean {
    if (this.rebuilding) return false
    if (this.c.hasSynced?.() ?? true) return true
    const holders = this.c.view.groupMembers(group).filter(m => !m.self && (m.sync.head > 0 || (m.sync.files ?? 0) > 0 || (m.sync.names ?? 0) > 0))
    if (holders.length > 0 && !this.waitSaid) {
      this.waitSaid = true
      this.c.logger.warn({ group, mates: holders.map(m => `${m.peerId.slice(-8)} ${m.state}`) }, 'a new member waits for a mate that holds the group\'s files (none is reachable and ACTIVE): it stays SYNCING rather than be ACTIVE with nothing')
    }
    return holders.length === 0
  }

  /**
   * A pull is due when we are not ACTIVE yet, when the mate's heartbeat says
   * its log moved past our cursor, and in any case every
   * SYNC_FULL_PULL_INTERVAL_MS (heartbeats can be slow or lost): most rounds
   * of a quiet group then cost no request at all.
   */
  private due (peer: MemberRecord, now: number): boolean {
    return this.c.status.state !== 'ACTIVE' ||
      peer.sync.head > this.c.store.index.cursor(peer.peerId) ||
      (peer.sync.names ?? 0) > this.c.store.names.cursor(peer.peerId) ||
      now - (this.lastPull.get(peer.peerId) ?? 0) >= SYNC_FULL_PULL_INTERVAL_MS
  }

  /** Pull one member's log from our cursor to its head. */
  private async pull (peer: string, group: string, options: AbortOptions): Promise<void> {
    for (;;) {
      const since = this.c.store.index.cursor(peer)
      const page = await request(this.c.dialer, peerIdFromString(peer), PROTOCOLS.sync, SyncRequestSchema,
        { group, since, limit: SYNC_PAGE_ENTRIES }, SyncResponseSchema, { ...options, maxResponseBytes: frameBytesFor(SYNC_PAGE_BYTES * 2) })
      // Runs of entries already here (they came by replication) are skipped in one read transaction; the
      // check and the skip happen in one turn, as when each entry was checked on its own.
      const entries = page.entries
      for (let i = this.c.store.firstUnsettled(entries); i < entries.length; i = this.c.store.firstUnsettled(entries, i + 1)) {
        await this.applyEntry(group, entries[i] as LogEntry)
      }
      this.c.store.index.setCursor(peer, Math.max(page.head, page.entries.at(-1)?.seq ?? since))
      this.publishProgress()
      if (!page.more) return
    }
  }

  /** Apply an entry that is not settled here (checked by the caller, in this turn). */
  private async applyEntry (group: string, e: LogEntry): Promise<void> {
    if (e.kind === 'delete') {
      // Not forced: should it be lost, the next pull brings it again.
      await this.c.store.applyDelete({ kind: 'delete', id: e.id, group, ts: e.ts, origin: e.origin }, { durable: false })
      return
    }
    if (e.manifest == null) return
    const m = await decodeManifest(e.manifest)
    if (m.id.toString() !== e.id) throw new Error(`log entry ${e.id} carries the manifest of ${m.id.toString()}`)
    const hasAll = this.hasAllChunks(m)
    await this.c.store.commitAdd({
      kind: 'add',
      id: e.id,
      group,
      ts: e.ts,
      origin: e.origin,
      manifest: m.bytes,
      size: m.size,
      name: m.name,
      mime: m.mime,
      createdAt: e.createdAt ?? 0,
      chunks: m.chunks
    }, [], hasAll, { durable: false })
  }

  private hasAllChunks (m: Manifest): boolean {
    return m.chunks.every(d => this.c.store.chunks.has(d))
  }

  /** Fetch the chunks of pending files from members that hold them. */
  private async fetchPending (group: string, options: AbortOptions): Promise<void> {
    const pending = this.c.store.index.withState('pending').filter(r => r.group === group)
    const ids = new Set(pending.map(r => r.id))
    // Healed, deleted, or no longer ours: no longer damaged.
    for (const id of this.damaged.keys()) if (!ids.has(id)) this.damaged.delete(id)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < pending.length) {
        const row = pending[next++] as FileRow
        try {
          await this.fetchFile(row, options)
          this.damaged.delete(row.id)
        } catch (err) {
          options.signal?.throwIfAborted()
          if (this.noGoodCopy(err, row.group)) this.markDamaged(row, toError(err))
          else this.c.logger.debug({ err: toError(err).message, id: row.id }, 'fetch failed; retried next round')
        }
      }
    }
    await Promise.all(Array.from({ length: SYNC_FETCH_CONCURRENCY }, worker))
  }

  /** Files no member of the group could give a good copy of, when last tried (ID → since, local ms). */
  readonly damaged = new Map<string, number>()

  /**
   * Every other member of the group was asked and each lacks a chunk (or
   * holds a copy that failed its check, which it then dropped): no good copy
   * is left to heal from. A member that is OFFLINE, or that did not answer,
   * may still hold one: that is "unavailable", not damaged.
   */
  private noGoodCopy (err: unknown, group: string): boolean {
    const failures = ((err as Error).cause as AggregateError | undefined)?.errors
    if (!Array.isArray(failures)) return false
    const mates = this.c.view.groupMembers(group).filter(m => !m.self && !m.spare)
    if (mates.some(m => m.state !== 'ACTIVE' && m.state !== 'SYNCING')) return false
    const lacks = (e: unknown): boolean => ['ERR_CHUNK_NOT_STORED', 'ERR_FILE_NOT_FOUND', 'ERR_CORRUPT_CHUNK'].includes((e as { code?: string }).code ?? '')
    return failures.length >= mates.length && failures.every(lacks)
  }

  private markDamaged (row: FileRow, err: Error): void {
    if (this.damaged.has(row.id)) return
    this.damaged.set(row.id, Date.now())
    this.c.logger.error({ id: row.id, group: row.group, err: err.message },
      'a file cannot be healed: no member of its group holds a good copy of one of its chunks; it is not served until one does (restore it from a backup, or upload it again)')
  }

  private async fetchFile (row: FileRow, options: AbortOptions): Promise<void> {
    if (row.manifest == null) return
    const m = await decodeManifest(row.manifest)
    const missing: number[] = []
    for (let i = 0; i < m.chunks.length; i++) if (!this.c.store.chunks.has(m.chunks[i] as Uint8Array)) missing.push(i)
    // Members first by state (ACTIVE ones hold everything), least loaded first.
    const sources = this.c.view.groupMembers(row.group)
      .filter(p => !p.self && (p.state === 'ACTIVE' || p.state === 'SYNCING'))
      .sort((a, b) => Number(b.state === 'ACTIVE') - Number(a.state === 'ACTIVE') || a.load - b.load)
      .map(p => remoteSource(this.c.dialer, p.peerId))
    const writer = new ChunkWriter(this.c.store)
    try {
      for (const run of runs(missing)) {
        for await (const chunk of readChunks(m, run.first, run.last, sources, options)) {
          await writer.put(m.chunks[chunk.index] as Uint8Array, chunk.data, options)
          this.c.status.setSync({ ...this.c.status.sync, bytesToGo: Math.max(0, this.c.status.sync.bytesToGo - chunk.data.byteLength) })
        }
      }
      await this.c.store.completeFile(row.id, await writer.flush(options))
    } finally {
      await writer.flush().catch(() => {})
      writer.release()
      // Deleted while we fetched: what we wrote is garbage.
      if (this.c.store.index.get(row.id)?.state === 'deleted') await this.c.store.collect(writer.digests)
    }
  }

  private pendingCount (): number {
    return this.c.store.index.stats().pending.files
  }

  /**
   * Publish progress. A member catching up publishes every change (its
   * progress is what users watch), as does one whose count of damaged files
   * changed; an ACTIVE one at most every SYNC_PROGRESS_INTERVAL_MS (the last
   * change then goes out when the interval is over).
   */
  private publishProgress (): void {
    const wait = (this.lastProgress ?? -Infinity) + SYNC_PROGRESS_INTERVAL_MS - Date.now()
    if (this.c.status.state === 'ACTIVE' && this.damaged.size === this.c.status.sync.damaged && wait > 0) {
      if (this.progressTimer == null) {
        this.progressTimer = setTimeout(() => { this.progressTimer = undefined; if (this.controller != null) this.publishProgress() }, wait)
        this.progressTimer.unref()
      }
      return
    }
    clearTimeout(this.progressTimer)
    this.progressTimer = undefined
    this.lastProgress = Date.now()
    const { pending, present } = this.c.store.index.stats()
    this.c.status.setSync({ head: this.c.store.index.head(), filesToGo: pending.files, bytesToGo: pending.bytes, files: present.files, damaged: this.damaged.size, names: this.c.store.names.head() })
  }
}

/** [1,2,3,7,8] → [{1,3},{7,8}]: consecutive chunk indexes as ranges. */
function runs (indexes: number[]): Array<{ first: number, last: number }> {
  const out: Array<{ first: number, last: number }> = []
  for (const i of indexes) {
    const cur = out.at(-1)
    if (cur != null && cur.last === i - 1) cur.last = i
    else out.push({ first: i, last: i })
  }
  return out
}

/** `/dsm/sync`: a mate pulls our group log after its cursor. */
export function syncHandler (c: { store: LocalStore, status: Pick<LocalStatus, 'group'> }): ProtocolHandler {
  return rpcHandler(PROTOCOLS.sync, SyncRequestSchema, SyncResponseSchema, async (req) => {
    if (c.status.group !== req.group) throw new NotAMemberError(`not a member of ${req.group}`)
    return answerSync(c.store, req.group, req.since, req.limit)
  }, { trustedAnswers: true })
}
