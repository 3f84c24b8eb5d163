/**
 * A node's local replica store: chunks (./chunk-store.ts) + file index +
 * prepared uploads + clock, with the rules that keep them consistent — keep
 * the disk reserve free, index a chunk only once its bytes are durable, make
 * every acknowledged change durable with one shared forced write (group
 * commit), never collect a chunk that a live file, a prepared upload or a
 * transfer in flight still needs, and check the volumes against the index at
 * start (in time proportional to the number of volumes, not of chunks).
 */
import { readFile, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { TypedEventEmitter } from 'main-event'
import { toString as toHex, fromString as fromHex } from 'uint8arrays'
import { CorruptChunkError, UnavailableError } from '../errors.ts'
import { chunkDigest, hashChunk } from '../content/chunk-hash.ts'
import { HybridClock } from '../content/clock.ts'
import { decodeManifest } from '../content/manifest.ts'
import { ChunkStore, INLINE_CHUNK_BYTES } from './chunk-store.ts'
import { digestKey } from './digest-key.ts'
import { FileIndex, isNewer } from './file-index.ts'
import { NameIndex } from './name-index.ts'
import type { NameOp } from './name-index.ts'
import { Lingering } from './lingering.ts'
import { BufferPool } from '../util/buffer-pool.ts'
import { ChunkPins } from './chunk-pins.ts'
import { PreparedLog } from './prepared.ts'
import { RECLAIM_DELAY_MS, ReclaimQueue } from './reclaim-queue.ts'
import { WriteBatch } from './write-batch.ts'
import { SpaceAccount } from './space.ts'
import type { Capacity, SpaceReservation } from './space.ts'
import type { ChunkBytes, ChunkLocation, StagedChunk } from './chunk-store.ts'
import type { Db } from './db.ts'
import type { AddOp, ApplyEffect, DeleteOp } from './file-index.ts'
import type { PreparedUpload, UploadKey } from './prepared.ts'
import type { VolumeSetInit } from './volumes.ts'
import type { Manifest } from '../content/manifest.ts'
import type { SizeSpec } from '../util/size.ts'

export { CAPACITY_REFRESH_MS } from './space.ts'
export type { Capacity, SpaceReservation } from './space.ts'

export interface LocalStoreEvents {
  /** A file became present here (committed, synced or repaired). */
  'file:present': CustomEvent<{ id: string }>
  'file:deleted': CustomEvent<{ id: string }>
  /** A bucket or key changed here (written, pushed or synced). */
  'name:changed': CustomEvent<NameOp>
  /** A chunk on disk failed verification. */
  'chunk:corrupt': CustomEvent<{ digest: Uint8Array, files: string[] }>
}

export interface LocalStoreInit {
  db: Db
  dataDir: string
  reserve: SizeSpec
  capacity: () => Promise<Capacity>
  /** Volume size and file system (tests use small volumes, and a disk that can crash). */
  volumes?: VolumeSetInit
  /** How long a deleted file's chunks stay readable by reads under way (default DELETED_READ_GRACE_MS; 0: not at all). */
  deletedReadGraceMs?: number
  /** How long a file freed by its S3 value waits before it is deleted (default RECLAIM_DELAY_MS). */
  reclaimDelayMs?: number
  /** The file a key record's value owns, if any (the replica layer reads its values; the store keeps them opaque). */
  ownedFile?: (value: Uint8Array | undefined) => string | undefined
}

export interface ConsistencyReport {
  /** Chunks no live file refers to (a rebuild's leftovers), dropped from the index. */
  orphanChunksRemoved: number
  /** Present files with a chunk lost on disk (a torn or truncated volume), turned pending (to be fetched again). */
  filesMissingChunks: string[]
  /** Chunks found in volumes and indexed again (a rebuild, or an upgrade from chunk files). */
  chunksIndexed: number
}

const keyOf = (k: UploadKey): string => `${k.id}/${k.ts}/${k.origin}`

/** Before volumes, chunks were files `chunks/ab/cd/<hex>`: imported into volumes at the first start. */
const LEGACY_CHUNKS_DIR = 'chunks'

export class LocalStore extends TypedEventEmitter<LocalStoreEvents> {
  readonly index: FileIndex
  /** The S3 namespace: buckets and keys, their own log (./name-index.ts). */
  readonly names: NameIndex
  /** Name operations of one event-loop turn share a transaction (./write-batch.ts). */
  private readonly writes: WriteBatch
  /** Uploads with a key record, prepared before the last start and undecided since (see namesSettled). */
  private readonly unsettledNames = new Set<string>()
  readonly chunks: ChunkStore
  readonly prepared: PreparedLog
  /** Files freed by the S3 values that owned them, to be deleted (./reclaim-queue.ts). */
  readonly reclaims: ReclaimQueue
  /** Deleted files whose chunks reads under way may still fetch (./lingering.ts). */
  readonly lingering: Lingering
  readonly clock = new HybridClock()
  private readonly init: LocalStoreInit
  /** Which chunks may go (./chunk-pins.ts). */
  private readonly pins: ChunkPins
  /**
   * The uploads prepared by this process and not decided yet, with their manifests (their chunks are
   * pinned) and `corruptChunks` as it was when each was prepared.
   */
  private readonly manifests = new Map<string, { manifest: Manifest, upload: PreparedUpload, corrupt: number }>()
  /** Prepared uploads found at start whose chunks were pinned then. */
  private readonly restoredPins = new Set<string>()
  /** Uploads this node coordinates and has not decided yet (see `deciding`). */
  private readonly undecided = new Set<string>()
  private readonly space: SpaceAccount

  constructor (init: LocalStoreInit) {
    super()
    this.init = init
    this.index = new FileIndex(init.db)
    this.names = new NameIndex(init.db)
    this.writes = new WriteBatch(init.db)
    this.chunks = new ChunkStore(init.db, init.dataDir, init.volumes)
    this.prepared = new PreparedLog(init.db)
    this.reclaims = new ReclaimQueue(init.db)
    this.space = new SpaceAccount(init.reserve, init.capacity)
    this.pins = new ChunkPins({ db: init.db, index: this.index, chunks: this.chunks })
    this.lingering = new Lingering({
      db: init.db,
      pin: (d) => { this.pins.pin(d) },
      release: (ds) => { this.pins.release(ds) },
      collect: (ds) => { this.pins.collect(ds) }
    }, init.deletedReadGraceMs)
  }

  /**
   * `rebuilding`: the index was lost (dsm node --rebuild): the chunks in the
   * volumes are indexed again from their needles, each one verified by its
   * hash, and kept even though no file refers to them yet (sync is about to).
   */
  async start (options: { rebuilding?: boolean } = {}): Promise<ConsistencyReport> {
    await rm(join(this.init.dataDir, 'tmp'), { recursive: true, force: true })
    // Before the volumes open for appends: opening cuts the newest one back to what the index knows.
    let chunksIndexed = options.rebuilding === true ? await this.reindexVolumes() : 0
    await this.chunks.start()
    chunksIndexed += await this.importLegacyChunks()
    const report = { ...await this.checkConsistency(), chunksIndexed }
    // Past every stamp the index holds; from now on every row written is observed as it is applied
    // (commitAdd, commitPrepared, applyDelete). So a new operation's stamp is newer than its file's row
    // without reading that row (replica/ingest.ts).
    this.clock.observe(this.index.newestTs())
    // Prepared uploads keep their chunks until they are decided (pins are not kept across restarts).
    for (const u of this.prepared.all()) {
      this.clock.observe(u.ts)
      for (const d of (await decodeManifest(u.manifest)).chunks) this.pin(d)
      this.restoredPins.add(keyOf(u))
      if (u.name != null) this.unsettledNames.add(keyOf(u))
    }
    // Graces a crash cut short: no read from before the crash is left.
    this.lingering.recover()
    return report
  }

  async stop (): Promise<void> {
    this.lingering.clear()
    await this.chunks.stop()
  }

  /** Bytes to keep free: the configured reserve of the disk holding the data dir. */
  async reserveBytes (): Promise<number> {
    return this.space.reserveBytes()
  }

  /**
   * Hold `bytes` of space for a transfer that announced its size (an upload
   * with a Content-Length), or throw InsufficientStorageError (507) if they do
   * not fit above the reserve. Its chunks then draw on the reservation, so
   * each byte is counted once; `release` gives back what was not used.
   */
  async reserveSpace (bytes: number): Promise<SpaceReservation> {
    return this.space.reserve(bytes)
  }

  /** Count `bytes` about to be written, drawing on `reservation` first (see ./space.ts). */
  async ensureSpace (bytes: number, reservation?: SpaceReservation): Promise<void> {
    await this.space.ensure(bytes, reservation)
  }

  /**
   * Write a chunk whose digest the caller computed (and pinned until its file
   * commits), drawing on `reservation` if given: into a volume's page cache,
   * or held for an inline row. Durable only once committed (commitAdd, prepare).
   */
  async putChunk (digest: Uint8Array, data: Uint8Array, reservation?: SpaceReservation, leaves?: Uint8Array): Promise<StagedChunk> {
    await this.ensureSpace(data.byteLength, reservation)
    return this.chunks.stage(digest, data, leaves)
  }

  /**
   * `putChunk`, unless this store holds the chunk already ([] then). A small chunk (inline in its row) is
   * staged without looking: its insert keeps a row that is there (INSERT OR IGNORE), and the look-up, a read
   * transaction of its own outside the write batch, cost ~10 µs an upload on each node (issue 23's profiles).
   */
  async stageChunk (digest: Uint8Array, data: Uint8Array, reservation?: SpaceReservation, leaves?: Uint8Array): Promise<StagedChunk[]> {
    if (data.byteLength > INLINE_CHUNK_BYTES && this.chunks.has(digest)) return []
    return [await this.putChunk(digest, data, reservation, leaves)]
  }

  /** Keep chunks from being collected while an upload or fetch still needs them. */
  pin (digest: Uint8Array): void {
    this.pins.pin(digest)
  }

  /**
   * Keep chunks a read is about to serve from being collected, whatever is
   * deleted meanwhile, until the returned function is called (once; later
   * calls do nothing). Chunks that became unused meanwhile go then.
   */
  holdChunks (digests: Uint8Array[]): () => void {
    return this.pins.hold(digests)
  }

  unpin (digests: Iterable<Uint8Array>): void {
    this.pins.unpin(digests)
  }

  /**
   * Would applying an operation with this stamp change nothing here? True
   * when the index holds it or a newer one and no prepared upload of the file
   * waits to be settled. A sync pull skips such log entries — under a stream
   * of uploads, nearly all of them: each came to us by replication already.
   */
  isSettled (op: { id: string, ts: number, origin: string }): boolean {
    const row = this.index.stamp(op.id)
    return row != null && !isNewer(op, row) && !this.prepared.hasFile(op.id)
  }

  /** The index of the first of `ops` from `from` on that is not settled (`ops.length` if none), in one read transaction. */
  firstUnsettled (ops: ReadonlyArray<{ id: string, ts: number, origin: string }>, from = 0): number {
    return this.init.db.read(() => {
      let i = from
      while (i < ops.length && this.isSettled(ops[i] as { id: string, ts: number, origin: string })) i++
      return i
    })
  }

  /**
   * Commit an add: the staged chunks' bytes durable first, then their rows and
   * the file's in one transaction, durable before this resolves (one shared
   * WAL sync). `durable: false` for what the group could give us again (a
   * synced log entry): it becomes durable with the next group commit.
   */
  async commitAdd (op: AddOp, staged: StagedChunk[] = [], hasAllChunks = true, options: { durable?: boolean } = {}): Promise<ApplyEffect> {
    await this.chunks.sync(staged)
    this.clock.observe(op.ts)
    let whole = false
    const effect = this.init.db.transaction(() => {
      this.chunks.insert(staged)
      // A chunk this transfer skipped as already stored may have been dropped meanwhile (found corrupt): then the file waits for it.
      whole = hasAllChunks && this.missingChunks(op.chunks) === 0
      return this.index.apply(op, whole)
    })
    if (options.durable !== false) await this.init.db.durable()
    this.announce(op.id, effect, whole, hasAllChunks)
    await this.settlePrepared(op.id)
    return effect
  }

  /**
   * Prepared uploads of a file that the index has moved past (the same stamp
   * committed here, e.g. through sync, or a newer operation on the file):
   * nothing is left to decide, so their records go now, not at the resolver's
   * next look.
   */
  private async settlePrepared (id: string): Promise<void> {
    const row = this.index.get(id)
    if (row == null) return
    for (const u of this.prepared.forFile(id)) {
      if (isNewer(u, row)) continue
      if (row.ts === u.ts && row.origin === u.origin && row.state !== 'deleted') await this.commitPrepared(u)
      else await this.abortPrepared(u)
    }
  }

  /**
   * Prepare an upload: its chunks and its prepared record durable here (this
   * member's one forced write), the file still invisible. Decided later by
   * commitPrepared or abortPrepared (replica/commit.ts).
   */
  async prepare (upload: PreparedUpload, staged: StagedChunk[], manifest: Manifest): Promise<void> {
    await this.chunks.sync(staged)
    this.clock.observe(upload.ts)
    let corrupt = 0
    // Prepares that arrive together (concurrent small uploads) share one transaction.
    await this.writes.run(() => {
      this.chunks.insert(staged)
      // Checked in the transaction that records the promise: a prepared copy holds every chunk, or there is none.
      // (The chunks just inserted are there: only those this transfer skipped as already stored are looked up.)
      const inserted = new Set(staged.map(c => digestKey(c.digest)))
      const missing = this.missingChunks(manifest.chunks.filter(d => !inserted.has(digestKey(d))))
      if (missing > 0) throw new UnavailableError(`${missing} chunk(s) of ${upload.id} are no longer stored here (dropped as damaged while the upload ran); retry`)
      this.prepared.insert(upload)
      corrupt = this.corruptChunks
    }, () => {
      // Its chunks stay until the upload is decided, whatever the transfer that wrote them does.
      for (const d of manifest.chunks) this.pin(d)
      this.manifests.set(keyOf(upload), { manifest, upload, corrupt })
    })
    await this.init.db.durable()
  }

  /**
   * The upload committed: the prepared record becomes the file. Not forced:
   * should this write be lost, the prepared record is still durable and is
   * decided again (the decision is recoverable from the group).
   */
  async commitPrepared (key: UploadKey): Promise<ApplyEffect | undefined> {
    // Prepared by this process: its record as written (not read back, ~13 µs an upload). Whether the record is
    // still there is the delete's to say, in the commit's transaction.
    const mine = this.manifests.get(keyOf(key))
    const u = mine?.upload ?? this.prepared.get(key)
    if (u == null) return undefined
    const manifest = await this.manifestOf(u)
    const op: AddOp = { kind: 'add', id: u.id, group: u.group, ts: u.ts, origin: u.origin, manifest: u.manifest, size: manifest.size, name: manifest.name, mime: manifest.mime, createdAt: u.createdAt, chunks: manifest.chunks }
    this.clock.observe(u.ts)
    const named: NameOp[] = []
    // In the write batch: a turn's decisions share one transaction with the prepares of the uploads behind them
    // (one BEGIN/COMMIT, and the pages both touch written once). A chunk dropped as damaged since the prepare
    // leaves the file pending (sync fetches it), never present without it.
    const applied = await this.writes.run(() => {
      if (!this.prepared.delete(key)) return undefined
      // Prepared here with every chunk, pinned since: only a chunk dropped as damaged can be gone, and none
      // was since (the look-ups cost ~6 µs an upload on each node).
      const whole = (mine != null && mine.corrupt === this.corruptChunks) || this.missingChunks(op.chunks) === 0
      const effect = this.index.apply(op, whole)
      if (u.name != null) named.push(...this.applyCarriedName(u))
      return { effect, whole }
    }, (applied) => {
      for (const n of named) this.safeDispatchEvent('name:changed', { detail: n })
      this.settled(key, manifest)
      if (applied != null) this.announce(u.id, applied.effect, applied.whole, true)
      // A newer operation (a delete) won: the chunks the prepared copy held are garbage unless another file uses them.
      if (applied?.effect === 'ignored') this.pins.collect(manifest.chunks)
    })
    return applied?.effect
  }

  /**
   * The key record an upload carries, applied with its commit (in its
   * transaction); the coordinator's copy queues the file the replaced value
   * owned. Returns the operation if it was applied.
   */
  private applyCarriedName (u: PreparedUpload): NameOp[] {
    const n = u.name
    if (n == null) return []
    const op: NameOp = { bucket: n.bucket, key: n.key, group: u.group, live: n.live, ts: n.ts, origin: n.origin, ...(n.value != null ? { value: n.value } : {}) }
    const current = this.names.get(op.bucket, op.key)
    const freed = n.reclaims && current?.live === true ? this.init.ownedFile?.(current.value) : undefined
    return this.applyNameOp(op, freed !== this.init.ownedFile?.(op.value) ? freed : undefined) === 'applied' ? [op] : []
  }

  /**
   * Apply a name operation inside the caller's transaction; if it applied,
   * queue the file it freed (`reclaim`) in the same transaction.
   */
  private applyNameOp (op: NameOp, reclaim: string | undefined): 'applied' | 'ignored' {
    this.clock.observe(op.ts)
    const effect = this.names.apply(op)
    if (effect === 'applied' && reclaim != null) this.reclaims.add(reclaim, Date.now(), Date.now() + (this.init.reclaimDelayMs ?? RECLAIM_DELAY_MS))
    return effect
  }

  /** The upload will never commit: forget the prepared record; its chunks are collected unless another file uses them. */
  async abortPrepared (key: UploadKey): Promise<boolean> {
    const u = this.prepared.get(key)
    if (u == null) return false
    const manifest = await this.manifestOf(u)
    const dropped = this.init.db.transaction(() => this.prepared.delete(key))
    this.settled(key, manifest)
    await this.collect(manifest.chunks)
    return dropped
  }

  /**
   * This node coordinates the upload and has not decided it: from before its
   * prepare frames leave until the decision. Asked about it meanwhile, it
   * must not say "unknown" (its own prepare may still be on its way), or a
   * member would drop a copy the upload is about to count.
   */
  beginDeciding (key: UploadKey): () => void {
    const k = keyOf(key)
    this.undecided.add(k)
    return () => { this.undecided.delete(k) }
  }

  deciding (key: UploadKey): boolean {
    return this.undecided.has(keyOf(key))
  }

  /** Prepared by this process (its upload may still be deciding it), not found at start. */
  preparedByThisProcess (key: UploadKey): boolean {
    return this.manifests.has(keyOf(key))
  }

  private async manifestOf (u: PreparedUpload): Promise<Manifest> {
    return this.manifests.get(keyOf(u))?.manifest ?? decodeManifest(u.manifest)
  }

  /**
   * Whether this node's key records can be read as they are: not while an
   * upload prepared before the last start carries a record and is undecided
   * (this copy may have been one that applied it, and acknowledged it, then
   * lost that unforced commit in a crash; see replica/ingest.ts).
   */
  namesSettled (): boolean {
    return this.unsettledNames.size === 0
  }

  /** A prepared upload was decided: its chunks are the file's now (or garbage). */
  private settled (key: UploadKey, manifest: Manifest): void {
    this.unsettledNames.delete(keyOf(key))
    if (this.manifests.delete(keyOf(key)) || this.restoredPins.delete(keyOf(key))) this.unpin(manifest.chunks)
  }

  /**
   * Tell listeners of a file now present. `whole`: the add was applied with
   * every chunk here (an 'added' file is then present: no read-back).
   */
  private announce (id: string, effect: ApplyEffect, whole: boolean, hasAllChunks: boolean): void {
    if (effect === 'added') {
      if (whole) this.safeDispatchEvent('file:present', { detail: { id } })
      return
    }
    // Sync may have learned of the file first (pending); the chunks are all here now.
    if (hasAllChunks && this.index.stamp(id)?.state === 'pending') this.markPresent(id)
  }

  /** Apply a delete; chunks no other live file uses are removed. Durable before it resolves unless `durable: false`. */
  async applyDelete (op: DeleteOp, options: { durable?: boolean } = {}): Promise<ApplyEffect> {
    const digests = this.index.chunksOf(op.id)
    const row = this.index.get(op.id)
    this.clock.observe(op.ts)
    // In the delete's transaction: reads under way keep the chunks for the grace (and a crash cannot lose that).
    const effect = this.init.db.transaction(() => {
      const applied = this.index.apply(op, false)
      if (applied === 'deleted' && row != null && row.state !== 'deleted') this.lingering.hold(row, digests)
      return applied
    })
    if (effect === 'deleted') await this.collect(digests)
    if (options.durable !== false) await this.init.db.durable()
    if (effect === 'deleted') this.safeDispatchEvent('file:deleted', { detail: { id: op.id } })
    await this.settlePrepared(op.id)
    return effect
  }

  /** Drop every file of groups other than `group` (we moved; they live on in their group). */
  /**
   * Apply a name operation (S3 namespace), durable before this resolves
   * unless `durable: false` (a synced log entry the group could give again).
   */
  async applyName (op: NameOp, options: { durable?: boolean, reclaim?: string } = {}): Promise<'applied' | 'ignored'> {
    const { reclaim } = options
    return (await this.writeName(() => ({ op, ...(reclaim != null ? { reclaim } : {}) }), options)).effect
  }

  /**
   * Decide a name operation and apply it in one step: `decide` runs inside
   * the (batched) transaction that applies what it returns, so the checks
   * and reads it makes still hold when the operation is written. It may
   * throw to refuse; nothing is written then. The file the operation frees
   * (`reclaim`) is queued in the same transaction: never one without the
   * other.
   */
  async writeName<T extends { op: NameOp, reclaim?: string }> (decide: () => T, options: { durable?: boolean } = {}): Promise<T & { effect: 'applied' | 'ignored' }> {
    const done = await this.writes.run(() => {
      const decided = decide()
      return { ...decided, effect: this.applyNameOp(decided.op, decided.reclaim) }
    })
    if (done.effect === 'applied') this.safeDispatchEvent('name:changed', { detail: done.op })
    if (options.durable !== false) await this.init.db.durable()
    return done
  }

  async dropOtherGroups (group: string): Promise<number> {
    this.names.forgetOutside(group)
    const ids = this.index.filesOutside(group)
    for (const id of ids) {
      const digests = this.index.chunksOf(id)
      this.index.forget(id)
      await this.collect(digests)
    }
    return ids.length
  }

  /** A pending file's missing chunks were fetched: index them and turn it present (not forced: the group has it). */
  async completeFile (id: string, staged: StagedChunk[]): Promise<void> {
    await this.chunks.sync(staged)
    const turned = this.init.db.transaction(() => {
      this.chunks.insert(staged)
      const row = this.index.get(id)
      if (row?.state !== 'pending' || this.missingChunks(this.index.chunksOf(id)) > 0) return false
      this.index.setState(id, 'present')
      return true
    })
    if (turned) this.safeDispatchEvent('file:present', { detail: { id } })
  }

  /** A pending file got all its chunks. */
  markPresent (id: string): void {
    if (this.missingChunks(this.index.chunksOf(id)) > 0) return
    this.index.setState(id, 'present')
    this.safeDispatchEvent('file:present', { detail: { id } })
  }

  /** How many of these chunks the index lacks. */
  missingChunks (digests: Iterable<Uint8Array>): number {
    let missing = 0
    for (const d of digests) if (!this.chunks.has(d)) missing++
    return missing
  }

  /** Chunks found corrupt on this disk since start. */
  corruptChunks = 0

  /**
   * Buffers for reads whose consumer gives them back (`pooled` reads; see
   * ../util/buffer-pool.ts for the contract): a holder's HTTP GET.
   */
  readonly readBuffers = new BufferPool()

  /**
   * Read a chunk (or the leaves covering [from, to) of it), checked against
   * its stored CRCs. A corrupt chunk is dropped from the index (so a good copy
   * can take its place), reported (event) and the error rethrown. `pooled`:
   * into a buffer of `readBuffers`, which the caller gives back once done.
   */
  async readChunk (digest: Uint8Array, range?: { from: number, to: number }, options: { pooled?: boolean } = {}): Promise<ChunkBytes> {
    try {
      return await this.chunks.read(digest, range, options.pooled === true ? this.readBuffers : undefined)
    } catch (err) {
      if (err instanceof CorruptChunkError && err.at != null) this.chunkCorrupt(digest, err.at)
      throw err
    }
  }

  /**
   * The copy of a chunk at `at` failed its check (a read, the scrub,
   * compaction): drop it so a good copy can take its place, and say so. A
   * verdict reached after an await may be stale — the row may point at a
   * new copy by now (compaction moved it, or it was stored again) — so only
   * the row of that copy is dropped.
   */
  chunkCorrupt (digest: Uint8Array, at: ChunkLocation): void {
    // One transaction: a file is never present without its chunk, whoever listens (or crashes) next.
    const files = this.init.db.transaction(() => {
      if (!this.chunks.removeAt(digest, at)) return undefined
      const ids = this.index.filesWithChunk(digest)
      for (const id of ids) if (this.index.get(id)?.state === 'present') this.index.setState(id, 'pending')
      return ids
    })
    if (files == null) return
    this.corruptChunks++
    this.safeDispatchEvent('chunk:corrupt', { detail: { digest, files } })
  }

  /** Drop chunks that no live file references and nothing pins (their volume bytes become garbage). */
  async collect (digests: Iterable<Uint8Array>): Promise<void> {
    this.pins.collect(digests)
  }

  /** Drop every indexed chunk that no live file refers to and nothing pins; returns how many. */
  async collectOrphans (): Promise<number> {
    return this.pins.collectOrphans()
  }

  /**
   * The start-up check, per volume, not per chunk: every needle the index
   * refers to must lie within its volume file. A volume cut short (a torn
   * tail, a truncated file) loses the chunks beyond its end: they leave the
   * index, and the present files using them turn pending, so sync fetches
   * them again from the group. (Uncommitted appends beyond the last indexed
   * needle are garbage: the next append writes over them.)
   */
  async checkConsistency (): Promise<ConsistencyReport> {
    const lost: Uint8Array[] = []
    const volumes = this.chunks.indexedVolumes()
    const sizes = await Promise.all(volumes.map(async v => this.chunks.volumes.size(v)))
    volumes.forEach((v, i) => lost.push(...this.chunks.beyond(v, sizes[i] as number)))
    const filesMissingChunks = new Set<string>()
    for (const d of lost) for (const id of this.index.filesWithChunk(d)) filesMissingChunks.add(id)
    if (lost.length > 0) {
      this.init.db.transaction(() => {
        this.chunks.remove(lost)
        for (const id of filesMissingChunks) if (this.index.get(id)?.state === 'present') this.index.setState(id, 'pending')
      })
      await this.init.db.durable()
    }
    return { orphanChunksRemoved: 0, filesMissingChunks: [...filesMissingChunks], chunksIndexed: 0 }
  }

  /** Index every needle of every volume whose bytes hash to its digest (a rebuild lost the index). */
  private async reindexVolumes (): Promise<number> {
    let indexed = 0
    for (const volume of await this.chunks.volumes.ids()) {
      for await (const n of this.chunks.volumes.scan(volume)) {
        if (this.chunks.has(n.digest)) continue
        const data = await this.chunks.volumes.read(volume, n.offset, n.length)
        const hashed = await hashChunk(data)
        if (toHex(hashed.digest, 'base16') !== toHex(n.digest, 'base16')) continue
        const staged = this.chunks.found(n.digest, { volume, offset: n.offset }, data, hashed.leaves)
        this.init.db.transaction(() => { this.chunks.insert([staged]) })
        indexed++
      }
    }
    await this.init.db.durable()
    return indexed
  }

  /** Move chunk files of an older version (`chunks/ab/cd/<hex>`) into volumes, verified; then remove them. */
  private async importLegacyChunks (): Promise<number> {
    const root = join(this.init.dataDir, LEGACY_CHUNKS_DIR)
    const paths = (await readdir(root, { recursive: true }).catch(() => [] as string[])).filter(p => /[0-9a-f]{64}$/.test(p))
    let imported = 0
    for (const rel of paths) {
      const data = new Uint8Array(await readFile(join(root, rel)))
      const digest = fromHex(rel.slice(-64), 'base16')
      if (this.chunks.has(digest) || toHex(await chunkDigest(data), 'base16') !== rel.slice(-64)) continue
      const staged = await this.chunks.stage(digest, data)
      await this.chunks.sync([staged])
      this.init.db.transaction(() => { this.chunks.insert([staged]) })
      imported++
    }
    if (imported > 0 || paths.length > 0) await this.init.db.durable()
    await rm(root, { recursive: true, force: true })
    return imported
  }
}
