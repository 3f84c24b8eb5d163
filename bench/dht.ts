/**
 * DHT lookups and membership-gossip cost as the cluster grows: in-process
 * clusters of real DsmNodes (test/sim/cluster.ts: memory transport with a
 * simulated one-way link latency; groups of 3 given with --group, see
 * startCluster) of 16, 64 and 256 nodes (`--sizes=`). Per size, once every
 * node is ACTIVE and kad-dht's routing-table refresh has run once on every
 * node (settleRouting):
 *
 * - gossip first, while no lookup runs: bytes each node sends on the
 *   gossipsub protocols per second over a steady-state window, counted at the
 *   yamux layer (every frame of a /meshsub/ stream, its 12-byte header
 *   included; TLS adds its record overhead on top, reported as the ratio of
 *   all bytes on the memory transport to all yamux bytes); heartbeats
 *   delivered and gossipsub RPC messages received per node per second. The
 *   heartbeat interval is dsm's 2 s where this host carries it and grows
 *   with N² above (heartbeatFor); the bench publishes the heartbeats on an
 *   evenly phased schedule (driveHeartbeats), and every figure is also given
 *   per delivered heartbeat and converted back to 2 s;
 * - findProviders for keys provided by one node, from nodes that are not the
 *   provider: time to the first provider, query-tree depth of the peer that
 *   answered, peers queried until then; and full getClosestPeers walks;
 * - baseline, same cluster, same moment: right before each lookup, one ping
 *   from the querier to a peer it is connected to (stream open + 32-byte
 *   echo — what every kad-dht request costs too, since kad opens a stream
 *   per request).
 *
 * libp2p's connection monitor is off on every node (see run()).
 */
import { createHash } from 'node:crypto'
import { rmSync } from 'node:fs'
import { arch, cpus, loadavg, release, totalmem } from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { HEARTBEAT_INTERVAL_MS } from '../src/constants.ts'
import { createSimCluster } from '../test/sim/cluster.ts'
import { createRng } from '../test/sim/rng.ts'
import { GossipMeter, WireMeter } from './dht-meters.ts'
import { percentile, printTable, writeResults } from './lib.ts'
import type { DsmNode } from '../src/node/dsm-node.ts'
import type { SimCluster } from '../test/sim/cluster.ts'
import type { Rng } from '../test/sim/rng.ts'
import type { PeerId } from '@libp2p/interface'
import type { SingleKadDHT } from '@libp2p/kad-dht'

/** Nodes every other node bootstraps from: one seed would carry every first dial of 255 nodes. */
const BOOTSTRAP_NODES = 4

/** Data dirs of the cluster running now, removed even when the run dies. */
let liveRoot: string | undefined
function removeLiveRoot (): void {
  if (liveRoot != null) rmSync(liveRoot, { recursive: true, force: true })
}

// ---- helpers -------------------------------------------------------------

function mean (values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length
}

function sum (values: number[]): number { return values.reduce((a, b) => a + b, 0) }

/** What we use of kad-dht's routing table (the class has more than its public interface shows). */
interface Kad {
  routingTable: { size: number, kBucketSize: number, closestPeers: (kadId: Uint8Array, options: { count: number }) => PeerId[] }
}

function dht (node: DsmNode): SingleKadDHT & Kad {
  // dsm runs one DHT (server mode, /dsm/kad/1.0.0): the routing table is on the service itself.
  return node.libp2p.services.dht as unknown as SingleKadDHT & Kad
}

