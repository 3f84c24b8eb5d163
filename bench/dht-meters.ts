/**
 * Byte and message counters for `npm run bench -- dht` (./dht.ts): what
 * leaves each node on the wire, and what each node's gossipsub receives.
 */
import { AbstractMessageStream, AbstractMultiaddrConnection, AbstractStreamMuxer } from '@libp2p/utils'
import { MEMBERSHIP_TOPIC } from '../src/constants.ts'
import type { DsmNode } from '../src/node/dsm-node.ts'
import type { Connection, PeerId } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

type Payload = Uint8Array | Uint8ArrayList
interface Labelled { streamId?: number, protocol?: string }

/**
 * Counts bytes where they leave a node, by patching the shared prototypes of
 * @libp2p/utils (one copy in node_modules, used by yamux, TLS and the memory
 * transport): nothing in src/ needs a hook, and every node of the process is
 * measured the same way. A yamux muxer's `send` gets each encoded frame
 * (header + payload); the frame's stream id names the stream and with it the
 * negotiated protocol. A memory connection's `send` gets the TLS records.
 */
export class WireMeter {
  /** yamux muxer or raw memory connection → index of the node that owns it. */
  private readonly owners = new WeakMap<object, number>()
  /** Per node: protocol label → yamux bytes sent (frame headers included). */
  yamux: Array<Map<string, number>> = []
  /** Per node: bytes sent on the memory transport (TLS records, all protocols). */
  wire: number[] = []
  /** yamux bytes of muxers we never registered (should stay 0). */
  unattributed = 0
  /** Transport bytes of connections not open yet: TLS handshakes of connections made during the window. */
  handshakes = 0
  private counting = false

  constructor () {
    const meter = this
    const muxerProto = AbstractStreamMuxer.prototype as unknown as { send: (this: { streams: Labelled[] }, data: Payload) => boolean }
    const muxerSend = muxerProto.send
    muxerProto.send = function (data) {
      if (meter.counting) meter.onFrame(this, data)
      return muxerSend.call(this, data)
    }
    const streamProto = AbstractMessageStream.prototype as unknown as { send: (this: object, data: Payload) => boolean }
    const streamSend = streamProto.send
    streamProto.send = function (data) {
      // Only the transport-level connection: TLS's decrypted view and the yamux streams extend the same class.
      if (meter.counting && this instanceof AbstractMultiaddrConnection) {
        const owner = meter.owners.get(this)
        // A connection is registered when libp2p reports it open, after its TLS handshake: those bytes go here.
        if (owner == null) meter.handshakes += data.byteLength
        else meter.wire[owner] = (meter.wire[owner] ?? 0) + data.byteLength
      }
      return streamSend.call(this, data)
    }
  }

  /** Attribute a connection's muxer and raw transport to node `index` (call for every connection). */
  register (index: number, connection: Connection): void {
    // Not in the public Connection type, but a v3 Connection keeps both (libp2p/dist/src/connection.js).
    const c = connection as unknown as { muxer?: object, maConn?: object }
    if (c.muxer != null) this.owners.set(c.muxer, index)
    if (c.maConn != null) this.owners.set(c.maConn, index)
  }

  start (nodes: number): void {
    this.yamux = Array.from({ length: nodes }, () => new Map())
    this.wire = new Array<number>(nodes).fill(0)
    this.unattributed = 0
    this.handshakes = 0
    this.counting = true
  }

  stop (): void { this.counting = false }

  private onFrame (muxer: { streams: Labelled[] }, data: Payload): void {
    const owner = this.owners.get(muxer)
    if (owner == null) {
      this.unattributed += data.byteLength
      return
    }
    const header = data.subarray(0, 12)
    const streamId = new DataView(header.buffer, header.byteOffset, header.byteLength).getUint32(4)
    let label: string
    if (streamId === 0) label = '(yamux session)'
    else {
      const stream = muxer.streams.find(s => s.streamId === streamId)
      label = stream == null ? '(closed stream)' : (stream.protocol == null || stream.protocol === '' ? '(negotiating)' : stream.protocol)
    }
    const m = this.yamux[owner]
    m?.set(label, (m.get(label) ?? 0) + data.byteLength)
  }
}

interface RpcLike {
  messages?: unknown[]
  control?: { ihave?: Array<{ messageIDs?: unknown[] }>, iwant?: Array<{ messageIDs?: unknown[] }>, idontwant?: Array<{ messageIDs?: unknown[] }> }
}

/** What each node's gossipsub received: RPC messages (duplicates included), IHAVE/IWANT ids. */
export class GossipMeter {
  private readonly owners = new WeakMap<object, number>()
  rpcMessages: number[] = []
  ihaveIds: number[] = []
  iwantIds: number[] = []
  idontwantIds: number[] = []
  delivered: number[] = []
  deliveredBytes: number[] = []
  private counting = false
  private patched = false

  /** Count for node `index`; patches the GossipSub prototype the first time (the class is not exported). */
  register (index: number, node: DsmNode): void {
    const pubsub = node.libp2p.services.pubsub
    this.owners.set(pubsub, index)
    if (!this.patched) {
      this.patched = true
      const meter = this
      const proto = Object.getPrototypeOf(pubsub) as { handleReceivedRpc: (this: object, from: PeerId, rpc: RpcLike) => Promise<void> }
      const original = proto.handleReceivedRpc
      proto.handleReceivedRpc = async function (from, rpc) {
        if (meter.counting) meter.onRpc(this, rpc)
        return original.call(this, from, rpc)
      }
    }
    pubsub.addEventListener('message', (evt) => {
      if (!this.counting || evt.detail.topic !== MEMBERSHIP_TOPIC) return
      this.delivered[index] = (this.delivered[index] ?? 0) + 1
      this.deliveredBytes[index] = (this.deliveredBytes[index] ?? 0) + evt.detail.data.byteLength
    })
  }

  start (nodes: number): void {
    for (const k of ['rpcMessages', 'ihaveIds', 'iwantIds', 'idontwantIds', 'delivered', 'deliveredBytes'] as const) this[k] = new Array<number>(nodes).fill(0)
    this.counting = true
  }

  stop (): void { this.counting = false }

  private onRpc (pubsub: object, rpc: RpcLike): void {
    const i = this.owners.get(pubsub)
    if (i == null) return
    const ids = (list?: Array<{ messageIDs?: unknown[] }>): number => (list ?? []).reduce((n, e) => n + (e.messageIDs?.length ?? 0), 0)
    this.rpcMessages[i] = (this.rpcMessages[i] ?? 0) + (rpc.messages?.length ?? 0)
    this.ihaveIds[i] = (this.ihaveIds[i] ?? 0) + ids(rpc.control?.ihave)
    this.iwantIds[i] = (this.iwantIds[i] ?? 0) + ids(rpc.control?.iwant)
    this.idontwantIds[i] = (this.idontwantIds[i] ?? 0) + ids(rpc.control?.idontwant)
  }
}
