/**
 * Opening a protocol stream to a peer.
 *
 * On a connection we already hold, without the dial machinery:
 * libp2p.dialProtocol() goes through the connection manager (peer store
 * lookups, dial queue) even when a connection exists, which cost 2–10 ms per
 * stream here — most of a seek's time to first byte.
 *
 * For cluster-only protocols (see PROTOCOL_ACCESS) the remote must first have
 * proven the cluster secret on that connection: we never hand group data or
 * a write to a stranger, and the remote would refuse us before we proved
 * ourselves anyway.
 */
import { isMultiaddr } from '@multiformats/multiaddr'
import { protocolAccess } from '../wire/messages.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions, Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface ConnectionProof {
  ensure(connection: Connection, options?: AbortOptions): Promise<void>
}

export function fastDialer (libp2p: Pick<Libp2p, 'getConnections' | 'dialProtocol' | 'dial'>, auth?: ConnectionProof): Dialer {
  const needsProof = (protocols: string | string[]): boolean =>
    auth != null && (Array.isArray(protocols) ? protocols : [protocols]).some(p => protocolAccess(p) === 'cluster')
  return {
    async dialProtocol (peer: PeerId | Multiaddr, protocols: string | string[], options: AbortOptions = {}): Promise<Stream> {
      let connection = isMultiaddr(peer) ? undefined : libp2p.getConnections(peer).find(c => c.status === 'open' && c.limits == null)
      if (connection == null && !needsProof(protocols)) return libp2p.dialProtocol(peer, protocols, options)
      connection ??= await libp2p.dial(peer, options)
      if (needsProof(protocols)) await auth?.ensure(connection, options)
      return connection.newStream(protocols, options)
    }
  }
}
