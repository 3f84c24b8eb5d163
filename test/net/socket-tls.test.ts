/**
 * libp2p's TLS run on the TCP socket itself (src/net/socket-tls.ts): real
 * libp2p nodes over TCP on loopback. Bytes cross intact both ways and the
 * socket path is the one taken; it speaks the same protocol as @libp2p/tls
 * (either side may be either); a dial to the wrong peer id fails and leaves
 * no connection; a stranger that stalls or sends garbage in the handshake is
 * dropped and the node goes on serving; under the private-network protector
 * it falls back to the Duplex path and still works.
 */
import { createHash, randomBytes } from 'node:crypto'
import { connect as tcpConnect } from 'node:net'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { yamux } from '@libp2p/yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { SocketTLS } from '../../src/net/socket-tls.ts'
import { generateSwarmKey } from '../../src/net/private-network.ts'
import { writeBufferEmpty } from '../../src/wire/frames.ts'
import type { Libp2p } from '@libp2p/interface'

const ECHO = '/dsm-test/echo/1.0.0'
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('TLS on the TCP socket', () => {
  const nodes: Libp2p[] = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => n.stop())) })

  /** A node with socket TLS (its encrypter kept for its stats) or @libp2p/tls; `psk`: a private network. */
  async function node (kind: 'socket' | 'libp2p', psk?: Uint8Array, inboundUpgradeTimeout?: number): Promise<{ node: Libp2p, enc?: SocketTLS }> {
    let enc: SocketTLS | undefined
    const n = await createLibp2p({
      ...(inboundUpgradeTimeout != null ? { connectionManager: { inboundUpgradeTimeout } } : {}),
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [kind === 'socket' ? (c: ConstructorParameters<typeof SocketTLS>[0]) => (enc = new SocketTLS(c)) : tls()],
      streamMuxers: [yamux()],
      ...(psk != null ? { connectionProtector: preSharedKey({ psk }) } : {})
    })
    await n.handle(ECHO, async (stream) => {
      for await (const chunk of stream) {
        if (!stream.send(chunk.subarray())) await writeBufferEmpty(stream)
      }
      await stream.close()
    })
    nodes.push(n)
    return { node: n, ...(enc != null ? { enc } : {}) }
  }

  /** Send `bytes` through an echo stream from `a` to `b`; what came back. */
  async function echo (a: Libp2p, b: Libp2p, bytes: Uint8Array): Promise<Uint8Array> {
    const stream = await a.dialProtocol(b.getMultiaddrs()[0] ?? multiaddr(), ECHO)
    const back: Uint8Array[] = []
    const reading = (async () => { for await (const c of stream) back.push(c.subarray().slice()) })()
    for (let at = 0; at < bytes.byteLength; at += 100_000) {
      if (!stream.send(bytes.subarray(at, at + 100_000))) await writeBufferEmpty(stream)
    }
    await stream.close()
    await reading
    return Buffer.concat(back)
  }

  it('carries bytes intact both ways, with TLS on the socket on both sides', async () => {
    const a = await node('socket')
    const b = await node('socket')
    const bytes = randomBytes(8 * 1024 * 1024 + 13)
    expect(sha(await echo(a.node, b.node, bytes))).toBe(sha(bytes))
    expect(a.node.getConnections()[0]?.encryption).toBe('/tls/1.0.0')
    expect(a.enc?.stats.onSocket).toBe(1)
    expect(b.enc?.stats.onSocket).toBe(1)
    expect((a.enc?.stats.throughDuplex ?? 0) + (b.enc?.stats.throughDuplex ?? 0)).toBe(0)
    // A close reaches the other end: its connection goes too.
    const closed = new Promise(resolve => { b.node.addEventListener('connection:close', resolve, { once: true }) })
    await a.node.hangUp(b.node.peerId)
    await closed
    expect(b.node.getConnections()).toHaveLength(0)
  })

  it('speaks the protocol of @libp2p/tls, either side dialing', async () => {
    const ours = await node('socket')
    const theirs = await node('libp2p')
    const bytes = randomBytes(3 * 1024 * 1024)
    expect(sha(await echo(ours.node, theirs.node, bytes))).toBe(sha(bytes))
    // Both ends let go (else the dial below may pick up the connection the other end is still closing).
    await Promise.all([ours.node.hangUp(theirs.node.peerId), theirs.node.hangUp(ours.node.peerId)])
    expect(sha(await echo(theirs.node, ours.node, bytes))).toBe(sha(bytes))
    expect(ours.enc?.stats.onSocket).toBe(2)
  })

  it('a dial to the wrong peer id fails, and no connection is left', async () => {
    const a = await node('socket')
    const b = await node('socket')
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const addr = (b.node.getMultiaddrs()[0]?.toString() ?? '').replace(b.node.peerId.toString(), stranger.toString())
    await expect(a.node.dial(multiaddr(addr))).rejects.toThrow()
    expect(a.node.getConnections()).toHaveLength(0)
    expect(b.node.getConnections().filter(c => c.status === 'open')).toHaveLength(0)
  })

  /** A raw TCP client that asks `node` for /tls/1.0.0 (multistream-select), then sends `then`; resolves when the node hangs up. */
  async function strangerSelectingTls (n: Libp2p, then: Uint8Array): Promise<void> {
    const port = (n.getMultiaddrs()[0]?.toString() ?? '').split('/')[4]
    const socket = tcpConnect({ host: '127.0.0.1', port: Number(port) })
    await new Promise(resolve => { socket.once('connect', resolve) })
    const line = (s: string): Uint8Array => { const b = new TextEncoder().encode(`${s}\n`); return Uint8Array.from([b.length, ...b]) }
    socket.write(line('/multistream/1.0.0'))
    socket.write(line('/tls/1.0.0'))
    socket.write(then)
    socket.on('data', () => {})
    // A reset is a fine way to be dropped: only the close matters.
    socket.on('error', () => {})
    await new Promise(resolve => { socket.on('close', resolve) })
  }

  it('a peer that stalls or sends garbage in the handshake is dropped; the node goes on serving', async () => {
    const a = await node('socket', undefined, 1_000)
    // Silent after selecting TLS: the upgrade's timeout ends it.
    await strangerSelectingTls(a.node, new Uint8Array(0))
    // Not a TLS record at all.
    await strangerSelectingTls(a.node, randomBytes(600))
    // Both reached the TLS handshake (it was TLS that dropped them), and left nothing behind.
    expect((a.enc?.stats.onSocket ?? 0) + (a.enc?.stats.throughDuplex ?? 0)).toBe(2)
    expect(a.node.getConnections()).toHaveLength(0)
    const b = await node('socket')
    const bytes = randomBytes(1024 * 1024)
    expect(sha(await echo(b.node, a.node, bytes))).toBe(sha(bytes))
  })

  it('under the private-network protector it goes through the Duplex, and works', async () => {
    const psk = new TextEncoder().encode(generateSwarmKey())
    const a = await node('socket', psk)
    const b = await node('socket', psk)
    const bytes = randomBytes(2 * 1024 * 1024)
    expect(sha(await echo(a.node, b.node, bytes))).toBe(sha(bytes))
    expect(a.enc?.stats).toEqual({ onSocket: 0, throughDuplex: 1 })
  })
})
