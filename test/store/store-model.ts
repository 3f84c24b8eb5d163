/**
 * A model-based stress test of the store (used by store-model.test.ts, bounded,
 * and by `npm run stress`, with a seed and a count from the command line).
 *
 * fast-check draws a list of operations; they run against a real LocalStore
 * (SQLite on disk, volumes on a CrashDisk with tiny volumes so every few
 * needles cross a volume boundary) with most of them in flight at once:
 * uploads through both write paths (commitAdd, and prepare + commitPrepared),
 * deletes, reads, compaction passes, scrub passes, WAL syncs, clean restarts
 * and crashes that keep only what was synced (volumes: CrashDisk; the WAL:
 * cut back to what the last finished fdatasync covered). Chunks come from a
 * small pool, so files share them and deletes meet live references.
 *
 * The model is what the store acknowledged. After every step (and while
 * operations are in flight) the store must agree with it: every acknowledged
 * upload reads back byte-identical, every acknowledged delete stays deleted
 * (also across crashes), no file the store calls present misses a chunk or
 * reads back wrong, and nothing is ever found corrupt.
 */
import { fdatasync, fstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import fc from 'fast-check'
import { equals } from 'uint8arrays/equals'
import { chunkDigest } from '../../src/content/chunk-hash.ts'
import { createManifest } from '../../src/content/manifest.ts'
import { silentLogger } from '../../src/logger.ts'
import { ChunkWriter } from '../../src/store/chunk-writer.ts'
import { Compaction } from '../../src/store/compaction.ts'
import { DB_FILE_NAME, openDb } from '../../src/store/db.ts'
import { LocalStore } from '../../src/store/local-store.ts'
import { Scrub } from '../../src/store/scrub.ts'
import { createRng } from '../sim/rng.ts'
import { CrashDisk } from '../helpers/crash-disk.ts'
import type { Manifest } from '../../src/content/manifest.ts'
import type { Db } from '../../src/store/db.ts'

const fdatasyncAsync = promisify(fdatasync)

/** Tiny volumes: a needle or two each, so appends cross boundaries all the time. */
export const MODEL_VOLUME_BYTES = 160 * 1024
const CHUNK_SIZES = [3_000, 40_000, 70_000, 100_000, 150_000]
const POOL = 12
const MAX_IN_FLIGHT = 24

export type Op =
  | { kind: 'upload', chunks: number[], path: 'add' | 'prepare' }
  | { kind: 'delete', pick: number }
  | { kind: 'read', pick: number }
  | { kind: 'compact' }
  | { kind: 'scrub' }
  | { kind: 'durable' }
  | { kind: 'pause' }
  | { kind: 'settle' }
  | { kind: 'restart' }
  | { kind: 'crash' }

export const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('upload' as const), chunks: fc.array(fc.nat(POOL - 1), { minLength: 1, maxLength: 4 }), path: fc.constantFrom('add' as const, 'prepare' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('read' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'compact' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'scrub' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'durable' as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'pause' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'settle' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'crash' as const }) }
)

interface Tracked {
  id: string
  chunks: Uint8Array[]
  manifest: Manifest
  path: 'add' | 'prepare'
  /** Its stamp, once taken (last writer wins against a delete of the same file). */
  ts?: number
  /** The write the path promises is durable resolved (commitAdd, or prepare). */
  acked: boolean
  deleteStarted: boolean
  deleteAcked: boolean
}

/** One store under test, across restarts and crashes (each crash moves it to a new directory). */
class Harness {
  readonly errors: string[] = []
  steps = 0
  readonly stats = { acked: 0, deletes: 0, chunkReads: 0, rotations: 0, compacted: 0, crashes: 0, restarts: 0 }
  private readonly root: string
  private readonly pool: Array<{ data: Uint8Array, digest: Uint8Array }>
  private readonly files: Tracked[] = []
  private readonly inFlight = new Set<Promise<void>>()
  private disk: CrashDisk
  private generation = 0
  /** Operations of an earlier generation (before a crash) may still finish: their results count for nothing. */
  private epoch = 0
  private walSynced = 0
  private db?: Db
  private store?: LocalStore
  private compaction?: Compaction
  private scrub?: Scrub
  private uploads = 0

