/**
 * libp2p's TLS 1.3 handshake (`/tls/1.0.0`, the @libp2p/tls protocol, wire
 * compatible with it: the same self-signed certificate carrying the signed
 * libp2p key, the same check, the same ALPN muxer negotiation), run by
 * node:tls on the TCP socket itself when the connection is a plain TCP
 * socket.
 *
 * Why: @libp2p/tls wraps the libp2p connection in a JS Duplex, so Node
 * drives TLS through its JSStreamSocket — every TLS record comes back into
 * JS as a new buffer and is written again to the real socket. On a TCP
 * socket node:tls can instead sit on the socket's own handle (the STARTTLS
 * pattern): ciphertext never enters JS. The profiles of issue 23 put the
 * difference at most of the garbage collection and socket writes of every
 * large transfer (docs/performance.md).
 *
 * Any other connection (a relayed one, one under the private-network
 * protector, one whose first TLS bytes were already read ahead by protocol
 * negotiation) goes the @libp2p/tls way, through the Duplex.
 */
import { Socket } from 'node:net'
import { TLSSocket, connect } from 'node:tls'
import { InvalidCryptoExchangeError, serviceCapabilities } from '@libp2p/interface'
import { generateCertificate, toMessageStream, toNodeDuplex, verifyPeerCertificate } from '@libp2p/tls/utils'
import type { ComponentLogger, ConnectionEncrypter, Logger, MessageStream, PrivateKey, SecureConnectionOptions, SecuredConnection, StreamMuxerFactory, Upgrader } from '@libp2p/interface'
import type { Duplex } from 'node:stream'

export const TLS_PROTOCOL = '/tls/1.0.0'

export interface SocketTlsComponents {
  privateKey: PrivateKey
  logger: ComponentLogger
  upgrader: Upgrader
}

/** Connections secured each way (the tests read it: which path a connection took). */
export interface SocketTlsStats { onSocket: number, throughDuplex: number }

/**
 * The TCP socket under `conn` when TLS may take it over: a plain, open
 * socket of which nothing has been read ahead (bytes already read would be
 * lost to node:tls, which reads from the socket's handle).
 */
function takeableSocket (conn: MessageStream): Socket | undefined {
  const socket = (conn as { socket?: unknown }).socket
  if (!(socket instanceof Socket) || socket instanceof TLSSocket || socket.destroyed) return undefined
  // Only a connection that is the TCP socket itself (never one carried over it: WebSockets, a relay).
  const addr = String((conn as { remoteAddr?: unknown }).remoteAddr ?? '')
  if (!/\/tcp\/\d+(\/p2p\/[^/]+)?$/.test(addr)) return undefined
  if (((conn as { readBufferLength?: number }).readBufferLength ?? 0) > 0) return undefined
  return socket
}

export class SocketTLS implements ConnectionEncrypter {
  readonly protocol = TLS_PROTOCOL
  readonly stats: SocketTlsStats = { onSocket: 0, throughDuplex: 0 }
  readonly [Symbol.toStringTag] = 'dsm/socket-tls'
  readonly [serviceCapabilities] = ['@libp2p/connection-encryption']
  private readonly components: SocketTlsComponents
  private readonly log: Logger

  constructor (components: SocketTlsComponents) {
    this.components = components
    this.log = components.logger.forComponent('dsm:socket-tls')
  }

  async secureInbound<Stream extends MessageStream = MessageStream> (conn: Stream, options?: SecureConnectionOptions): Promise<SecuredConnection<Stream>> {
    return this.encrypt(conn, true, options)
  }

  async secureOutbound<Stream extends MessageStream = MessageStream> (conn: Stream, options?: SecureConnectionOptions): Promise<SecuredConnection<Stream>> {
    return this.encrypt(conn, false, options)
  }

  private async encrypt<Stream extends MessageStream> (conn: Stream, isServer: boolean, options?: SecureConnectionOptions): Promise<SecuredConnection<Stream>> {
    const { upgrader } = this.components
    let streamMuxer: StreamMuxerFactory | undefined
    const muxers = options?.skipStreamMuxerNegotiation === true ? [] : [...upgrader.getStreamMuxers().keys()]
    const opts = {
      ...await generateCertificate(this.components.privateKey, options),
      isServer,
      minVersion: 'TLSv1.3' as const,
      maxVersion: 'TLSv1.3' as const,
      // The peer is checked below, by the libp2p key its certificate carries (no CA).
      rejectUnauthorized: false,
      ALPNProtocols: [...muxers, 'libp2p'],
      ALPNCallback: ({ protocols }: { protocols: string[] }): string | undefined => {
        for (const p of protocols) {
          streamMuxer = upgrader.getStreamMuxers().get(p)
          if (streamMuxer != null) return p
        }
        return protocols.includes('libp2p') ? 'libp2p' : undefined
      }
    }
    const raw = takeableSocket(conn)
    const under: Socket | Duplex = raw ?? toNodeDuplex(conn)
    if (raw != null) this.stats.onSocket++
    else this.stats.throughDuplex++
    const socket = isServer ? new TLSSocket(under, { ...opts, requestCert: true }) : connect({ socket: under, ...opts })
    if (raw == null) under.on('error', (err: Error) => { socket.emit('error', err) })
    const onAbort = (): void => { socket.emit('error', options?.signal?.reason ?? new Error('TLS handshake aborted')) }
    options?.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      return await new Promise<SecuredConnection<Stream>>((resolve, reject) => {
        // Kept for the socket's life (an 'error' with no listener would throw): the first error of the
        // handshake fails it; once secured, the connection's own handler takes errors over.
        let settled = false
        socket.on('error', (err: Error) => {
          if (settled) return
          settled = true
          this.log.error('securing %s connection failed - %e', conn.direction, err)
          socket.destroy()
          conn.abort(err)
          reject(err)
        })
        socket.once('secure', () => {
          const cert = socket.getPeerCertificate()
          verifyPeerCertificate(new Uint8Array(cert.raw), options?.remotePeer, this.log).then(remotePeer => {
            // The client learns the muxer from ALPN ('libp2p': the server does not negotiate muxers early).
            if (!isServer && typeof socket.alpnProtocol === 'string' && socket.alpnProtocol !== 'libp2p' && options?.skipStreamMuxerNegotiation !== true) {
              streamMuxer = upgrader.getStreamMuxers().get(socket.alpnProtocol)
              if (streamMuxer == null) throw new InvalidCryptoExchangeError(`the remote chose muxer ${socket.alpnProtocol}, which we do not have`)
            }
            if (settled) return
            settled = true
            resolve({ remotePeer, connection: toMessageStream(conn, socket) as unknown as Stream, ...(streamMuxer != null ? { streamMuxer } : {}) })
          }).catch((err: unknown) => { socket.emit('error', err) })
        })
      })
    } finally {
      options?.signal?.removeEventListener('abort', onAbort)
    }
  }
}

/** libp2p's TLS on the TCP socket itself where it can (see above); `@libp2p/tls` elsewhere. */
export function socketTls (): (components: SocketTlsComponents) => SocketTLS {
  return (components) => new SocketTLS(components)
}
