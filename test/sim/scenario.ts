/**
 * The fault simulation behind `npm run sim`: an in-process cluster over the
 * memory transport, a seeded schedule of faults (kills, restarts, partitions,
 * heals, slow replicas) interleaved with uploads, reads and deletes, and
 * after every fault window — healed, everyone restarted, converged — the
 * invariants:
 *   - every acknowledged file reads back byte-identical, from every side;
 *   - copy counts are back at target (every ACTIVE member of its group has it);
 *   - no deleted file comes back;
 *   - membership views converge (every node sees the same members, groups, states);
 *   - S3 keys written and deleted through the S3 listeners during the faults
 *     read the same on every node, a value their history allows
 *     (./s3-workload.ts: an acknowledged PUT visible with its latest value, no
 *     deleted key back).
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Queue } from '@libp2p/utils'
import { createSimCluster, readWhole } from './cluster.ts'
import { BOOTSTRAP_NODES, DEFAULT_LATENCY_MS, SIM_LIBP2P, SYNC_INTERVAL_MS, timing } from './scale.ts'
import { shareSignatureChecks } from './shared-verify.ts'
import { Stopwatch } from './stopwatch.ts'
import { copiesAtTarget, divergence, linksOf, logsPulled, rowsOf, syncDone, viewsAgree } from './invariants.ts'
import { S3Workload, s3Config } from './s3-workload.ts'
import { yamuxOpenRaces } from '../../src/net/yamux-guard.ts'
import type { SimCluster } from './cluster.ts'
import type { Timing } from './scale.ts'
import type { Rng } from './rng.ts'
import type { DsmNode } from '../../src/node/dsm-node.ts'

export { viewsAgree } from './invariants.ts'

export interface SimOptions {
  nodes: number
  groupSize: number
  seed: number
  faults: number
  latencyMs?: number
  /** Faults per window; the invariants are checked after each window (default: by size, see timing()). */
  window?: number
  log?: (line: string) => void
}

export interface SimResult {
  nodes: number
  faults: number
  acked: number
  lost: number
  resurrected: number
  underReplicated: number
  /** S3 key writes acknowledged during the run, and reads or checks that broke the history's rules. */
  keysAcked: number
  keyViolations: number
  converged: boolean
  seconds: number
  windows: number
}

interface Acked { id: string, sha: string, size: number }

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
/** A slow replica answers this late: longer than the stall timeout, so readers move on. */
const SLOW_DISK_MS = 5_000
/** Uploads on the healed cluster before each window's faults. */
const CALM_UPLOADS_PER_WINDOW = 3
const MAX_UPLOAD_BYTES = 300 * 1024
const OPERATION_TIMEOUT_MS = 20_000
/** Chance of a delete after each fault. */
const DELETE_CHANCE = 0.25
/** Above this size every check reads each file from a sample of nodes, not from all. */
const READ_FROM_ALL_UP_TO_NODES = 40
const SAMPLED_READERS = 8
/** Reads of the check in flight at once (each a file read back from one node). */
const CHECK_CONCURRENCY = 16
/** A file unreadable right after convergence is retried this often before it counts as lost. */
const READ_ATTEMPTS = 4
const READ_RETRY_BACKOFF_MS = 500

const READ_TIMEOUTS = { openMs: 15_000, readMs: 30_000 }

export async function runSim (opts: SimOptions): Promise<SimResult> {
  const started = Date.now()
  const log = opts.log ?? (() => {})
  const t = timing(opts.nodes)
  await shareSignatureChecks()
  let c: SimCluster
  try {
    c = await createSimCluster({
      nodes: opts.nodes,
      groupSize: opts.groupSize,
      seed: opts.seed,
      latencyMs: opts.latencyMs ?? DEFAULT_LATENCY_MS,
      heartbeatIntervalMs: t.heartbeatIntervalMs,
      offlineAfterMs: t.offlineAfterMs,
      joinSettleMs: t.joinSettleMs,
      bootstrapNodes: BOOTSTRAP_NODES,
      bootBatch: t.bootBatch,
      bootBatchTimeoutMs: t.settleTimeoutMs,
      configure: () => ({ repairAfterMs: t.offlineAfterMs * 2, syncIntervalMs: SYNC_INTERVAL_MS, ...s3Config() }),
      simulation: SIM_LIBP2P,
      log
    })
  } catch (err) {
    log(`boot failed: ${(err as Error).message}`)
    return { nodes: opts.nodes, faults: opts.faults, acked: 0, lost: 0, resurrected: 0, underReplicated: 0, keysAcked: 0, keyViolations: 0, converged: false, seconds: (Date.now() - started) / 1000, windows: 0 }
  }
  const run = new Run(c, opts, t, log)
  try {
    await run.all(started)
  } catch (err) {
    // Anything unexpected ends the run as not converged (with its reason in the log), never without a result.
    run.converged = false
    log(`run aborted: ${(err as Error).stack ?? String(err)}`)
  } finally {
    if (yamuxOpenRaces() > 0) log(`yamux stream-open races tolerated (upstream bug, see src/net/yamux-guard.ts): ${yamuxOpenRaces()}`)
    await c.close()
  }
  return run.result(started)
}