  constructor (root: string, seed: number, pool: Array<{ data: Uint8Array, digest: Uint8Array }>) {
    this.root = root
    this.pool = pool
    this.disk = new CrashDisk(createRng(seed))
  }

  private get dir (): string { return join(this.root, `g${this.generation}`) }
  private get live (): LocalStore { return this.store as LocalStore }

  async open (): Promise<void> {
    const dir = this.dir
    mkdirSync(dir, { recursive: true })
    this.walSynced = fileSize(join(dir, `${DB_FILE_NAME}-wal`))
    const epoch = this.epoch
    this.db = openDb(dir, {
      checkpoints: false,
      syncWal: async (fd) => {
        // What this sync covers is fixed when it begins; it counts once it has finished.
        const size = fstatSync(fd).size
        await fdatasyncAsync(fd)
        if (epoch === this.epoch) this.walSynced = Math.max(this.walSynced, size)
      }
    })
    this.store = new LocalStore({ db: this.db, dataDir: dir, reserve: { bytes: 0 }, capacity: async () => ({ total: 2 ** 40, free: 2 ** 40 }), volumes: { maxBytes: MODEL_VOLUME_BYTES, files: this.disk, readHandles: 3 } })
    const report = await this.store.start()
    if (report.filesMissingChunks.length > 0) {
      for (const id of report.filesMissingChunks) if (this.mustBePresent(id)) this.fail(`acknowledged file ${id} lost chunks at start`)
    }
    const corrupt = (digest: Uint8Array, at: { volume: number, offset: number }): void => { this.live.chunkCorrupt(digest, at) }
    this.compaction = new Compaction({ chunks: this.store.chunks, db: this.db, logger: silentLogger, corrupt }, { bytesPerS: 2 ** 40 })
    this.scrub = new Scrub({ chunks: this.store.chunks, logger: silentLogger, corrupt }, { bytesPerS: 2 ** 40 })
    // A prepared upload found at start is decided the way the resolver would: its copy is complete, so it commits.
    for (const u of this.store.prepared.all()) await this.store.commitPrepared(u)
  }

  async close (): Promise<void> {
    await this.settle()
    this.stats.rotations += this.store?.chunks.volumes.rotations ?? 0
    this.stats.compacted += this.compaction?.counters.volumes ?? 0
    await this.compaction?.stop()
    await this.scrub?.stop()
    await this.store?.stop()
    await this.db?.close()
  }

