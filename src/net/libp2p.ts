/**
 * The libp2p stack of a dsm node.
 *
 * Encryption: TLS is offered first (node to node it moved ~1.7× the bytes of
 * noise here, see README "Performance"); noise stays for browsers, which have
 * no TLS transport in libp2p. Muxer: yamux. DHT: kad-dht in server mode under
 * `/dsm/kad/1.0.0`, a private DHT apart from IPFS. Gossip: gossipsub, signed.
 * On hosts also a circuit-relay server, so browser nodes (WebSockets) can be
 * reached and can reach each other (WebRTC signalled through the relay).
 */
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { preSharedKey } from '@libp2p/pnet'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { toString as u8ToString } from 'uint8arrays/to-string'
import { gossipScoreParams, gossipScoreThresholds } from './gossip-scoring.ts'
import { libp2pLogger } from './libp2p-logger.ts'
import { peerAuth } from './peer-auth.ts'
import { allowlistGater, combineGaters } from './private-network.ts'
import { socketTls } from './socket-tls.ts'
import { tolerateYamuxOpenRace } from './yamux-guard.ts'
import { PROTOCOL_PREFIX, YAMUX_MAX_STREAM_WINDOW_BYTES } from '../constants.ts'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { GossipSub, GossipsubOpts } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { KadDHT, KadDHTInit } from '@libp2p/kad-dht'
import type { Ping } from '@libp2p/ping'
import type { ClusterKeys } from './cluster-secret.ts'
import type { PeerAuth, ProvenPeers } from './peer-auth.ts'
import type { Logger } from '../logger.ts'
import type { ComponentLogger, ConnectionGater, Libp2p, PrivateKey } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'

/** libp2p's default (5 dials/s per host) refuses many local dials in one host. */
export const INBOUND_CONNECTION_THRESHOLD = 1_000
/** How often libp2p's connection monitor pings each connection (its RTT feeds replica choice). */
export const CONNECTION_PING_INTERVAL_MS = 10_000
/** Ping streams one connection may have open each way (libp2p's default of 1 fails overlapping pings). */
export const MAX_PING_STREAMS_PER_CONNECTION = 4
export const MAX_CONNECTIONS = 400
/** Browser nodes one storage node relays for (WebRTC signalling between tabs). */
export const RELAY_MAX_RESERVATIONS = 256

export type DsmServices = {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
  /** The cluster-secret handshake on every connection (./peer-auth.ts). */
  auth: PeerAuth
  /** Circuit relay for browsers (hosts only): their reservations carry WebRTC signalling between tabs. */
  relay?: CircuitRelayService
}

export type DsmLibp2p = Libp2p<DsmServices>

export interface Libp2pInit {
  privateKey: PrivateKey
  /** Keys derived from the cluster secret: only peers proving them are members. */
  keys: ClusterKeys
  /** Filled by the auth service; read by gossip scoring (unproven peers get no heartbeats). */
  proven: ProvenPeers
  logger: Logger
  listen: string[]
  /** 'tcp' for hosts (TCP + WebSockets), 'memory' for in-process clusters. */
  transport: 'tcp' | 'memory'
  /** Added delay per memory-transport message (simulated links). */
  memoryLatencyMs?: number
  connectionGater?: ConnectionGater
  /** A pnet swarm key (./private-network.ts): only peers with the same key can connect. */
  networkKey?: Uint8Array
  /** Only these peer ids may connect (empty or absent: anyone, subject to the network key). */
  allowPeers?: Set<string>
  /** How soon the DHT first queries itself: low in tests, default 1 s. */
  dhtInitialQuerySelfIntervalMs?: number
  /** Overrides for in-process simulations only (never reachable from config or CLI). */
  simulation?: SimulationTuning
}

/**
 * What an in-process cluster of hundreds of nodes on one machine may change.
 * Encryption between objects in one process protects nothing and cost a
 * quarter of the CPU of a 100-node boot; the connection monitor's pings are
 * thousands of streams a minute there, and memory links never die silently.
 */
export interface SimulationTuning {
  connectionEncrypters?: Libp2pOptions['connectionEncrypters']
  connectionMonitor?: false
  /** yamux's keep-alive pings (one per connection every 30 s): memory links never die silently either. */
  muxerKeepAlive?: false
  /** Mesh degrees and gossipsub's own heartbeat: every copy of every message costs the one shared CPU. */
  gossipsub?: Pick<Partial<GossipsubOpts>, 'D' | 'Dlo' | 'Dhi' | 'Dlazy' | 'gossipFactor' | 'heartbeatInterval' | 'floodPublish'>
  /** Routing-table size and query width: how many peers each node's DHT queries dial (and then stay connected to). */
  dht?: Pick<KadDHTInit, 'kBucketSize' | 'alpha' | 'prefixLength'>
  /** libp2p's own debug logger (one per component and stream; each checks the terminal when made). */
  logger?: ComponentLogger
}

