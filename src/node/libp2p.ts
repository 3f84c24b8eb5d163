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
import { tls } from '@libp2p/tls'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { gossipScoreParams, gossipScoreThresholds } from './gossip-scoring.ts'
import { allowlistGater, combineGaters } from './private-network.ts'
import { tolerateYamuxOpenRace } from './yamux-guard.ts'
import { INBOUND_CONNECTION_THRESHOLD, MAX_CONNECTIONS, PROTOCOL_PREFIX, RELAY_MAX_RESERVATIONS, YAMUX_MAX_STREAM_WINDOW_BYTES } from '../constants.ts'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Ping } from '@libp2p/ping'
import type { ConnectionGater, Libp2p, PrivateKey } from '@libp2p/interface'

export type DsmServices = {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
  /** Circuit relay for browsers (hosts only): their reservations carry WebRTC signalling between tabs. */
  relay?: CircuitRelayService
}

export type DsmLibp2p = Libp2p<DsmServices>

export interface Libp2pInit {
  privateKey: PrivateKey
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
}

export async function createDsmLibp2p (init: Libp2pInit): Promise<DsmLibp2p> {
  // A yamux race would otherwise crash the process (./yamux-guard.ts).
  tolerateYamuxOpenRace()
  const transports = init.transport === 'memory'
    ? [memory({ latency: init.memoryLatencyMs })]
    : [tcp(), webSockets()]
  return createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: init.listen },
    transports,
    connectionEncrypters: [tls(), noise()],
    // Bounded stream windows bound the bytes in flight per transfer (memory stays flat under many transfers).
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: YAMUX_MAX_STREAM_WINDOW_BYTES } })],
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
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: `${PROTOCOL_PREFIX}/kad/1.0.0`,
        clientMode: false,
        // Keep loopback and LAN addresses: kad-dht drops them by default.
        peerInfoMapper: passthroughMapper,
        initialQuerySelfInterval: init.dhtInitialQuerySelfIntervalMs ?? 1000,
        allowQueryWithZeroPeers: true
      }),
      pubsub: gossipsub({
        // Heartbeats must go out even before a mesh forms (first node of a cluster).
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        globalSignaturePolicy: 'StrictSign',
        // Peers whose heartbeats fail validation are scored down and then ignored (./gossip-scoring.ts).
        scoreParams: gossipScoreParams(),
        scoreThresholds: gossipScoreThresholds()
      }),
      ...(init.transport === 'tcp'
        ? { relay: circuitRelayServer({ reservations: { maxReservations: RELAY_MAX_RESERVATIONS } }) }
        : {})
    }
  })
}