  /** Run one operation (most are started and left in flight). */
  async step (op: Op): Promise<void> {
    this.steps++
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight)
    switch (op.kind) {
      case 'upload': this.track(this.upload(op.chunks, op.path)); break
      case 'delete': this.track(this.delete(op.pick)); break
      case 'read': this.track(this.read(op.pick)); break
      case 'compact': this.track(this.background(async () => { await this.compaction?.run() })); break
      case 'scrub': this.track(this.background(async () => { await this.scrub?.pass() })); break
      case 'durable': this.track(this.background(async () => { await this.db?.durable() })); break
      case 'pause': await new Promise(resolve => setImmediate(resolve)); break
      case 'settle': await this.settle(); await this.checkAll(); break
      case 'restart': this.stats.restarts++; await this.close(); await this.open(); await this.checkAll(); break
      case 'crash': await this.crash(); await this.checkAll(); break
    }
  }

  async settle (): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled(this.inFlight)
  }

  /** Power loss: the volumes as CrashDisk leaves them, the WAL cut back to its last finished sync; then start on that. */
  private async crash (): Promise<void> {
    const from = this.dir
    const db = readFileSync(join(from, DB_FILE_NAME))
    const wal = readFileSync(join(from, `${DB_FILE_NAME}-wal`)).subarray(0, this.walSynced)
    this.disk = this.disk.crash()
    this.epoch++
    const old = { store: this.store, db: this.db, compaction: this.compaction, scrub: this.scrub }
    this.stats.crashes++
    this.stats.rotations += this.store?.chunks.volumes.rotations ?? 0
    this.stats.compacted += this.compaction?.counters.volumes ?? 0
    this.generation++
    mkdirSync(this.dir, { recursive: true })
    writeFileSync(join(this.dir, DB_FILE_NAME), db)
    writeFileSync(join(this.dir, `${DB_FILE_NAME}-wal`), wal)
    // The old process is gone: its operations fail on the dead disk; its results are ignored (epoch).
    await this.settle()
    await old.compaction?.stop()
    await old.scrub?.stop()
    await old.store?.stop().catch(() => {})
    await old.db?.close().catch(() => {})
    await this.open()
  }

  private track (p: Promise<void>): void {
    const owned = p.catch(err => { this.fail(`an operation threw: ${(err as Error).stack ?? String(err)}`) })
      .finally(() => { this.inFlight.delete(owned) })
    this.inFlight.add(owned)
  }

  private async background (fn: () => Promise<void>): Promise<void> {
    const epoch = this.epoch
    try {
      await fn()
    } catch (err) {
      if (epoch === this.epoch && !stopped(err)) throw err
    }
  }

  private async upload (picks: number[], path: 'add' | 'prepare'): Promise<void> {
    const epoch = this.epoch
    const store = this.live
    const chunks = picks.map(i => this.pool[i] as { data: Uint8Array, digest: Uint8Array })
    // The store keys everything by digest; the manifest's sizes are nominal (one "byte" per chunk).
    const manifest = await createManifest({ size: chunks.length, chunkSize: 1, chunks: chunks.map(c => c.digest), name: `f${this.uploads++}`, mime: 'application/octet-stream' })
    const f: Tracked = { id: manifest.id.toString(), chunks: chunks.map(c => c.data), manifest, path, acked: false, deleteStarted: false, deleteAcked: false }
    this.files.push(f)
    const writer = new ChunkWriter(store)
    try {
      for (const c of chunks) await writer.put(c.digest, c.data)
      const staged = await writer.flush()
      const ts = store.clock.next()
      f.ts = ts
      if (path === 'add') {
        await store.commitAdd({ kind: 'add', id: f.id, group: 'g', ts, origin: 'me', manifest: manifest.bytes, size: manifest.size, name: manifest.name, mime: manifest.mime, createdAt: 1, chunks: manifest.chunks }, staged)
        if (epoch === this.epoch) { f.acked = true; this.stats.acked++ }
      } else {
        const key = { id: f.id, ts, origin: 'me' }
        await store.prepare({ ...key, group: 'g', manifest: manifest.bytes, createdAt: 1, copies: 1, members: [], at: Date.now() }, staged, manifest)
        if (epoch === this.epoch) { f.acked = true; this.stats.acked++ }
        await store.commitPrepared(key)
      }
    } catch (err) {
      if (epoch === this.epoch && !stopped(err)) throw err
    } finally {
      writer.release()
    }
  }

  private async delete (pick: number): Promise<void> {
    const f = this.files[pick % Math.max(1, this.files.length)]
    if (f == null) return
    const epoch = this.epoch
    const ts = this.live.clock.next()
    // A delete stamped before the upload (which is still writing its chunks) loses to it: it changes nothing in the model.
    const wins = f.ts != null && f.ts < ts
    if (wins) f.deleteStarted = true
    try {
      await this.live.applyDelete({ kind: 'delete', id: f.id, group: 'g', ts, origin: 'me' })
      if (!wins) return
      if (epoch === this.epoch) { f.deleteAcked = true; this.stats.deletes++ }
    } catch (err) {
      if (epoch === this.epoch && !stopped(err)) throw err
    }
  }

  private async read (pick: number): Promise<void> {
    const f = this.files[pick % Math.max(1, this.files.length)]
    if (f == null) return
    await this.checkFile(f, 'a read')
  }

  /** An acknowledged file, not being deleted, reads back exactly; any file the store calls present does. */
  private async checkFile (f: Tracked, when: string): Promise<void> {
    const epoch = this.epoch
    const store = this.live
    const row = store.index.get(f.id)
    if (f.deleteAcked && row != null && row.state !== 'deleted') this.fail(`${when}: ${f.id}, deleted with an acknowledgement, is ${row.state} again`)
    const mustRead = this.mustBePresent(f.id)
    if (!mustRead && row?.state !== 'present') return
    for (const [i, expected] of f.chunks.entries()) {
      try {
        const got = await store.readChunk(f.manifest.chunks[i] as Uint8Array)
        if (epoch !== this.epoch) return
        this.stats.chunkReads++
        if (!equals(got.data, expected)) this.fail(`${when}: chunk ${i} of ${f.id} reads back wrong`)
      } catch (err) {
        if (epoch !== this.epoch || stopped(err)) return
        // A file deleted meanwhile (or never acknowledged) may lose its chunks at any moment.
        if (!this.mustBePresent(f.id) && (err as Error).name === 'ChunkNotStoredError') return
        this.fail(`${when}: chunk ${i} of ${f.id} (${this.mustBePresent(f.id) ? 'acknowledged' : 'present'}) cannot be read: ${(err as Error).name}: ${(err as Error).message}`)
      }
    }
  }

  private mustBePresent (id: string): boolean {
    const f = this.files.find(t => t.id === id)
    return f != null && f.acked && !f.deleteStarted
  }

  /** Every file against the model; nothing ever found corrupt. */
  async checkAll (): Promise<void> {
    for (const f of this.files) await this.checkFile(f, `after step ${this.steps}`)
    for (const f of this.files) {
      if (this.mustBePresent(f.id) && this.live.index.get(f.id)?.state !== 'present') this.fail(`after step ${this.steps}: acknowledged ${f.id} is ${this.live.index.get(f.id)?.state ?? 'gone'}`)
    }
    if (this.live.corruptChunks > 0) this.fail(`the store found ${this.live.corruptChunks} corrupt chunk(s)`)
  }

  private fail (message: string): void {
    if (this.errors.length < 20) this.errors.push(message)
  }
}

