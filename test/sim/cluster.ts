/**
 * An in-process dsm cluster over the libp2p memory transport: real nodes,
 * real protocols, simulated links (latency) and faults (kill, restart,
 * partition, heal). The base of every distributed test.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULTS } from '../../src/node/config.ts'
import { DsmNode } from '../../src/node/dsm-node.ts'
import type { DsmNodeInit } from '../../src/node/dsm-node.ts'
import { createLogger, silentLogger } from '../../src/logger.ts'
import { createRng } from './rng.ts'
import { Stopwatch } from './stopwatch.ts'
import type { NodeConfig } from '../../src/node/config.ts'
import type { SimulationTuning } from '../../src/net/libp2p.ts'
import type { LogLevel } from '../../src/logger.ts'
import type { Rng } from './rng.ts'
import type { PeerId } from '@libp2p/interface'

export interface SimClusterInit {
  nodes: number
  groupSize?: number
  /** One-way delay added to every memory-transport message. */
  latencyMs?: number
  seed?: number
  heartbeatIntervalMs?: number
  offlineAfterMs?: number
  joinSettleMs?: number
  /** Give every node an HTTP API on 127.0.0.1 (random port). */
  http?: boolean
  /** Start nodes one after another (each ready before the next) instead of together. */
  sequential?: boolean
  /** Per-node config overrides, by index. */
  configure?: (index: number) => Partial<NodeConfig>
  /** Nodes every other node bootstraps from (the first ones started); default 1. */
  bootstrapNodes?: number
  /**
   * Start the nodes after the bootstrap ones in batches of this many, each batch
   * ACTIVE before the next starts (default: all at once). Hundreds of nodes
   * starting at the same moment in one process starve each other's dials.
   */
  bootBatch?: number
  /** How long one boot batch may take to become ready (default 120 s). */
  bootBatchTimeoutMs?: number
  /** Progress of a batched boot. */
  log?: (line: string) => void
  /** libp2p overrides for large in-process runs (plaintext, no connection monitor); default: the production stack. */
  simulation?: SimulationTuning
  /** Video job tunables (faster passes and staleness for tests). */
  video?: DsmNodeInit['video']
}

export interface WaitOptions {
  timeoutMs?: number
  message?: string
  /**
   * Check every this many ms only, not on every membership change: in a large
   * cluster a check costs milliseconds and changes arrive thousands a second.
   */
  pollMs?: number
}

export class SimCluster {
  readonly rng: Rng
  readonly root: string
  private readonly init: Required<Pick<SimClusterInit, 'groupSize' | 'latencyMs' | 'heartbeatIntervalMs' | 'offlineAfterMs' | 'joinSettleMs' | 'http'>> & SimClusterInit
  private readonly prefix = randomBytes(4).toString('hex')
  readonly secret = randomBytes(24).toString('base64url')
  private readonly running: Array<DsmNode | undefined> = []
  private readonly peerIds_: string[] = []
  private readonly overrides = new Map<number, Partial<NodeConfig>>()
  /** Pairs of node indexes that cannot reach each other, as "a:b" with a < b. */
  private readonly cut = new Set<string>()

  constructor (root: string, init: SimClusterInit) {
    this.root = root
    // Fast heartbeats, but a silence of 10 of them before OFFLINE: on a loaded 2-core machine a node can
    // miss a few, and a false OFFLINE changes who takes writes.
    this.init = { groupSize: 3, latencyMs: 0, heartbeatIntervalMs: 250, offlineAfterMs: 2500, joinSettleMs: 500, http: false, ...init }
    this.rng = createRng(init.seed ?? 1)
  }

  get size (): number { return this.running.length }

  /** The running node at `index` (throws if it is down). */
  node (index: number): DsmNode {
    const node = this.running[index]
    if (node == null) throw new Error(`sim node ${index} is not running`)
    return node
  }

  isUp (index: number): boolean { return this.running[index] != null }

  upIndexes (): number[] {
    return this.running.flatMap((n, i) => n == null ? [] : [i])
  }

  peerId (index: number): string {
    const id = this.peerIds_[index]
    if (id == null) throw new Error(`sim node ${index} never started`)
    return id
  }

  /** Peer ids by index (of nodes that started at least once). */
  peerIds (): string[] { return [...this.peerIds_] }

  address (index: number): string { return `/memory/dsm-${this.prefix}-${index}` }