/**
 * Gossipsub's duplicate check before the signature check: a heartbeat reaches
 * a node over several mesh links, and verifying every copy was 30–46 % of a
 * cluster's CPU. Safe: an id enters the cache only after its first copy has
 * passed validation, and under StrictSign (from, seqno) is the message id.
 */
const fastMsgId = (msg: { from?: Uint8Array, seqno?: Uint8Array }): string =>
  `${u8ToString(msg.from ?? new Uint8Array(), 'base64')}:${u8ToString(msg.seqno ?? new Uint8Array(), 'base64')}`

export async function createDsmLibp2p (init: Libp2pInit): Promise<DsmLibp2p> {
  // A yamux race would otherwise crash the process (./yamux-guard.ts).
  tolerateYamuxOpenRace()
  const node = await createStack(init)
  // gossipsub caches a peer's score for a second; a proof that just arrived must count now, or a new member's
  // mesh links (and so the heartbeats relayed to it) wait a whole gossipsub heartbeat for no reason.
  // (`score` is public on gossipsub's class, not on the GossipSub interface its factory is typed with.)
  const scores = (node.services.pubsub as unknown as { score?: { scoreCache?: Map<string, unknown> } }).score?.scoreCache
  init.proven.onChange = (peer) => { scores?.delete(peer) }
  return node
}

async function createStack (init: Libp2pInit): Promise<DsmLibp2p> {
  const transports = init.transport === 'memory'
    ? [memory({ latency: init.memoryLatencyMs })]
    : [tcp(), webSockets()]
  return createLibp2p({
    privateKey: init.privateKey,
    logger: init.simulation?.logger ?? libp2pLogger(),
    addresses: { listen: init.listen },
    transports,
    // libp2p's TLS (`/tls/1.0.0`, as @libp2p/tls) run on the TCP socket itself where it can (./socket-tls.ts).
    connectionEncrypters: init.simulation?.connectionEncrypters ?? [socketTls(), noise()],
    // Bounded stream windows bound the bytes in flight per transfer (memory stays flat under many transfers).
    streamMuxers: [yamux({
      streamOptions: { maxStreamWindowSize: YAMUX_MAX_STREAM_WINDOW_BYTES },
      ...(init.simulation?.muxerKeepAlive === false ? { enableKeepAlive: false } : {})
    })],
    ...(init.networkKey != null ? { connectionProtector: preSharedKey({ psk: init.networkKey }) } : {}),
    connectionGater: combineGaters(
      // libp2p refuses private addresses by default; dsm clusters live on LANs and loopback.
      { denyDialMultiaddr: () => false },
      init.connectionGater,
      init.allowPeers != null && init.allowPeers.size > 0 ? allowlistGater(init.allowPeers, peerIdFromPrivateKey(init.privateKey)) : undefined
    ),
    connectionManager: {
      maxConnections: MAX_CONNECTIONS,
      inboundConnectionThreshold: INBOUND_CONNECTION_THRESHOLD
    },
    connectionMonitor: init.simulation?.connectionMonitor === false
      ? { enabled: false }
      : { pingInterval: CONNECTION_PING_INTERVAL_MS },
    services: {
      identify: identify(),
      // The connection monitor pings on this protocol too: a ping still running when the next is due must not
      // fail as "too many streams" (that aborts a live connection on a busy node).
      ping: ping({ maxInboundStreams: MAX_PING_STREAMS_PER_CONNECTION, maxOutboundStreams: MAX_PING_STREAMS_PER_CONNECTION }),
      dht: kadDHT({
        protocol: `${PROTOCOL_PREFIX}/kad/1.0.0`,
        clientMode: false,
        // Keep loopback and LAN addresses: kad-dht drops them by default.
        peerInfoMapper: passthroughMapper,
        initialQuerySelfInterval: init.dhtInitialQuerySelfIntervalMs ?? 1000,
        allowQueryWithZeroPeers: true,
        ...init.simulation?.dht
      }),
      pubsub: gossipsub({
        // Heartbeats must go out even before a mesh forms (first node of a cluster).
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        globalSignaturePolicy: 'StrictSign',
        fastMsgIdFn: fastMsgId,
        // floodPublish stays on (gossipsub's default): a node's own heartbeat goes to every topic peer, not only
        // its mesh. Off, the 5-host netns test (after its partitions) saw a member's heartbeats miss a connected
        // peer for 10 s, 3 runs in 7 under load. The simulation turns it off (one CPU for hundreds of nodes).
        // Peers whose heartbeats fail validation are scored down and then ignored (./gossip-scoring.ts).
        scoreParams: gossipScoreParams((peer) => init.proven.has(peer)),
        scoreThresholds: gossipScoreThresholds(),
        ...init.simulation?.gossipsub
      }),
      auth: peerAuth({ keys: init.keys, proven: init.proven, logger: init.logger }),
      ...(init.transport === 'tcp'
        ? { relay: circuitRelayServer({ reservations: { maxReservations: RELAY_MAX_RESERVATIONS } }) }
        : {})
    }
  })
}