function stopped (err: unknown): boolean {
  const e = err as NodeJS.ErrnoException
  return e.name === 'StoreStoppedError' || e.code === 'EIO' || e.code === 'EBADF' || /database is not open/.test(e.message)
}

function fileSize (path: string): number {
  try {
    return readFileSync(path).byteLength
  } catch {
    return 0
  }
}

async function makePool (seed: number): Promise<Array<{ data: Uint8Array, digest: Uint8Array }>> {
  const rng = createRng(seed ^ 0x5eed)
  return Promise.all(Array.from({ length: POOL }, async (_, i) => {
    const data = rng.bytes(CHUNK_SIZES[i % CHUNK_SIZES.length] as number)
    return { data, digest: await chunkDigest(data) }
  }))
}

export interface StoreModelOptions {
  seed: number
  runs: number
  /** Most operations per run. */
  steps: number
  /** Where the stores live (a fresh temporary directory per run by default). */
  tmp?: string
}

/** Run the property; throws (fast-check's report, with seed and counterexample) on the first failing run. */
export interface StoreModelReport { runs: number, steps: number, acked: number, deletes: number, chunkReads: number, rotations: number, compacted: number, crashes: number, restarts: number }

export async function checkStoreModel (options: StoreModelOptions): Promise<StoreModelReport> {
  let steps = 0
  let runs = 0
  const totals = { acked: 0, deletes: 0, chunkReads: 0, rotations: 0, compacted: 0, crashes: 0, restarts: 0 }
  await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 30 }), fc.array(opArbitrary, { minLength: Math.ceil(options.steps / 2), maxLength: options.steps, size: 'max' }), async (diskSeed, ops) => {
    const root = await mkdtemp(join(options.tmp ?? tmpdir(), 'dsm-model-'))
    const h = new Harness(root, diskSeed, await makePool(diskSeed))
    try {
      await h.open()
      for (const op of ops) {
        await h.step(op)
        if (h.errors.length > 0) break
      }
      await h.settle()
      if (h.errors.length === 0) await h.checkAll()
      if (h.errors.length > 0) throw new Error(h.errors.join('\n'))
    } finally {
      await h.close().catch(() => {})
      steps += h.steps
      runs++
      for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += h.stats[k]
      await rm(root, { recursive: true, force: true })
    }
  }), { seed: options.seed, numRuns: options.runs, endOnFailure: true })
  return { runs, steps, ...totals }
}