  config (index: number): NodeConfig {
    return {
      ...DEFAULTS,
      dataDir: join(this.root, `node${index}`),
      listen: [this.address(index)],
      bootstrap: Array.from({ length: Math.min(this.init.bootstrapNodes ?? 1, this.peerIds_.length) }, (_, k) => k)
        .filter(k => k !== index)
        .map(k => `${this.address(k)}/p2p/${this.peerId(k)}`),
      http: { host: '127.0.0.1', port: 0 },
      // Writes need no token here (test/net/security.test.ts covers the token).
      open: true,
      // No S3 listener unless a test asks (many nodes share one host here).
      s3: null,
      // One cluster, one secret (a node configured with another is a stranger: test/net/security.test.ts).
      secret: this.secret,
      groupSize: this.init.groupSize,
      heartbeatIntervalMs: this.init.heartbeatIntervalMs,
      offlineAfterMs: this.init.offlineAfterMs,
      joinSettleMs: this.init.joinSettleMs,
      logLevel: 'silent',
      ...this.init.configure?.(index),
      ...this.overrides.get(index)
    }
  }

  /** Change a node's config for its next start (e.g. a new secret before a restart). */
  reconfigure (index: number, patch: Partial<NodeConfig>): void {
    this.overrides.set(index, { ...this.overrides.get(index), ...patch })
  }

  /** Start a new node (appended) and return its index. */
  async add (): Promise<number> {
    const index = this.running.length
    this.running.push(undefined)
    await this.boot(index)
    return index
  }

  /** Crash a node: no leave announcement. */
  async kill (index: number): Promise<void> {
    const node = this.node(index)
    this.running[index] = undefined
    await node.stop({ leave: false })
  }

  /** Clean shutdown: peers are told at once. */
  async stop (index: number): Promise<void> {
    const node = this.node(index)
    this.running[index] = undefined
    await node.stop()
  }

  /** Start a stopped node again from its data dir (same peer id, same group). */
  async restart (index: number): Promise<DsmNode> {
    if (this.running[index] != null) throw new Error(`sim node ${index} is running`)
    return this.boot(index)
  }

  /** Cut every link between side `a` and side `b` (nodes in neither keep both). */
  async partition (a: number[], b: number[]): Promise<void> {
    for (const i of a) for (const j of b) this.cut.add(pairKey(i, j))
    await Promise.all(a.flatMap(i => b.map(async j => {
      const ni = this.running[i]
      const nj = this.running[j]
      if (ni != null && nj != null) await ni.libp2p.hangUp(nj.libp2p.peerId).catch(() => {})
    })))
  }

  /** Restore every link cut by partition(). */
  heal (): void { this.cut.clear() }

  /** Wait until every running node is ACTIVE (or a spare). */
  async ready (options: WaitOptions = {}): Promise<void> {
    const signal = AbortSignal.timeout(options.timeoutMs ?? 30_000)
    await Promise.all(this.upIndexes().map(async i => this.node(i).ready({ signal })))
  }