/** One simulation run: the cluster, what was promised, and what was found. */
class Run {
  converged = true
  private readonly c: SimCluster
  private readonly opts: SimOptions
  private readonly t: Timing
  private readonly log: (line: string) => void
  private readonly rng: Rng
  private readonly acked = new Map<string, Acked>()
  private readonly deleted = new Set<string>()
  /** Files whose delete failed: maybe applied, maybe not, until settle deletes them for sure. */
  private readonly uncertain = new Set<string>()
  /** How each delete went (for the log of a resurrection). */
  private readonly deletes = new Map<string, string>()
  /** Uploads not acknowledged, by error code (during faults many are, legitimately). */
  private readonly refused = new Map<string, number>()
  /** Stores made slow (an own property shadowing the store's method); kept by store, since a killed node has none. */
  private readonly slowed = new Set<DsmNode['store']>()
  private lost = 0
  private resurrected = 0
  private underReplicated = 0
  private windows = 0
  /** Time and CPU of the current phase of a window. */
  private readonly phase = new Stopwatch()
  /** S3 writes and reads beside the files, and their history. */
  private readonly s3: S3Workload

  constructor (c: SimCluster, opts: SimOptions, t: Timing, log: (line: string) => void) {
    this.c = c
    this.opts = opts
    this.t = t
    this.log = log
    this.rng = c.rng
    this.s3 = new S3Workload(c, c.rng, log)
  }

  result (started: number): SimResult {
    return {
      nodes: this.opts.nodes,
      faults: this.opts.faults,
      acked: this.acked.size,
      lost: this.lost,
      resurrected: this.resurrected,
      underReplicated: this.underReplicated,
      keysAcked: this.s3.counts.acked,
      keyViolations: this.s3.violations,
      converged: this.converged && this.underReplicated === 0,
      seconds: (Date.now() - started) / 1000,
      windows: this.windows
    }
  }

  async all (started: number): Promise<void> {
    await this.c.ready({ timeoutMs: this.t.settleTimeoutMs })
    this.phase.lap()
    this.log(`ready: ${this.opts.nodes} nodes in ${this.c.node(0).membership.view.groups().length} groups after ${((Date.now() - started) / 1000).toFixed(1)} s, ` +
      `${(this.up().reduce((n, i) => n + this.c.node(i).libp2p.getConnections().length, 0) / this.up().length).toFixed(0)} connections per node`)
    const window = this.opts.window ?? this.t.window
    for (let k = 0; k < this.opts.faults; k++) {
      // Files written on a healthy cluster, so that every window's faults hit data that must survive them.
      if (k % window === 0) {
        for (let u = 0; u < CALM_UPLOADS_PER_WINDOW; u++) this.log(`calm upload: ${await this.upload()}`)
        await this.s3.setup()
        this.log(`calm ${await this.s3.step()}`)
      }
      const at = Date.now()
      const what = await this.fault()
      const faulted = Date.now()
      const uploaded = await this.upload()
      const read = await this.read()
      const removed = this.rng.next() < DELETE_CHANCE ? await this.remove() : ''
      const keys = await this.s3.step()
      this.log(`fault ${k + 1}/${this.opts.faults}: ${what} (${secs(faulted - at)}); upload ${uploaded}, read ${read}${removed !== '' ? `, delete ${removed}` : ''}; ${keys}`)
      if ((k + 1) % window === 0 || k === this.opts.faults - 1) await this.endWindow(started)
    }
    if (this.opts.faults === 0) { await this.upload(); await this.endWindow(started) }
  }

  private async endWindow (started: number): Promise<void> {
    const operations = this.phase.lap()
    await this.settle()
    const heal = this.phase.lap()
    await this.check()
    await this.s3.check()
    this.windows++
    this.log(`window ${this.windows} timing: faults and operations ${operations}, heal and converge ${heal}, checks ${this.phase.lap()}`)
    const refused = [...this.refused].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'
    this.log(`window ${this.windows} at ${((Date.now() - started) / 1000).toFixed(0)} s: acked ${this.acked.size}, deleted ${this.deleted.size}, ` +
      `uncertain ${this.uncertain.size}, lost ${this.lost}, resurrected ${this.resurrected}, converged ${this.converged ? 'yes' : 'no'}; uploads refused so far: ${refused}`)
  }