function log (msg: string): void {
  process.stderr.write(`[dht bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

function argOf (args: string[], name: string): string | undefined {
  return args.find(a => a.startsWith(`--${name}=`))?.slice(name.length + 3)
}

async function randomCid (rng: Rng): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(rng.bytes(32)))
}

function kadId (bytes: Uint8Array): Uint8Array {
  // kad-dht's convertBuffer: the XOR space is sha256 of the key bytes.
  return createHash('sha256').update(bytes).digest()
}

// ---- phases --------------------------------------------------------------

interface StartInit { nodes: number, latencyMs: number, batch: number, seed: number, connectionMonitor: boolean }

/**
 * The nodes' own heartbeat interval: longer than any run, so their timers never fire and only the
 * bench's schedule (and state changes, which dsm announces at once) publishes heartbeats.
 */
const PARKED_HEARTBEAT_MS = 3_600_000

/** Heartbeats are published from this long before the gossip window opens, so it starts in steady state. */
const WARM_UP_MS = 5_000

/**
 * Publish every node's heartbeat (Membership.announce: what dsm's timer calls)
 * at interval `intervalMs`, node k of N at phase (k + ½)/N of the interval:
 * the phases of a cluster whose nodes started at different times. Over a
 * window shorter than the interval, only the nodes whose turn falls in it
 * publish, exactly as in a steady state at that interval; so a large
 * cluster's rate can be measured on a window shorter than its interval, and
 * nodes that all booted within seconds do not publish in one burst.
 * Returns the number of heartbeats published in [warm-up end, end).
 */
async function driveHeartbeats (cluster: SimCluster, intervalMs: number, warmUpMs: number, windowMs: number): Promise<number> {
  const up = cluster.upIndexes()
  const events: Array<{ at: number, index: number }> = []
  up.forEach((index, k) => {
    for (let at = (k + 0.5) / up.length * intervalMs; at < warmUpMs + windowMs; at += intervalMs) events.push({ at, index })
  })
  events.sort((a, b) => a.at - b.at)
  const t0 = performance.now()
  let inWindow = 0
  for (const e of events) {
    const wait = e.at - (performance.now() - t0)
    if (wait > 0) await sleep(wait)
    if (e.at >= warmUpMs) inWindow++
    const node = cluster.node(e.index)
    // Not awaited: a slow publish must not shift the others' turns.
    node.membership.announce().catch(() => {})
  }
  const rest = warmUpMs + windowMs - (performance.now() - t0)
  if (rest > 0) await sleep(rest)
  return inWindow
}

/** How long a batch of nodes may take to become ACTIVE before the size is given up. */
const BATCH_READY_TIMEOUT_MS = 120_000

/** Where the nodes `indexes` stand: states, groups, what they see and whom they reach. */
function describe (cluster: SimCluster, indexes: number[]): string {
  const count = (values: string[]): string => Object.entries(values.reduce<Record<string, number>>((m, v) => { m[v] = (m[v] ?? 0) + 1; return m }, {})).map(([k, v]) => `${k}×${v}`).join(' ')
  const nodes = indexes.map(i => cluster.node(i))
  return [
    `states ${count(nodes.map(n => n.status.state))}`,
    `groups ${count(nodes.map(n => n.status.group ?? '-'))}`,
    `view sizes ${count(nodes.map(n => String(n.membership.view.members().length)))}`,
    `connections ${count(nodes.map(n => String(n.libp2p.getConnections().length)))}`
  ].join('; ')
}

/**
 * Seeds one by one, then the rest in batches, each batch ACTIVE before the
 * next starts. Without `connectionMonitor`, the nodes run no libp2p
 * connection monitor (SimulationTuning): see run().
 */
async function startCluster (init: StartInit): Promise<{ cluster: SimCluster, bootMs: number }> {
  const t0 = performance.now()
  const seeds = Math.min(BOOTSTRAP_NODES, init.nodes)
  const cluster = await createSimCluster({
    nodes: seeds,
    bootstrapNodes: seeds,
    latencyMs: init.latencyMs,
    // The nodes' own heartbeat timer is parked: the bench publishes their heartbeats itself (driveHeartbeats).
    heartbeatIntervalMs: PARKED_HEARTBEAT_MS,
    offlineAfterMs: 10 * PARKED_HEARTBEAT_MS,
    // Groups of 3 given up front (--group), as an operator of a large cluster may: boot is not what this bench
    // measures. (Measured when it was written, before joiners spread over the free seats: with auto-join the 16
    // nodes of a batch all picked the same group and chose again round after round, batches slowed from 13 to
    // 35 s, and a batch joining ~180 nodes was not ACTIVE after 120 s; with given groups 256 nodes were ACTIVE
    // in ~40 s. The steady state is the same.)
    groupSize: 3,
    configure: (i) => ({ group: `g${Math.floor(i / 3) + 1}` }),
    seed: init.seed,
    ...(init.connectionMonitor ? {} : { simulation: { connectionMonitor: false } })
  })
  try {
    await cluster.ready({ timeoutMs: 60_000 })
    while (cluster.size < init.nodes) {
      const n = Math.min(init.batch, init.nodes - cluster.size)
      const added = await Promise.all(Array.from({ length: n }, async () => cluster.add()))
      const loop = monitorEventLoopDelay({ resolution: 20 })
      loop.enable()
      const signal = AbortSignal.timeout(BATCH_READY_TIMEOUT_MS)
      try {
        await Promise.all(added.map(async i => cluster.node(i).ready({ signal })))
      } catch (err) {
        throw new Error(`${cluster.size - n} nodes up, the next ${n} not ACTIVE within ${BATCH_READY_TIMEOUT_MS / 1000} s: ${describe(cluster, added)}`, { cause: err })
      } finally {
        loop.disable()
      }
      log(`  ${cluster.size}/${init.nodes} nodes up (${((performance.now() - t0) / 1000).toFixed(0)} s; event-loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB)`)
    }
  } catch (err) {
    await cluster.close()
    throw err
  }
  return { cluster, bootMs: performance.now() - t0 }
}

interface RoutingStats { settleMs: number, tableSizeMean: number, tableSizeMin: number, tableSizeMax: number, connectionsMean: number, connectionsMin: number, connectionsMax: number, connectedPeersMean: number }

/** Nodes whose routing-table refresh starts together (each is a lookup per k-bucket, with dials). */
const REFRESH_BATCH = 8

/**
 * Bring the routing tables to what a cluster has after running a while, then
 * wait until they stop growing (two samples `stepMs` apart within 1%), at
 * most `maxMs`. kad-dht refreshes its table (one lookup per k-bucket) at
 * start and every 5 minutes; at start a node knows little more than the
 * bootstrap nodes, so that first refresh finds little. The bench forces the
 * next one (refreshRoutingTable, kad-dht's own job), a few nodes at a time.
 * Connections stay open after the lookups (libp2p closes none below
 * maxConnections), as on a real node.
 */
async function settleRouting (cluster: SimCluster, stepMs: number, maxMs: number): Promise<RoutingStats> {
  const t0 = performance.now()
  const sizes = (): number[] => cluster.upIndexes().map(i => dht(cluster.node(i)).routingTable.size)
  const up = cluster.upIndexes()
  for (let k = 0; k < up.length; k += REFRESH_BATCH) {
    // refreshRoutingTable() returns at once; its lookups run on (kad-dht times each out after 30 s).
    await Promise.all(up.slice(k, k + REFRESH_BATCH).map(async i => dht(cluster.node(i)).refreshRoutingTable()))
    await sleep(1000)
  }
  // Settled: neither the tables nor the connections (the refresh lookups dial) grew by 1% over a step.
  const connections = (): number => sum(up.map(i => cluster.node(i).libp2p.getConnections().length))
  let last = [mean(sizes()), connections()]
  while (performance.now() - t0 < maxMs) {
    await sleep(stepMs)
    const now = [mean(sizes()), connections()]
    if (now.every((v, k) => v <= (last[k] ?? 0) * 1.01)) break
    last = now
  }
  const s = sizes()
  const conns = cluster.upIndexes().map(i => cluster.node(i).libp2p.getConnections().length)
  const peers = cluster.upIndexes().map(i => new Set(cluster.node(i).libp2p.getConnections().map(c => c.remotePeer.toString())).size)
  return {
    settleMs: performance.now() - t0,
    tableSizeMean: mean(s),
    tableSizeMin: Math.min(...s),
    tableSizeMax: Math.max(...s),
    connectionsMean: mean(conns),
    connectionsMin: Math.min(...conns),
    connectionsMax: Math.max(...conns),
    connectedPeersMean: mean(peers)
  }
}

interface PingStats { samples: number, callMsP50: number, callMsP95: number, echoMsP50: number }

/**
 * Baseline: one ping from `node` to a random peer it is connected to (ms: the
 * whole call, stream open included, and the ping service's own echo figure).
 */
async function pingOnce (node: DsmNode, rng: Rng): Promise<{ call: number, echo: number } | undefined> {
  const conns = node.libp2p.getConnections()
  if (conns.length === 0) return undefined
  const t0 = performance.now()
  try {
    // The ping service's own figure is the echo only (Date.now, ms steps); ours includes opening the stream.
    const echo = await node.libp2p.services.ping.ping(rng.pick(conns).remotePeer, { signal: AbortSignal.timeout(5000) })
    return { call: performance.now() - t0, echo }
  } catch {
    // A connection closing under us (or the one-ping-at-a-time limit) loses the sample, not the run.
    return undefined
  }
}

interface ProvideStats { keys: number, msP50: number, msP95: number, failures: number }

async function provideKeys (cluster: SimCluster, rng: Rng, count: number): Promise<{ keys: Array<{ cid: CID, provider: number }>, stats: ProvideStats }> {
  const up = cluster.upIndexes()
  const keys = await Promise.all(Array.from({ length: count }, async () => ({ cid: await randomCid(rng), provider: rng.pick(up) })))
  const times: number[] = []
  let failures = 0
  // Two at a time (per-file provider records were removed from dsm; this measures what they would cost).
  for (let k = 0; k < keys.length; k += 2) {
    await Promise.all(keys.slice(k, k + 2).map(async ({ cid, provider }) => {
      const t0 = performance.now()
      try {
        for await (const _ of dht(cluster.node(provider)).provide(cid, { signal: AbortSignal.timeout(60_000) })) { /* drain */ }
        times.push(performance.now() - t0)
      } catch {
        failures++
      }
    }))
  }
  return { keys, stats: { keys: keys.length, msP50: percentile(times, 50), msP95: percentile(times, 95), failures } }
}

interface Lookup {
  /** Time to the first PROVIDER event (ms). */
  ms: number
  /** Query-tree depth of the peer that answered: 0 = own provider store, 1 = a peer of the own routing table, … */
  hops: number
  /** Distinct peers a request was sent to before the answer. */
  queried: number
  /** Of those, peers the querier had no connection to (a dial and a TLS handshake first). */
  dialed: number
}

/**
 * One findProviders from `querier`, stopped at the first provider. Depth:
 * the query starts from the k closest peers of the querier's routing table
 * (computed as kad-dht's query manager does, just before it), depth 1; a peer
 * first named in the `closer` list of a depth-d responder is at depth d+1.
 */
async function findFirstProvider (node: DsmNode, cid: CID): Promise<Lookup | undefined> {
  const d = dht(node)
  const self = node.libp2p.peerId.toString()
  const depth = new Map<string, number>()
  for (const p of d.routingTable.closestPeers(kadId(cid.multihash.bytes), { count: d.routingTable.kBucketSize })) depth.set(p.toString(), 1)
  const queried = new Set<string>()
  const connected = new Set(node.libp2p.getConnections().map(c => c.remotePeer.toString()))
  const controller = new AbortController()
  const t0 = performance.now()
  try {
    for await (const ev of d.findProviders(cid, { signal: AbortSignal.any([controller.signal, AbortSignal.timeout(30_000)]) })) {
      if (ev.name === 'SEND_QUERY') queried.add(ev.to.toString())
      else if (ev.name === 'PEER_RESPONSE') {
        const from = ev.from.toString()
        const dFrom = depth.get(from) ?? 1
        for (const c of ev.closer) if (!depth.has(c.id.toString())) depth.set(c.id.toString(), dFrom + 1)
      } else if (ev.name === 'PROVIDER' && ev.providers.length > 0) {
        const from = ev.from.toString()
        return { ms: performance.now() - t0, hops: from === self ? 0 : depth.get(from) ?? 1, queried: queried.size, dialed: [...queried].filter(p => !connected.has(p)).length }
      }
    }
  } catch {
    return undefined
  } finally {
    controller.abort()
  }
  return undefined
}

interface Walk { ms: number, queried: number, maxDepth: number }

/** A full getClosestPeers walk for a random key, to the query's own end. */
async function closestPeersWalk (node: DsmNode, key: Uint8Array): Promise<Walk | undefined> {
  const d = dht(node)
  const depth = new Map<string, number>()
  for (const p of d.routingTable.closestPeers(kadId(key), { count: d.routingTable.kBucketSize })) depth.set(p.toString(), 1)
  const queried = new Set<string>()
  let maxDepth = 0
  const t0 = performance.now()
  try {
    for await (const ev of d.getClosestPeers(key, { signal: AbortSignal.timeout(30_000) })) {
      if (ev.name === 'SEND_QUERY') queried.add(ev.to.toString())
      else if (ev.name === 'PEER_RESPONSE') {
        const dFrom = depth.get(ev.from.toString()) ?? 1
        maxDepth = Math.max(maxDepth, dFrom)
        for (const c of ev.closer) if (!depth.has(c.id.toString())) depth.set(c.id.toString(), dFrom + 1)
      }
    }
  } catch {
    return undefined
  }
  return { ms: performance.now() - t0, queried: queried.size, maxDepth }
}

interface LookupStats {
  lookups: number
  failures: number
  localShare: number
  firstProviderMsP50: number
  firstProviderMsP95: number
  hopsMean: number
  hopsP95: number
  hopsHistogram: Record<string, number>
  queriedMean: number
  queriedP95: number
  dialedMean: number
  /** The same figures over the lookups that had to ask the network (not answered from the own store). */
  remote: { lookups: number, msP50: number, msP95: number, hopsMean: number, queriedMean: number }
  closest: { walks: number, failures: number, msP50: number, msP95: number, queriedMean: number, queriedP95: number, maxDepthMean: number, maxDepthMax: number }
}

async function measureLookups (cluster: SimCluster, rng: Rng, keys: Array<{ cid: CID, provider: number }>, lookups: number, walks: number): Promise<{ stats: LookupStats, ping: PingStats }> {
  const up = cluster.upIndexes()
  const results: Lookup[] = []
  const pings: Array<{ call: number, echo: number }> = []
  let failures = 0
  // One at a time: the figure is a lookup's own latency, not the host's throughput.
  for (let k = 0; k < lookups; k++) {
    const key = keys[k % keys.length]
    if (key == null) break
    let querier = rng.pick(up)
    while (querier === key.provider) querier = rng.pick(up)
    // The baseline right before each lookup, from the same node: the host's load changes over the run.
    const p = await pingOnce(cluster.node(querier), rng)
    if (p != null) pings.push(p)
    const r = await findFirstProvider(cluster.node(querier), key.cid)
    if (r == null) failures++
    else results.push(r)
  }
  const ping: PingStats = {
    samples: pings.length,
    callMsP50: percentile(pings.map(p => p.call), 50),
    callMsP95: percentile(pings.map(p => p.call), 95),
    echoMsP50: percentile(pings.map(p => p.echo), 50)
  }
  const walkResults: Walk[] = []
  let walkFailures = 0
  for (let k = 0; k < walks; k++) {
    const w = await closestPeersWalk(cluster.node(rng.pick(up)), rng.bytes(32))
    if (w == null) walkFailures++
    else walkResults.push(w)
  }
  const hops = results.map(r => r.hops)
  const remote = results.filter(r => r.hops > 0)
  const histogram: Record<string, number> = {}
  for (const h of hops) histogram[String(h)] = (histogram[String(h)] ?? 0) + 1
  const stats: LookupStats = {
    lookups: results.length,
    failures,
    localShare: results.length === 0 ? NaN : (results.length - remote.length) / results.length,
    firstProviderMsP50: percentile(results.map(r => r.ms), 50),
    firstProviderMsP95: percentile(results.map(r => r.ms), 95),
    hopsMean: mean(hops),
    hopsP95: percentile(hops, 95),
    hopsHistogram: histogram,
    queriedMean: mean(results.map(r => r.queried)),
    queriedP95: percentile(results.map(r => r.queried), 95),
    dialedMean: mean(results.map(r => r.dialed)),
    remote: {
      lookups: remote.length,
      msP50: percentile(remote.map(r => r.ms), 50),
      msP95: percentile(remote.map(r => r.ms), 95),
      hopsMean: mean(remote.map(r => r.hops)),
      queriedMean: mean(remote.map(r => r.queried))
    },
    closest: {
      walks: walkResults.length,
      failures: walkFailures,
      msP50: percentile(walkResults.map(w => w.ms), 50),
      msP95: percentile(walkResults.map(w => w.ms), 95),
      queriedMean: mean(walkResults.map(w => w.queried)),
      queriedP95: percentile(walkResults.map(w => w.queried), 95),
      maxDepthMean: mean(walkResults.map(w => w.maxDepth)),
      maxDepthMax: Math.max(...walkResults.map(w => w.maxDepth))
    }
  }
  return { stats, ping }
}

interface GossipStats {
  windowS: number
  heartbeatIntervalMs: number
  /** Bytes sent on /meshsub/* streams (yamux frames, headers included) per node per second. */
  bytesPerNodePerS: { mean: number, p95: number, max: number, min: number }
  /** Of every yamux byte the nodes sent in the window, the share that was gossipsub. */
  gossipShareOfYamux: number
  /** All bytes on the memory transport (TLS records) / all yamux bytes: the encryption overhead. */
  tlsOverYamux: number
  /** Every yamux byte sent, all protocols, per node per second. */
  allBytesPerNodePerS: number
  /** Bytes per node per second by protocol (mean over nodes). */
  byProtocol: Record<string, number>
  /** Heartbeats published in the window, and the share of their N−1 deliveries each that happened in it. */
  published: number
  deliveredShare: number
  /** Heartbeats delivered to the application per node per second, and what (N−1)/interval predicts. */
  deliveredPerNodePerS: number
  expectedPerNodePerS: number
  /** Mean heartbeat payload (CBOR) bytes. */
  heartbeatPayloadBytes: number
  /** Gossip bytes received per delivered heartbeat (sent = received summed over the cluster). */
  gossipBytesPerDelivered: number
  /**
   * The same cost at dsm's default 2 s interval: bytes per delivered heartbeat × (N−1) / 2 s. Gossip
   * bytes are per message (copies to mesh peers, IHAVEs for the message over gossipsub's 3-heartbeat
   * gossip window), so they scale with the heartbeat rate.
   */
  bytesPerNodePerSAt2s: number
  /** RPC messages received per node per second, duplicates included; IHAVE / IWANT / IDONTWANT ids. */
  rpcMessagesPerNodePerS: number
  ihaveIdsPerNodePerS: number
  iwantIdsPerNodePerS: number
  idontwantIdsPerNodePerS: number
  unattributedBytes: number
  handshakeBytes: number
  /** CPU of this process over the window, in cores (2 = both cores), and event-loop delay. */
  cpuCores: number
  loopDelayMsP50: number
  loopDelayMsP99: number
  loopDelayMsMax: number
  loadavg1: number
}

async function measureGossip (cluster: SimCluster, wire: WireMeter, gossip: GossipMeter, windowS: number, heartbeatIntervalMs: number): Promise<GossipStats> {
  const n = cluster.size
  const loop = monitorEventLoopDelay({ resolution: 10 })
  const driving = driveHeartbeats(cluster, heartbeatIntervalMs, WARM_UP_MS, windowS * 1000)
  await sleep(WARM_UP_MS)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  wire.start(n)
  gossip.start(n)
  loop.enable()
  const published = await driving
  loop.disable()
  wire.stop()
  gossip.stop()
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const isGossip = (label: string): boolean => label.startsWith('/meshsub/') || label.startsWith('/floodsub/')
  const up = cluster.upIndexes()
  const perNodeGossip = up.map(i => sum([...(wire.yamux[i] ?? new Map<string, number>()).entries()].filter(([l]) => isGossip(l)).map(([, b]) => b)) / seconds)
  const perNodeAll = up.map(i => sum([...(wire.yamux[i] ?? new Map<string, number>()).values()]) / seconds)
  const byProtocol: Record<string, number> = {}
  for (const i of up) {
    for (const [label, bytes] of wire.yamux[i] ?? []) byProtocol[label] = (byProtocol[label] ?? 0) + bytes / seconds / up.length
  }
  const delivered = sum(up.map(i => gossip.delivered[i] ?? 0))
  const perNode = (values: number[]): number => sum(up.map(i => values[i] ?? 0)) / up.length / seconds
  return {
    windowS: seconds,
    heartbeatIntervalMs,
    bytesPerNodePerS: { mean: mean(perNodeGossip), p95: percentile(perNodeGossip, 95), max: Math.max(...perNodeGossip), min: Math.min(...perNodeGossip) },
    gossipShareOfYamux: sum(perNodeGossip) / sum(perNodeAll),
    tlsOverYamux: sum(up.map(i => wire.wire[i] ?? 0)) / seconds / sum(perNodeAll),
    allBytesPerNodePerS: mean(perNodeAll),
    byProtocol,
    published,
    deliveredShare: delivered / (published * (n - 1)),
    deliveredPerNodePerS: perNode(gossip.delivered),
    expectedPerNodePerS: (n - 1) / (heartbeatIntervalMs / 1000),
    heartbeatPayloadBytes: sum(up.map(i => gossip.deliveredBytes[i] ?? 0)) / delivered,
    gossipBytesPerDelivered: sum(perNodeGossip) * seconds / delivered,
    bytesPerNodePerSAt2s: sum(perNodeGossip) * seconds / delivered * (n - 1) / (HEARTBEAT_INTERVAL_MS / 1000),
    rpcMessagesPerNodePerS: perNode(gossip.rpcMessages),
    ihaveIdsPerNodePerS: perNode(gossip.ihaveIds),
    iwantIdsPerNodePerS: perNode(gossip.iwantIds),
    idontwantIdsPerNodePerS: perNode(gossip.idontwantIds),
    unattributedBytes: wire.unattributed,
    handshakeBytes: wire.handshakes,
    cpuCores: (cpu.user + cpu.system) / 1e6 / seconds,
    loopDelayMsP50: loop.percentile(50) / 1e6,
    loopDelayMsP99: loop.percentile(99) / 1e6,
    loopDelayMsMax: loop.max / 1e6,
    loadavg1: loadavg()[0] ?? NaN
  }
}

// ---- one cluster size ----------------------------------------------------

interface SizeResult {
  nodes: number
  heartbeatIntervalMs: number
  latencyMs: number
  bootstrapNodes: number
  bootMs: number
  routing: RoutingStats
  ping: PingStats
  provide: ProvideStats
  lookups: LookupStats
  /** CPU of the process (in cores) and its event-loop delay while provides and lookups ran. */
  lookupHost: { cpuCores: number, loopDelayMsP50: number, loopDelayMsP99: number }
  gossip: GossipStats
  peakRssMiB: number
}

interface RunInit extends StartInit { heartbeatIntervalMs: number, windowS: number, keys: number, lookups: number, walks: number }

async function runSize (init: RunInit, wire: WireMeter, gossip: GossipMeter): Promise<SizeResult> {
  log(`N=${init.nodes}: starting (heartbeat ${init.heartbeatIntervalMs / 1000} s, window ${init.windowS} s, latency ${init.latencyMs} ms)`)
  const { cluster, bootMs } = await startCluster(init)
  liveRoot = cluster.root
  const rng = createRng(init.seed + 1)
  let peakRss = process.memoryUsage().rss
  const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss) }, 1000)
  try {
    for (const i of cluster.upIndexes()) {
      const node = cluster.node(i)
      for (const c of node.libp2p.getConnections()) wire.register(i, c)
      node.libp2p.addEventListener('connection:open', (evt) => { wire.register(i, evt.detail) })
      gossip.register(i, node)
    }
    log(`N=${init.nodes}: ${cluster.size} nodes ACTIVE in ${(bootMs / 1000).toFixed(1)} s; letting routing tables settle`)
    const routing = await settleRouting(cluster, 5000, 150_000)
    log(`N=${init.nodes}: routing table ${routing.tableSizeMean.toFixed(1)} peers (min ${routing.tableSizeMin}), ${routing.connectionsMean.toFixed(1)} connections to ${routing.connectedPeersMean.toFixed(1)} peers per node (min ${routing.connectionsMin}); gossip window ${init.windowS} s`)
    // Gossip first, while no lookup runs: the window is membership traffic in steady state (plus kad's own upkeep).
    const gossipStats = await measureGossip(cluster, wire, gossip, init.windowS, init.heartbeatIntervalMs)
    log(`N=${init.nodes}: gossip ${(gossipStats.bytesPerNodePerS.mean / 1024).toFixed(1)} KiB/s per node, ${gossipStats.deliveredPerNodePerS.toFixed(2)}/${gossipStats.expectedPerNodePerS.toFixed(2)} heartbeats/s delivered (${gossipStats.published} published, ${(gossipStats.deliveredShare * 100).toFixed(0)}% of their deliveries seen), CPU ${gossipStats.cpuCores.toFixed(2)} cores`)
    // How busy the one process hosting every node is while provides and lookups run: their times are mostly its CPU.
    const loop = monitorEventLoopDelay({ resolution: 10 })
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    loop.enable()
    const provided = await provideKeys(cluster, rng, init.keys)
    log(`N=${init.nodes}: provided ${init.keys} keys (p50 ${provided.stats.msP50.toFixed(0)} ms); ${init.lookups} lookups, ${init.walks} walks`)
    const { stats: lookups, ping } = await measureLookups(cluster, rng, provided.keys, init.lookups, init.walks)
    loop.disable()
    const cpu = process.cpuUsage(cpu0)
    const host = {
      cpuCores: (cpu.user + cpu.system) / 1e6 / ((performance.now() - t0) / 1000),
      loopDelayMsP50: loop.percentile(50) / 1e6,
      loopDelayMsP99: loop.percentile(99) / 1e6
    }
    return {
      nodes: init.nodes,
      heartbeatIntervalMs: init.heartbeatIntervalMs,
      latencyMs: init.latencyMs,
      bootstrapNodes: Math.min(BOOTSTRAP_NODES, init.nodes),
      bootMs,
      routing,
      ping,
      provide: provided.stats,
      lookups,
      lookupHost: host,
      gossip: gossipStats,
      peakRssMiB: peakRss / 1024 / 1024
    }
  } finally {
    clearInterval(rssTimer)
    const t = performance.now()
    await cluster.close()
    liveRoot = undefined
    log(`N=${init.nodes}: stopped in ${((performance.now() - t) / 1000).toFixed(1)} s`)
  }
}

/**
 * The heartbeat interval at `nodes`: `auto` (default) is 2 s (dsm's default)
 * up to 16 nodes and 2 s × (N/16)² above — every heartbeat reaches N−1 nodes,
 * so the cluster-wide message rate grows as N²/interval, and one process on
 * this host carries N=16's rate at 2 s but not N=64's (measured: at 2 s the
 * 64-node sim starved and fell apart). Or `--heartbeat=2000` for every size,
 * or per size: `--heartbeat=16:2000,64:32000`.
 */
function heartbeatFor (spec: string, nodes: number): number {
  if (spec === 'auto') return HEARTBEAT_INTERVAL_MS * Math.max(1, (nodes / 16) ** 2)
  const parts = spec.split(',')
  for (const p of parts) {
    const [n, ms] = p.includes(':') ? p.split(':') : [undefined, p]
    if (n == null || Number(n) === nodes) return Number(ms)
  }
  throw new Error(`--heartbeat=${spec} names no interval for N=${nodes}`)
}

export async function run (args: string[]): Promise<void> {
  const sizes = (argOf(args, 'sizes') ?? '16,64,256').split(',').map(Number)
  const heartbeatSpec = argOf(args, 'heartbeat') ?? 'auto'
  const latencyMs = Number(argOf(args, 'latency') ?? 1)
  const windowSpec = argOf(args, 'window') ?? 'auto'
  const keys = Number(argOf(args, 'keys') ?? 6)
  const lookups = Number(argOf(args, 'lookups') ?? 30)
  const walks = Number(argOf(args, 'walks') ?? 4)
  const batch = Number(argOf(args, 'batch') ?? 16)
  const seed = Number(argOf(args, 'seed') ?? 7)
  // libp2p's connection monitor pings every connection every 10 s. Hosting N nodes in one process, that is
  // most of the idle CPU (measured at N=64, ~35 connections a node: 5.9 ms of CPU per node per second with
  // it, 0.8 without), and once the shared event loop lags past its 5 s ping timeout it aborts connections
  // wholesale (abortConnectionOnPingFailure): the sim partitions itself. Neither is gossip or DHT traffic, and
  // a real node has its own CPU, so it is off unless --connection-monitor=on.
  const connectionMonitor = argOf(args, 'connection-monitor') === 'on'
  // A libp2p race, not ours: yamux sends a new stream's first window update from a microtask, and when the
  // connection closed in between, send() throws StreamStateError there, where nothing can catch it; the
  // process dies (a dsm node would too). Count such faults and go on; anything else still ends the run.
  const libp2pFaults: string[] = []
  process.on('uncaughtException', (err) => {
    if (err.name === 'StreamStateError') {
      libp2pFaults.push(err.message)
      return
    }
    process.stderr.write(`${err.stack ?? String(err)}\n`)
    removeLiveRoot()
    process.exit(1)
  })
  process.once('SIGINT', () => { removeLiveRoot(); process.exit(130) })
  const t0 = performance.now()
  const loadBefore = loadavg()
  const wire = new WireMeter()
  const gossip = new GossipMeter()
  const results: SizeResult[] = []
  const failed: Array<{ nodes: number, heartbeatIntervalMs: number, afterS: number, error: string }> = []
  for (const nodes of sizes) {
    const heartbeatIntervalMs = heartbeatFor(heartbeatSpec, nodes)
    const ts = performance.now()
    try {
      const windowS = windowSpec === 'auto' ? Math.min(60, Math.max(20, heartbeatIntervalMs / 1000)) : Number(windowSpec)
      results.push(await runSize({ nodes, heartbeatIntervalMs, latencyMs, batch, windowS, keys, lookups, walks, seed, connectionMonitor }, wire, gossip))
    } catch (err) {
      // A size the host cannot carry is a result too: say where it stopped, go on with the others.
      const error = err instanceof Error ? err.message : String(err)
      log(`N=${nodes}: did not run: ${error}`)
      failed.push({ nodes, heartbeatIntervalMs, afterS: (performance.now() - ts) / 1000, error })
    }
  }
  const totalS = (performance.now() - t0) / 1000

  const f = (v: number, digits = 1): string => Number.isFinite(v) ? v.toFixed(digits) : '—'
  printTable(`DHT lookups (memory transport, ${latencyMs} ms one-way link latency; k = 20, α = 10; one lookup at a time)`,
    ['N', 'ping p50 (ms)', 'first provider p50 / p95 (ms)', '÷ ping', 'answered from own store', 'hops mean / p95', 'peers queried mean / p95 (new dials)', 'network only: p50 ms, hops', 'getClosestPeers p50 ms, queried, depth', 'host: CPU cores, loop p99 ms'],
    results.map(r => [
      r.nodes,
      f(r.ping.callMsP50),
      `${f(r.lookups.firstProviderMsP50)} / ${f(r.lookups.firstProviderMsP95)}`,
      `${f(r.lookups.firstProviderMsP50 / r.ping.callMsP50)}×`,
      `${f(r.lookups.localShare * 100, 0)}%`,
      `${f(r.lookups.hopsMean, 2)} / ${f(r.lookups.hopsP95, 0)}`,
      `${f(r.lookups.queriedMean)} / ${f(r.lookups.queriedP95, 0)} (${f(r.lookups.dialedMean)})`,
      r.lookups.remote.lookups === 0 ? '—' : `${f(r.lookups.remote.msP50)}, ${f(r.lookups.remote.hopsMean, 2)}`,
      `${f(r.lookups.closest.msP50)}, ${f(r.lookups.closest.queriedMean)}, ${f(r.lookups.closest.maxDepthMean, 1)}`,
      `${f(r.lookupHost.cpuCores, 2)}, ${f(r.lookupHost.loopDelayMsP99, 0)}`
    ]))
  printTable('membership gossip, steady state: bytes sent on /meshsub/ streams at the yamux layer (before TLS)',
    ['N', 'heartbeat / window', 'routing table / connections', 'gossip B/s per node mean / p95', 'same at 2 s', 'heartbeats delivered /s (expected)', 'RPC msgs in /s', 'copies per heartbeat', 'IHAVE ids /s', 'B per delivered', 'TLS ×', 'CPU cores', 'loop p99 (ms)'],
    results.map(r => [
      r.nodes,
      `${r.heartbeatIntervalMs / 1000} s / ${f(r.gossip.windowS, 0)} s`,
      `${f(r.routing.tableSizeMean)} / ${f(r.routing.connectionsMean)}`,
      `${f(r.gossip.bytesPerNodePerS.mean, 0)} / ${f(r.gossip.bytesPerNodePerS.p95, 0)}`,
      f(r.gossip.bytesPerNodePerSAt2s, 0),
      `${f(r.gossip.deliveredPerNodePerS, 2)} (${f(r.gossip.expectedPerNodePerS, 2)})`,
      f(r.gossip.rpcMessagesPerNodePerS),
      f(r.gossip.rpcMessagesPerNodePerS / r.gossip.deliveredPerNodePerS),
      f(r.gossip.ihaveIdsPerNodePerS),
      f(r.gossip.gossipBytesPerDelivered, 0),
      f(r.gossip.tlsOverYamux, 2),
      f(r.gossip.cpuCores, 2),
      f(r.gossip.loopDelayMsP99, 0)
    ]))
  for (const x of failed) process.stdout.write(`\nN=${x.nodes} (heartbeat ${x.heartbeatIntervalMs / 1000} s) did not run, after ${x.afterS.toFixed(0)} s: ${x.error}\n`)
  process.stdout.write(`\nwhole run: ${totalS.toFixed(0)} s${libp2pFaults.length > 0 ? `; ${libp2pFaults.length} uncaught StreamStateError(s) from yamux survived` : ''}\n`)
  const path = writeResults('dht', {
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, arch: arch(), kernel: release(), memGiB: totalmem() / 2 ** 30, loadavgBefore: loadBefore, loadavgAfter: loadavg() },
    settings: { sizes, heartbeat: heartbeatSpec, window: windowSpec, warmUpMs: WARM_UP_MS, latencyMs, keys, lookups, walks, batch, seed, bootstrapNodes: BOOTSTRAP_NODES, connectionMonitor },
    totalS,
    libp2pFaults,
    results,
    failed
  })
  process.stdout.write(`wrote ${path}\n`)
}