  /** Re-check `condition` on every membership change of any node until it holds. */
  async waitFor (condition: () => boolean, options: WaitOptions = {}): Promise<void> {
    if (condition()) return
    const timeoutMs = options.timeoutMs ?? 15_000
    await new Promise<void>((resolve, reject) => {
      const nodes = this.upIndexes().map(i => this.node(i))
      const check = (): void => {
        let ok = false
        try { ok = condition() } catch {}
        if (ok) { done(); resolve() }
      }
      // Membership changes drive most conditions; the interval covers the rest (e.g. disk state).
      const listen = options.pollMs == null
      const timer = setInterval(check, options.pollMs ?? 50)
      const deadline = setTimeout(() => { done(); reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${options.message ?? 'condition'}`)) }, timeoutMs)
      const done = (): void => {
        clearInterval(timer)
        clearTimeout(deadline)
        if (listen) for (const n of nodes) if (n.isStarted()) n.membership.view.removeEventListener('change', check)
      }
      if (listen) for (const n of nodes) n.membership.view.addEventListener('change', check)
    })
  }

  /** Stop every node and remove the data: all at once and without leave notices (nobody stays to hear them). */
  async close (): Promise<void> {
    await Promise.all(this.upIndexes().map(async i => this.kill(i).catch(() => {})))
    await rm(this.root, { recursive: true, force: true })
  }

  private async boot (index: number): Promise<DsmNode> {
    const level = process.env.DSM_SIM_LOG_LEVEL as LogLevel | undefined
    const node = new DsmNode({
      config: this.config(index),
      simulation: {
        transport: 'memory',
        memoryLatencyMs: this.init.latencyMs,
        dhtInitialQuerySelfIntervalMs: 50,
        libp2p: this.init.simulation,
        connectionGater: {
          denyDialPeer: (peer: PeerId) => this.isCut(index, peer),
          denyInboundEncryptedConnection: (peer: PeerId) => this.isCut(index, peer)
        }
      },
      http: this.init.http,
      ...(this.init.video != null ? { video: this.init.video } : {}),
      logger: level != null ? createLogger(level, { sim: index }) : silentLogger
    })
    await node.start()
    this.running[index] = node
    this.peerIds_[index] = node.peerId
    return node
  }

  private isCut (index: number, peer: PeerId): boolean {
    const other = this.peerIds_.indexOf(peer.toString())
    return other !== -1 && this.cut.has(pairKey(index, other))
  }

  /** Boot nodes [from, to) `batch` at a time, each batch ready before the next. */
  private async bootInBatches (from: number, to: number, batch: number): Promise<void> {
    const started = Date.now()
    await this.batchReady(this.upIndexes())
    for (let first = from; first < to; first += batch) {
      const indexes = Array.from({ length: Math.min(batch, to - first) }, (_, k) => first + k)
      const watch = new Stopwatch()
      await Promise.all(indexes.map(async i => this.boot(i)))
      // When each node got ready: a batch held up by a few late nodes looks different from a slow one.
      const readyAfterS = (await this.batchReady(indexes)).map(at => (at - watch.startedMs) / 1000).sort((a, b) => a - b)
      const q = (f: number): string => (readyAfterS[Math.floor(f * (readyAfterS.length - 1))] ?? 0).toFixed(0)
      this.init.log?.(`booted ${first + indexes.length}/${to} nodes after ${((Date.now() - started) / 1000).toFixed(0)} s ` +
        `(batch: half ready after ${q(0.5)} s, 90 % after ${q(0.9)} s, all after ${watch})`)
    }
  }

  /** Wait for a boot batch: when each node was ready (ms since the epoch); a timeout names the nodes that were not and their state. */
  private async batchReady (indexes: number[]): Promise<number[]> {
    const timeoutMs = this.init.bootBatchTimeoutMs ?? 120_000
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      return await Promise.all(indexes.map(async i => { await this.node(i).ready({ signal }); return Date.now() }))
    } catch (err) {
      const late = indexes.filter(i => this.node(i).status.state !== 'ACTIVE').map(i => `${i}:${this.node(i).status.state}/${this.node(i).status.group ?? '-'}`)
      throw new Error(`boot batch not ready after ${timeoutMs} ms: ${late.join(' ')}`, { cause: err })
    }
  }

  /** Boot the initial nodes: node 0 first (everyone bootstraps from it). */
  async bootAll (count: number): Promise<void> {
    for (let i = 0; i < count; i++) this.running.push(undefined)
    // The bootstrap nodes first, one by one: everyone else needs their peer ids.
    const seeds = Math.max(1, Math.min(this.init.bootstrapNodes ?? 1, count))
    for (let i = 0; i < seeds; i++) await this.boot(i)
    if (this.init.sequential === true) {
      await this.node(0).ready()
      for (let i = seeds; i < count; i++) {
        await this.boot(i)
        await this.node(i).ready({ signal: AbortSignal.timeout(30_000) })
      }
    } else if (this.init.bootBatch != null) {
      await this.bootInBatches(seeds, count, this.init.bootBatch)
    } else {
      await Promise.all(Array.from({ length: count - seeds }, async (_, k) => this.boot(k + seeds)))
    }
  }
}

function pairKey (a: number, b: number): string {
  return a < b ? `${a}:${b}` : `${b}:${a}`
}

export async function createSimCluster (init: SimClusterInit): Promise<SimCluster> {
  const root = await mkdtemp(join(tmpdir(), 'dsm-sim-'))
  const cluster = new SimCluster(root, init)
  try {
    await cluster.bootAll(init.nodes)
  } catch (err) {
    await cluster.close()
    throw err
  }
  return cluster
}

/** Every byte of a file as `node` reads it (located, fetched and verified the way clients read). */
export async function readWhole (node: DsmNode, id: string, timeouts: { openMs?: number, readMs?: number } = {}): Promise<Uint8Array> {
  const signal = (ms?: number): AbortSignal | undefined => ms != null ? AbortSignal.timeout(ms) : undefined
  const located = await node.replica.open(id, { signal: signal(timeouts.openMs) })
  const parts: Uint8Array[] = []
  for await (const p of node.replica.read(located, 0, located.manifest.size, { signal: signal(timeouts.readMs) })) parts.push(p)
  return Buffer.concat(parts)
}