  private up (): number[] { return this.c.upIndexes() }
  private anyUp (): number { return this.rng.pick(this.up()) }

  /** Upload random bytes through a random node; says how it went, and how long it took. */
  private async upload (): Promise<string> {
    const data = this.rng.bytes(1 + this.rng.int(MAX_UPLOAD_BYTES))
    const started = Date.now()
    try {
      const r = await this.c.node(this.anyUp()).replica.upload({ name: `f-${this.rng.int(1e9)}.bin` }, (async function * () { yield data })(),
        { signal: AbortSignal.timeout(OPERATION_TIMEOUT_MS) })
      this.acked.set(r.id, { id: r.id, sha: sha(data), size: data.byteLength })
      this.deleted.delete(r.id)
      return `acked (${secs(Date.now() - started)})`
    } catch (err) {
      // Not acknowledged: nothing is promised for it. Counted by cause, for the log.
      const code = (err as { code?: string }).code ?? (err as Error).name
      this.refused.set(code, (this.refused.get(code) ?? 0) + 1)
      return `${code} (${secs(Date.now() - started)})`
    }
  }

  private async remove (): Promise<string> {
    const live = [...this.acked.keys()]
    if (live.length === 0) return 'none'
    const id = this.rng.pick(live)
    this.acked.delete(id)
    const started = Date.now()
    try {
      const via = this.anyUp()
      const r = await this.c.node(via).replica.delete(id, { signal: AbortSignal.timeout(OPERATION_TIMEOUT_MS) })
      const by = r.replicas.map(p => this.c.peerIds().indexOf(p)).join(',')
      this.deletes.set(id, `deleted via node ${via} in ${r.group}, applied by ${by}; rows then: ${rowsOf(this.c, id)}`)
      this.deleted.add(id)
      return `done (${secs(Date.now() - started)})`
    } catch (err) {
      // A delete that failed may still have been applied (e.g. its answer timed out): settle retries it.
      this.uncertain.add(id)
      return `${(err as { code?: string }).code ?? (err as Error).name} (${secs(Date.now() - started)})`
    }
  }

  /** Retry the failed deletes on the healed cluster: done, or "not found" (it was applied), makes them deleted. */
  private async resolveDeletes (): Promise<void> {
    for (const id of this.uncertain) {
      const done = await this.c.node(this.anyUp()).replica.delete(id, { signal: AbortSignal.timeout(OPERATION_TIMEOUT_MS) })
        .then(() => true, (err: { code?: string }) => err.code === 'ERR_FILE_NOT_FOUND')
      if (done) { this.uncertain.delete(id); this.deleted.add(id) }
    }
  }

  /** A read during faults may fail (its whole group cut off); only other bytes are an error here. */
  private async read (): Promise<string> {
    const live = [...this.acked.values()]
    if (live.length === 0) return 'none'
    const f = this.rng.pick(live)
    const i = this.anyUp()
    const started = Date.now()
    let why = 'ok'
    const bytes = await readWhole(this.c.node(i), f.id, READ_TIMEOUTS).catch((err: Error & { code?: string }) => { why = err.code ?? err.name; return undefined })
    if (bytes != null && sha(bytes) !== f.sha) this.corrupt(f, i)
    return `${why} (${secs(Date.now() - started)})`
  }

  /** Other bytes than acknowledged: the file is lost as far as its owner can tell. */
  private corrupt (f: Acked, reader: number): void {
    this.log(`CORRUPT ${f.id}: node ${reader} read other bytes`)
    this.acked.delete(f.id)
    this.lost++
  }

  private async fault (): Promise<string> {
    const upNodes = this.up()
    const down = [...Array(this.c.size).keys()].filter(i => !this.c.isUp(i))
    const roll = this.rng.next()
    if (roll < 0.3 && upNodes.length > Math.ceil(this.c.size / 2)) {
      const i = this.rng.pick(upNodes)
      await this.c.kill(i)
      return `kill ${i}`
    }
    if (roll < 0.5 && down.length > 0) {
      const i = this.rng.pick(down)
      await this.c.restart(i)
      return `restart ${i}`
    }
    if (roll < 0.65) {
      const side = upNodes.filter(() => this.rng.next() < 0.3)
      await this.c.partition(side, upNodes.filter(i => !side.includes(i)))
      return `partition ${side.length}/${upNodes.length}`
    }
    if (roll < 0.8) {
      this.c.heal()
      return 'heal'
    }
    return this.slow(this.rng.pick(upNodes))
  }

