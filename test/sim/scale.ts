/**
 * How a simulation run is scaled to its size: the timing of its nodes, how
 * they boot, how often the invariants are checked, and the libp2p settings
 * that let hundreds of nodes share one process (see ./scenario.ts).
 */
import { plaintext } from '@libp2p/plaintext'
import type { SimulationTuning } from '../../src/net/libp2p.ts'
import { silentLibp2pLogger } from '../../src/net/libp2p-logger.ts'

/** The timing of a run, scaled to its size. */
export interface Timing {
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
export const DEFAULT_LATENCY_MS = 0
export const BOOTSTRAP_NODES = 3
/**
 * Group sync and upkeep stay at the production period whatever the heartbeat:
 * they are group-local (O(group) work per node), and they set how soon a
 * healed member catches up.
 */
export const SYNC_INTERVAL_MS = 2_000
/**
 * Hundreds of nodes in one process (every other test runs the production
 * stack): no encryption between objects in memory; no ping monitor and no
 * yamux keep-alive (memory links never die silently, heartbeats find dead
 * nodes); a thinner gossip mesh and a slower gossipsub heartbeat, since every
 * copy of every message and every IHAVE round is paid by the one shared CPU
 * (6.5 copies of each heartbeat per node at D=6, 2.7 at D=3; IHAVE to a
 * quarter of ~110 topic peers every round cost 1,100 IHAVEs a second at 200
 * nodes, only Dlazy: 70; a node's own heartbeat goes to its mesh, not flooded
 * to ~110 peers); DHT queries 3 wide over buckets of 10 (every peer a query
 * dials stays connected, and each connection costs both ends identify,
 * gossip and DHT set-up); and libp2p's debug logger off (made per stream,
 * each checking the terminal). The last two took a 150-node boot from 285 s
 * to 226 s.
 */
export const SIM_LIBP2P: SimulationTuning = {
  connectionEncrypters: [plaintext()],
  connectionMonitor: false,
  muxerKeepAlive: false,
  gossipsub: { D: 3, Dlo: 2, Dhi: 4, Dlazy: 2, gossipFactor: 0, heartbeatInterval: 3_000, floodPublish: false },
  dht: { kBucketSize: 10, alpha: 3 },
  logger: silentLibp2pLogger()
}

/**
 * Timing scaled to the cluster. Every node hears every heartbeat, so in one
 * process the membership load grows with N² / interval: 16 nodes at 250 ms kept
 * one core busy with the event loop 200+ ms late (before duplicates were dropped
 * ahead of their signature check), and then links, dials and pings time out and
 * nothing else gets done. 8·N² ms, up to a cap, keeps it a fraction of a core;
 * group sync and upkeep keep their own 2 s period (SYNC_INTERVAL_MS), and a state
 * change is announced at once, so a slow heartbeat mostly delays only the
 * detection of silent nodes.
 */
export function timing (nodes: number): Timing {
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
