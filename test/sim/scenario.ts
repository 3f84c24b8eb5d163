/**
 * The fault simulation behind `npm run sim`: an in-process cluster over the
 * memory transport, a seeded schedule of faults (kills, restarts, partitions,
 * heals, slow replicas) interleaved with uploads, reads and deletes, and
 * after every fault window — healed, everyone restarted, converged — the
 * invariants:
 *   - every acknowledged file reads back byte-identical, from every side;
 *   - copy counts are back at target (every ACTIVE member of its group has it);
 *   - no deleted file comes back;
 *   - membership views converge (every node sees the same members, groups, states).
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { plaintext } from '@libp2p/plaintext'
import { createSimCluster } from './cluster.ts'
import { shareSignatureChecks } from './shared-verify.ts'
import { copiesAtTarget, divergence, linksOf, logsPulled, rowsOf, syncDone, viewsAgree } from './invariants.ts'
import { yamuxOpenRaces } from '../../src/node/yamux-guard.ts'
import type { SimCluster } from './cluster.ts'
import type { Rng } from './rng.ts'
import type { DsmNode } from '../../src/node/dsm-node.ts'
import type { SimulationTuning } from '../../src/node/libp2p.ts'

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
  converged: boolean
  seconds: number
  windows: number
}

interface Acked { id: string, sha: string, size: number }

/** The timing of a run, scaled to its size. */
interface Timing {
  heartbeatIntervalMs: number
  offlineAfterMs: number
  joinSettleMs: number
  /** Nodes started together after the bootstrap ones (undefined: all at once). */
  bootBatch?: number
  /** Faults per window unless the caller chose. */
  window: number
  /** Longest wait for every node to be ready, and again for convergence, after a heal. */
  settleTimeoutMs: number
  /** How often the convergence condition is evaluated. */
  pollMs: number
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
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
/** Files checked at once (each from its readers one after another). */
const CHECK_CONCURRENCY = 8
/** A file unreadable right after convergence is retried this often before it counts as lost. */
const READ_ATTEMPTS = 4
const READ_RETRY_BACKOFF_MS = 500
const MIN_HEARTBEAT_INTERVAL_MS = 1_000
const MAX_HEARTBEAT_INTERVAL_MS = 120_000
const HEARTBEAT_MS_PER_NODE_SQUARED = 8
/**
 * A joining node announces its choice at once (a state change is published
 * immediately), so the settle period need only cover gossip's delivery, not a
 * heartbeat period: 3 s gave 30 nodes ten full groups in 42 s, 14 s took 85 s.
 */
const MAX_JOIN_SETTLE_MS = 4_000
/** Silence before OFFLINE, in heartbeats: a loaded process misses some, and a false OFFLINE changes who takes writes. */
const OFFLINE_AFTER_HEARTBEATS = 5
/**
 * Above this size nodes start in batches, each ACTIVE before the next: 60+
 * nodes dialling, handshaking and joining at the same moment in one process
 * left the event loop seconds late, and libp2p's connection monitor then drops
 * connections whose pings time out, which costs new handshakes.
 */
const BATCH_BOOT_ABOVE_NODES = 40
const BOOT_BATCH_NODES = 50
const DEFAULT_WINDOW = 5
/** A heal, restart and full check costs minutes at this size: fewer, longer windows. */
const LARGE_CLUSTER_NODES = 100
const LARGE_CLUSTER_WINDOW = 10
const MIN_SETTLE_TIMEOUT_MS = 120_000
/** Evaluating convergence costs O(N²): at most this often per node in the cluster. */
const POLL_MS_PER_NODE = 5
const MIN_POLL_MS = 50
/**
 * No added link latency by default: the memory transport delays each message
 * with its own timer, in order, so a link carries one message per event-loop
 * turn; under load its queue grows without bound and every stream on it stalls.
 */
const DEFAULT_LATENCY_MS = 0
const BOOTSTRAP_NODES = 3
/**
 * Group sync and upkeep stay at the production period whatever the heartbeat:
 * they are group-local (O(group) work per node), and they set how soon a
 * healed member catches up.
 */
const SYNC_INTERVAL_MS = 2_000
/**
 * Hundreds of nodes in one process (every other test runs the production
 * stack): no encryption between objects in memory; no ping monitor (memory
 * links never die silently, heartbeats find dead nodes); a thinner gossip
 * mesh and a slower gossipsub heartbeat, since every copy of every message
 * and every IHAVE round is paid by the one shared CPU (6.5 copies of each
 * heartbeat per node at D=6, 2.7 at D=3; IHAVE to a quarter of ~110 topic
 * peers every round cost 1,100 IHAVEs a second at 200 nodes, only Dlazy: 70).
 */
const SIM_LIBP2P: SimulationTuning = {
  connectionEncrypters: [plaintext()],
  connectionMonitor: false,
  gossipsub: { D: 3, Dlo: 2, Dhi: 4, Dlazy: 2, gossipFactor: 0, heartbeatInterval: 3_000 }
}

/**
 * Timing scaled to the cluster. Every heartbeat is checked (a signature) by every
 * node, several times over (gossipsub verifies each copy it receives), so in one
 * process the membership load grows with N² / interval: 16 nodes at 250 ms kept
 * one core busy with the event loop 200+ ms late, and then links, dials and
 * pings time out and nothing else gets done. 8·N² ms keeps it near a third of a
 * core, up to a cap: sync and repair run at the same period, and a member learns
 * that a mate's log moved from its heartbeat, so a longer period delays the
 * convergence after every heal by as much.
 */
function timing (nodes: number): Timing {
  const heartbeatIntervalMs = Math.min(MAX_HEARTBEAT_INTERVAL_MS,
    Math.max(MIN_HEARTBEAT_INTERVAL_MS, Math.round(nodes * nodes * HEARTBEAT_MS_PER_NODE_SQUARED)))
  return {
    heartbeatIntervalMs,
    offlineAfterMs: heartbeatIntervalMs * OFFLINE_AFTER_HEARTBEATS,
    joinSettleMs: Math.min(heartbeatIntervalMs * 2, MAX_JOIN_SETTLE_MS),
    ...(nodes > BATCH_BOOT_ABOVE_NODES ? { bootBatch: BOOT_BATCH_NODES } : {}),
    window: nodes > LARGE_CLUSTER_NODES ? LARGE_CLUSTER_WINDOW : DEFAULT_WINDOW,
    settleTimeoutMs: Math.max(MIN_SETTLE_TIMEOUT_MS, heartbeatIntervalMs * 3),
    pollMs: Math.max(MIN_POLL_MS, nodes * POLL_MS_PER_NODE)
  }
}

async function readAll (node: DsmNode, id: string): Promise<Uint8Array> {
  const located = await node.replica.open(id, { signal: AbortSignal.timeout(15_000) })
  const parts: Uint8Array[] = []
  for await (const p of node.replica.read(located, 0, located.manifest.size, { signal: AbortSignal.timeout(30_000) })) parts.push(p)
  return Buffer.concat(parts)
}

export async function runSim (opts: SimOptions): Promise<SimResult> {
  const started = Date.now()
  const log = opts.log ?? (() => {})
  const t = timing(opts.nodes)
  await shareSignatureChecks()
  let c: SimCluster
  try {
    c = await createSimCluster({
      nodes: opts.nodes, groupSize: opts.groupSize, seed: opts.seed, latencyMs: opts.latencyMs ?? DEFAULT_LATENCY_MS,
      heartbeatIntervalMs: t.heartbeatIntervalMs, offlineAfterMs: t.offlineAfterMs, joinSettleMs: t.joinSettleMs,
      bootstrapNodes: BOOTSTRAP_NODES, bootBatch: t.bootBatch, bootBatchTimeoutMs: t.settleTimeoutMs,
      configure: () => ({ repairAfterMs: t.offlineAfterMs * 2, syncIntervalMs: SYNC_INTERVAL_MS }),
      simulation: SIM_LIBP2P,
      log
    })
  } catch (err) {
    log(`boot failed: ${(err as Error).message}`)
    return { nodes: opts.nodes, faults: opts.faults, acked: 0, lost: 0, resurrected: 0, underReplicated: 0, converged: false, seconds: (Date.now() - started) / 1000, windows: 0 }
  }
  const run = new Run(c, opts, t, log)
  try {
    await run.all(started)
  } catch (err) {
    // Anything unexpected ends the run as not converged (with its reason in the log), never without a result.
    run.converged = false
    log(`run aborted: ${(err as Error).stack ?? String(err)}`)
  } finally {
    if (yamuxOpenRaces() > 0) log(`yamux stream-open races tolerated (upstream bug, see src/node/yamux-guard.ts): ${yamuxOpenRaces()}`)
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
  private windowStarted = Date.now()

  constructor (c: SimCluster, opts: SimOptions, t: Timing, log: (line: string) => void) {
    this.c = c
    this.opts = opts
    this.t = t
    this.log = log
    this.rng = c.rng
  }

  result (started: number): SimResult {
    return {
      nodes: this.opts.nodes, faults: this.opts.faults, acked: this.acked.size, lost: this.lost, resurrected: this.resurrected,
      underReplicated: this.underReplicated, converged: this.converged && this.underReplicated === 0,
      seconds: (Date.now() - started) / 1000, windows: this.windows
    }
  }

  async all (started: number): Promise<void> {
    await this.c.ready({ timeoutMs: this.t.settleTimeoutMs })
    this.windowStarted = Date.now()
    this.log(`ready: ${this.opts.nodes} nodes in ${this.c.node(0).membership.view.groups().length} groups after ${((Date.now() - started) / 1000).toFixed(1)} s`)
    const window = this.opts.window ?? this.t.window
    for (let k = 0; k < this.opts.faults; k++) {
      // Files written on a healthy cluster, so that every window's faults hit data that must survive them.
      if (k % window === 0) for (let u = 0; u < CALM_UPLOADS_PER_WINDOW; u++) await this.upload()
      const what = await this.fault()
      await this.upload()
      await this.read()
      if (this.rng.next() < DELETE_CHANCE) await this.remove()
      this.log(`fault ${k + 1}/${this.opts.faults}: ${what}`)
      if ((k + 1) % window === 0 || k === this.opts.faults - 1) await this.endWindow(started)
    }
    if (this.opts.faults === 0) { await this.upload(); await this.endWindow(started) }
  }

  private async endWindow (started: number): Promise<void> {
    const settling = Date.now()
    await this.settle()
    const checking = Date.now()
    await this.check()
    this.windows++
    this.log(`window ${this.windows} timing: faults and operations ${((settling - this.windowStarted) / 1000).toFixed(0)} s, ` +
      `heal and converge ${((checking - settling) / 1000).toFixed(0)} s, checks ${((Date.now() - checking) / 1000).toFixed(0)} s`)
    this.windowStarted = Date.now()
    const refused = [...this.refused].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'
    this.log(`window ${this.windows} at ${((Date.now() - started) / 1000).toFixed(0)} s: acked ${this.acked.size}, deleted ${this.deleted.size}, ` +
      `uncertain ${this.uncertain.size}, lost ${this.lost}, resurrected ${this.resurrected}, converged ${this.converged ? 'yes' : 'no'}; uploads refused so far: ${refused}`)
  }

  private up (): number[] { return this.c.upIndexes() }
  private anyUp (): number { return this.rng.pick(this.up()) }

  private async upload (): Promise<void> {
    const data = this.rng.bytes(1 + this.rng.int(MAX_UPLOAD_BYTES))
    try {
      const r = await this.c.node(this.anyUp()).replica.upload({ name: `f-${this.rng.int(1e9)}.bin` }, (async function * () { yield data })(),
        { signal: AbortSignal.timeout(OPERATION_TIMEOUT_MS) })
      this.acked.set(r.id, { id: r.id, sha: sha(data), size: data.byteLength })
      this.deleted.delete(r.id)
    } catch (err) {
      // Not acknowledged: nothing is promised for it. Counted by cause, for the log.
      const code = (err as { code?: string }).code ?? (err as Error).name
      this.refused.set(code, (this.refused.get(code) ?? 0) + 1)
    }
  }

  private async remove (): Promise<void> {
    const live = [...this.acked.keys()]
    if (live.length === 0) return
    const id = this.rng.pick(live)
    this.acked.delete(id)
    try {
      const via = this.anyUp()
      const r = await this.c.node(via).replica.delete(id, { signal: AbortSignal.timeout(OPERATION_TIMEOUT_MS) })
      const by = r.replicas.map(p => this.c.peerIds().indexOf(p)).join(',')
      this.deletes.set(id, `deleted via node ${via} in ${r.group}, applied by ${by}; rows then: ${rowsOf(this.c, id)}`)
      this.deleted.add(id)
    } catch {
      // A delete that failed may still have been applied (e.g. its answer timed out): settle retries it.
      this.uncertain.add(id)
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
  private async read (): Promise<void> {
    const live = [...this.acked.values()]
    if (live.length === 0) return
    const f = this.rng.pick(live)
    const i = this.anyUp()
    const bytes = await readAll(this.c.node(i), f.id).catch(() => undefined)
    if (bytes != null && sha(bytes) !== f.sha) this.corrupt(f, i)
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
      store.readChunkWithLeaves = async (digest) => { await sleep(SLOW_DISK_MS); return proto.readChunkWithLeaves.call(store, digest) }
    }
    return `slow ${i}`
  }

  /** Heal, restart everyone, and wait until the views agree and anti-entropy is done. */
  private async settle (): Promise<void> {
    this.c.heal()
    // Removing the own property brings back the prototype's method (a restarted node was never patched).
    for (const store of this.slowed) Reflect.deleteProperty(store, 'readChunkWithLeaves')
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
    for (let k = 0; k < files.length; k += CHECK_CONCURRENCY) {
      await Promise.all(files.slice(k, k + CHECK_CONCURRENCY).map(async f => this.checkFile(f)))
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

  /** The file reads back byte-identical from every reader (a few tries each), and has its copies. */
  private async checkFile (f: Acked): Promise<void> {
    let ok = true
    for (const i of this.readers()) {
      let why = ''
      let bytes: Uint8Array | undefined
      for (let attempt = 0; attempt < READ_ATTEMPTS && bytes == null; attempt++) {
        if (attempt > 0) await sleep(READ_RETRY_BACKOFF_MS * attempt)
        bytes = await readAll(this.c.node(i), f.id).catch((err: Error) => { why = `${err.name}: ${err.message}`; return undefined })
      }
      if (bytes != null && sha(bytes) !== f.sha) { this.corrupt(f, i); return }
      if (bytes == null) { ok = false; this.log(`LOST ${f.id} from node ${i}: ${why}; ${linksOf(this.c, i, f.id)}`) }
    }
    if (!ok) this.lost++
    if (!copiesAtTarget(this.c, f.id, this.opts.groupSize)) { this.underReplicated++; this.log(`UNDER-REPLICATED ${f.id}: ${rowsOf(this.c, f.id)}`) }
  }
}

export function formatResult (r: SimResult): string {
  return `sim: nodes=${r.nodes} faults=${r.faults} acked=${r.acked} lost=${r.lost} resurrected=${r.resurrected} converged=${r.converged ? 'yes' : 'no'} seconds=${Math.round(r.seconds)}`
}
