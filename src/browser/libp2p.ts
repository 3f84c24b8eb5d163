/**
 * The libp2p stack of a browser node: WebSockets to reach storage nodes,
 * a circuit-relay reservation on them so other tabs can reach us, and WebRTC
 * (signalled through the relay) for direct tab-to-tab streams. Noise only
 * (browsers have no TLS transport in libp2p). No DHT and no gossip: a tab
 * asks the storage nodes it is connected to.
 */
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { YAMUX_MAX_STREAM_WINDOW_BYTES } from '../constants.ts'
import type { Identify } from '@libp2p/identify'
import type { Ping } from '@libp2p/ping'
import type { Libp2p } from '@libp2p/interface'

export type BrowserLibp2p = Libp2p<{ identify: Identify, ping: Ping }>

export async function createBrowserLibp2p (): Promise<BrowserLibp2p> {
  return createLibp2p({
    addresses: { listen: ['/p2p-circuit', '/webrtc'] },
    transports: [
      webSockets(),
      // No STUN/TURN: dsm tabs meet on the LAN or through host candidates; offline networks have no STUN anyway.
      webRTC({ rtcConfiguration: { iceServers: [] } }),
      circuitRelayTransport()
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: YAMUX_MAX_STREAM_WINDOW_BYTES } })],
    // The default gater refuses private addresses and plain ws:// — dsm clusters live on LANs.
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify(), ping: ping() }
  })
}
