/**
 * `/dsm/auth/1.0.0`: once per connection, both ends prove they hold the
 * cluster secret, by a challenge–response bound to both peer ids (which the
 * secure channel, TLS or noise, has authenticated):
 *
 *   initiator → responder: { nonce nI }
 *   responder → initiator: { nonce nR, proofs: HMAC_k("responder" nI nR idI idR) per secret held }
 *   initiator → responder: { proofs: HMAC_k("initiator" nI nR idI idR) per secret held }
 *   responder → initiator: { accepted }
 *
 * Fresh nonces on both sides stop replays; the peer ids stop a proof from
 * being relayed to another connection. The side that dialled starts as soon
 * as the connection opens; either side starts one on demand, and a
 * cluster-only stream on a connection not proven yet waits for the handshake
 * (bounded), so no caller races it. A peer that never proves (a browser, a
 * stranger) keeps the connection with public rights only.
 */
import { randomBytes } from 'node:crypto'
import { PeerUnauthorizedError, toError } from '../errors.ts'
import { raceSignal } from '../util/abort.ts'
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { FrameReader, writeFrame } from '../wire/frames.ts'
import { AuthChallengeSchema, AuthHelloSchema, AuthProofSchema, AuthResultSchema, PROTOCOLS } from '../wire/messages.ts'
import type { ClusterKeys } from './cluster-secret.ts'
import type { Logger } from '../logger.ts'
import type { AbortOptions, Connection, Libp2pEvents, PeerId, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { Registrar } from '../wire/rpc.ts'

/** A handshake (or the wait for one) that takes longer than this fails: the peer is not proven. */
export const AUTH_TIMEOUT_MS = 5_000
const MAX_AUTH_FRAME_BYTES = 1024
/** Refusing peers remembered (a count for the user, bounded against a flood of strangers). */
const MAX_REFUSERS = 10_000
const TRANSCRIPT_PREFIX = new TextEncoder().encode('dsm auth v1 ')

interface ConnState {
  proven: boolean
  /** Settles true once the remote proved itself on this connection (by either side's handshake). */
  done: PromiseWithResolvers<boolean>
  /** Our own handshake, once started. */
  ours?: Promise<boolean>
  /** Their handshakes in progress. */
  theirs: number
}

/** Peers with at least one proven connection: what gossip scoring and membership ask. */
export class ProvenPeers {
  private readonly counts = new Map<string, number>()
  /** Called when a peer becomes proven or stops being so (gossip scores cached for it are stale then). */
  onChange?: (peer: string) => void

  has (peer: string): boolean { return this.counts.has(peer) }
  get size (): number { return this.counts.size }

  add (peer: string): void {
    const n = (this.counts.get(peer) ?? 0) + 1
    this.counts.set(peer, n)
    if (n === 1) this.onChange?.(peer)
  }

  remove (peer: string): void {
    const n = (this.counts.get(peer) ?? 0) - 1
    if (n <= 0) {
      this.counts.delete(peer)
      this.onChange?.(peer)
    } else {
      this.counts.set(peer, n)
    }
  }
}

export interface PeerAuthInit {
  keys: ClusterKeys
  proven: ProvenPeers
  logger: Logger
  timeoutMs?: number
}

export interface PeerAuthComponents {
  peerId: PeerId
  registrar: Registrar
  events: TypedEventTarget<Libp2pEvents>
}

function transcript (role: 'initiator' | 'responder', nI: Uint8Array, nR: Uint8Array, idI: PeerId, idR: PeerId): Uint8Array {
  return Buffer.concat([TRANSCRIPT_PREFIX, new TextEncoder().encode(`${role} `), nI, nR, idI.toMultihash().bytes, idR.toMultihash().bytes])
}

/** Where this node stands with the peers it reached: how many proved our secret, how many failed it (and have not proved it since). */
export interface SecretStanding {
  provenPeers: number
  refusedPeers: number
}

export class PeerAuth implements Startable {
  /** Counters for metrics and tests. */
  readonly counters = { proven: 0, refused: 0 }
  /** Called after a peer failed the handshake (the node tells its user when no peer proved our secret). */
  onRefused?: (standing: SecretStanding) => void
  private readonly c: PeerAuthComponents
  private readonly init: PeerAuthInit
  private readonly timeoutMs: number
  private readonly states = new Map<string, ConnState>()
  private started = false
  /** Peers already warned about (a wrong secret is logged once per peer, not per connection). */
  private readonly warned = new Set<string>()
  /** Peers that failed the handshake and have not proved the secret since. */
  private readonly refusers = new Set<string>()

  constructor (components: PeerAuthComponents, init: PeerAuthInit) {
    this.c = components
    this.init = init
    this.timeoutMs = init.timeoutMs ?? AUTH_TIMEOUT_MS
  }

  readonly [Symbol.toStringTag] = 'dsm/peer-auth'

  isStarted (): boolean { return this.started }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await this.c.registrar.handle(PROTOCOLS.auth, (stream, connection) => {
      this.respond(stream, connection).catch(err => { stream.abort(toError(err)) })
    }, { maxInboundStreams: 4, maxOutboundStreams: 4, runOnLimitedConnection: true })
    this.c.events.addEventListener('connection:open', this.onOpen)
    this.c.events.addEventListener('connection:close', this.onClose)
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.c.events.removeEventListener('connection:open', this.onOpen)
    this.c.events.removeEventListener('connection:close', this.onClose)
    await this.c.registrar.unhandle(PROTOCOLS.auth)
    for (const st of this.states.values()) st.done.resolve(false)
    this.states.clear()
  }

  /** Has `peer` proven itself on one of its open connections? */
  isProven (peer: PeerId | string): boolean {
    return this.init.proven.has(peer.toString())
  }

  /** Resolves once the remote of `connection` proved the secret (running the handshake if nobody has); else throws PeerUnauthorizedError. */
  async ensure (connection: Connection, options: AbortOptions = {}): Promise<void> {
    const st = this.state(connection)
    if (st.proven) return
    st.ours ??= this.initiate(connection, st)
    const signal = AbortSignal.any([AbortSignal.timeout(this.timeoutMs), ...(options.signal != null ? [options.signal] : [])])
    const ours = st.ours.then(ok => ok || st.theirs === 0 ? ok : st.done.promise)
    const ok = await raceSignal(Promise.race([st.done.promise, ours]), signal).catch(() => false)
    if (!ok && !st.proven) {
      throw new PeerUnauthorizedError(`peer ${connection.remotePeer.toString().slice(-8)} has not proven the cluster secret`)
    }
  }

  standing (): SecretStanding {
    return { provenPeers: this.init.proven.size, refusedPeers: this.refusers.size }
  }

  private state (connection: Connection): ConnState {
    let st = this.states.get(connection.id)
    if (st == null) {
      st = { proven: false, done: Promise.withResolvers<boolean>(), theirs: 0 }
      this.states.set(connection.id, st)
    }
    return st
  }

  private markProven (connection: Connection, st: ConnState): void {
    if (st.proven || connection.status !== 'open' || this.states.get(connection.id) !== st) return
    st.proven = true
    this.counters.proven++
    this.init.proven.add(connection.remotePeer.toString())
    this.refusers.delete(connection.remotePeer.toString())
    st.done.resolve(true)
  }

  private refused (connection: Connection, why: string): void {
    this.counters.refused++
    const peer = connection.remotePeer.toString()
    if (!this.init.proven.has(peer)) {
      if (this.refusers.size >= MAX_REFUSERS) this.refusers.clear()
      this.refusers.add(peer)
    }
    this.onRefused?.(this.standing())
    if (this.warned.has(peer)) return
    this.warned.add(peer)
    if (this.warned.size > MAX_REFUSERS) this.warned.clear()
    this.init.logger.warn({ peer: peer.slice(-8), why }, 'peer failed the cluster-secret handshake: it gets public rights only (a node of ours? check its secret)')
  }

  private async initiate (connection: Connection, st: ConnState): Promise<boolean> {
    const signal = AbortSignal.timeout(this.timeoutMs)
    let stream: Stream | undefined
    try {
      stream = await connection.newStream(PROTOCOLS.auth, { signal, runOnLimitedConnection: true })
      const reader = new FrameReader(stream, { maxFrameBytes: MAX_AUTH_FRAME_BYTES })
      const nI = randomBytes(32)
      await writeFrame(stream, encodeMessage(AuthHelloSchema, { nonce: nI }), { signal })
      const challenge = decodeMessage(AuthChallengeSchema, await reader.readRequired({ signal }), MAX_AUTH_FRAME_BYTES)
      const self = this.c.peerId
      const remote = connection.remotePeer
      const theyHold = this.init.keys.verify('auth', transcript('responder', nI, challenge.nonce, self, remote), challenge.proofs)
      const proofs = this.init.keys.macs('auth', transcript('initiator', nI, challenge.nonce, self, remote))
      await writeFrame(stream, encodeMessage(AuthProofSchema, { proofs }), { signal })
      const result = decodeMessage(AuthResultSchema, await reader.readRequired({ signal }), MAX_AUTH_FRAME_BYTES)
      reader.release()
      await stream.close({ signal }).catch(() => {})
      if (!result.accepted) this.refused(connection, 'it did not accept our secret')
      if (!theyHold) this.refused(connection, 'its proof does not match our secret')
      if (theyHold) this.markProven(connection, st)
      return theyHold
    } catch (err) {
      stream?.abort(toError(err))
      // A peer without the protocol (a browser node, a stranger) or one that hung up: not proven.
      return false
    }
  }

  private async respond (stream: Stream, connection: Connection): Promise<void> {
    const st = this.state(connection)
    st.theirs++
    const signal = AbortSignal.timeout(this.timeoutMs)
    const reader = new FrameReader(stream, { maxFrameBytes: MAX_AUTH_FRAME_BYTES })
    try {
      const hello = decodeMessage(AuthHelloSchema, await reader.readRequired({ signal }), MAX_AUTH_FRAME_BYTES)
      const nR = randomBytes(32)
      const self = this.c.peerId
      const remote = connection.remotePeer
      const proofs = this.init.keys.macs('auth', transcript('responder', hello.nonce, nR, remote, self))
      await writeFrame(stream, encodeMessage(AuthChallengeSchema, { nonce: nR, proofs }), { signal })
      const answer = decodeMessage(AuthProofSchema, await reader.readRequired({ signal }), MAX_AUTH_FRAME_BYTES)
      const accepted = this.init.keys.verify('auth', transcript('initiator', hello.nonce, nR, remote, self), answer.proofs)
      await writeFrame(stream, encodeMessage(AuthResultSchema, { accepted }), { signal })
      await stream.close({ signal }).catch(() => {})
      if (accepted) this.markProven(connection, st)
      else this.refused(connection, 'its proof does not match our secret')
    } finally {
      reader.release()
      st.theirs--
      if (st.theirs === 0 && !st.proven && st.ours == null) st.done.resolve(false)
    }
  }

  private readonly onOpen = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail
    // The dialler starts; a listener that needs proof sooner starts its own (ensure).
    if (connection.direction !== 'outbound') return
    this.ensure(connection).catch(() => { /* logged by refused(); the connection keeps public rights */ })
  }

  private readonly onClose = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail
    const st = this.states.get(connection.id)
    if (st == null) return
    this.states.delete(connection.id)
    if (st.proven) this.init.proven.remove(connection.remotePeer.toString())
    st.done.resolve(false)
  }
}

export function peerAuth (init: PeerAuthInit): (components: PeerAuthComponents) => PeerAuth {
  return (components) => new PeerAuth(components, init)
}
