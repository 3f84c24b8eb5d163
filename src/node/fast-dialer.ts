/**
 * Opening a protocol stream to a peer we are already connected to, without
 * the dial machinery: libp2p.dialProtocol() goes through the connection
 * manager (peer store lookups, dial queue) even when a connection exists,
 * which cost 2–10 ms per stream here — most of a seek's time to first byte.
 */
import { isMultiaddr } from '@multiformats/multiaddr'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions, Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export function fastDialer (libp2p: Pick<Libp2p, 'getConnections' | 'dialProtocol'>): Dialer {
  return {
    async dialProtocol (peer: PeerId | Multiaddr, protocols: string | string[], options: AbortOptions = {}): Promise<Stream> {
      if (!isMultiaddr(peer)) {
        const open = libp2p.getConnections(peer).find(c => c.status === 'open' && c.limits == null)
        if (open != null) return open.newStream(protocols, options)
      }
      return libp2p.dialProtocol(peer, protocols, options)
    }
  }
}