  /** A slow replica: its disk answers SLOW_DISK_MS late (both paths: local reads and the get server). */
  private slow (i: number): string {
    const store = this.c.node(i).store
    if (!this.slowed.has(store)) {
      this.slowed.add(store)
      const proto = Object.getPrototypeOf(store) as typeof store
      store.readChunk = async (digest, range) => { await sleep(SLOW_DISK_MS); return proto.readChunk.call(store, digest, range) }
    }
    return `slow ${i}`
  }

  /** Heal, restart everyone, and wait until the views agree and anti-entropy is done. */
  private async settle (): Promise<void> {
    this.c.heal()
    // Removing the own property brings back the prototype's method (a restarted node was never patched).
    for (const store of this.slowed) Reflect.deleteProperty(store, 'readChunk')
    this.slowed.clear()
    // Hosts come back independently of each other: restart them all at once.
    const down = [...Array(this.c.size).keys()].filter(i => !this.c.isUp(i))
    await Promise.all(down.map(async i => this.c.restart(i)))
    try {
      await this.c.ready({ timeoutMs: this.t.settleTimeoutMs })
      await this.resolveDeletes()
      await this.c.waitFor(() => viewsAgree(this.c) && syncDone(this.c) && logsPulled(this.c),
        { timeoutMs: this.t.settleTimeoutMs, pollMs: this.t.pollMs, message: 'views converge and sync finishes' })
    } catch (err) {
      this.converged = false
      this.log(`not converged: ${(err as Error).message}; ${divergence(this.c)}`)
    }
  }

  private async check (): Promise<void> {
    const files = [...this.acked.values()]
    const found = new Map(files.map(f => [f.id, { corruptAt: undefined as number | undefined, unreadable: false }]))
    // Every (file, reader) pair is one job: a slow read holds one slot, not a whole file's turn.
    const reads = new Queue<void>({ concurrency: CHECK_CONCURRENCY })
    const jobs: Array<Promise<void>> = []
    for (const f of files) {
      for (const i of this.readers()) {
        jobs.push(reads.add(async () => {
          const r = await this.readBack(f, i)
          const seen = found.get(f.id)
          if (seen == null || r === 'ok') return
          if (r === 'corrupt') seen.corruptAt ??= i
          else seen.unreadable = true
        }))
      }
    }
    await Promise.all(jobs)
    for (const f of files) {
      const seen = found.get(f.id)
      if (seen?.corruptAt != null) { this.corrupt(f, seen.corruptAt); continue }
      if (seen?.unreadable === true) this.lost++
      if (!copiesAtTarget(this.c, f.id, this.opts.groupSize)) { this.underReplicated++; this.log(`UNDER-REPLICATED ${f.id}: ${rowsOf(this.c, f.id)}`) }
    }
    for (const id of this.deleted) {
      const back = this.up().some(i => { const s = this.c.node(i).store.index.get(id)?.state; return s === 'present' || s === 'pending' })
      if (back) { this.resurrected++; this.log(`RESURRECTED ${id}: ${rowsOf(this.c, id)}; ${this.deletes.get(id) ?? ''}`) }
    }
  }

  private readers (): number[] {
    if (this.opts.nodes <= READ_FROM_ALL_UP_TO_NODES) return this.up()
    return [...new Set(Array.from({ length: SAMPLED_READERS }, () => this.anyUp()))]
  }

  /** Read a file back from one node (a few tries): the acknowledged bytes, other bytes, or nothing. */
  private async readBack (f: Acked, i: number): Promise<'ok' | 'corrupt' | 'unreadable'> {
    let why = ''
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      if (attempt > 0) await sleep(READ_RETRY_BACKOFF_MS * attempt)
      const bytes = await readWhole(this.c.node(i), f.id, READ_TIMEOUTS).catch((err: Error) => { why = `${err.name}: ${err.message}`; return undefined })
      if (bytes != null) return sha(bytes) === f.sha ? 'ok' : 'corrupt'
    }
    this.log(`LOST ${f.id} from node ${i}: ${why}; ${linksOf(this.c, i, f.id)}`)
    return 'unreadable'
  }
}

export function formatResult (r: SimResult): string {
  return `sim: nodes=${r.nodes} faults=${r.faults} acked=${r.acked} lost=${r.lost} resurrected=${r.resurrected} keys-acked=${r.keysAcked} key-violations=${r.keyViolations} converged=${r.converged ? 'yes' : 'no'} seconds=${Math.round(r.seconds)}`
}
