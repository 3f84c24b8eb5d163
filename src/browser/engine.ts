/**
 * The browser node: a libp2p node in a tab that joins the cluster through
 * the storage nodes' WebSocket addresses, locates files by asking them
 * (/dsm/locate), reads verified chunks from other tabs (WebRTC) and from
 * storage replicas, keeps what it read in a bounded memory cache, announces
 * what it holds to the file's swarm (/dsm/swarm) and serves it to other tabs
 * (/dsm/get) — the same protocol code as the Node binary.
 */
import { askLocate } from '../wire/locate.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { CHUNK_LEAF_BYTES, LOCATE_TIMEOUT_MS } from '../constants.ts'
import { FileNotFoundError, UnavailableError, toError } from '../errors.ts'
import { fastDialer } from '../net/fast-dialer.ts'
import { hashChunk } from '../content/chunk-hash.ts'
import { chunkLength, decodeManifest, parseFileId } from '../content/manifest.ts'
import { equals as equalBytes } from 'uint8arrays/equals'
import { ChunkCache } from '../stream/chunk-cache.ts'
import { raceSignal } from '../util/abort.ts'
import { PeerScores } from '../stream/peer-scores.ts'
import { coveringLeaves, serveGet } from '../stream/get.ts'
import { PROTOCOLS, SwarmAnnounceSchema, SwarmPeersSchema } from '../wire/messages.ts'
import { request } from '../wire/rpc.ts'
import { createBrowserLibp2p } from './libp2p.ts'
import { PeerDials } from './peer-dials.ts'
import { readP2P } from './reader.ts'
import type { BrowserLibp2p } from './libp2p.ts'
import type { SourceKind } from './reader.ts'
import type { Logger } from '../logger.ts'
import type { Manifest } from '../content/manifest.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions } from '@libp2p/interface'

/** How often a browser node announces what it holds for a file it watches. */
export const SWARM_ANNOUNCE_INTERVAL_MS = 2_000
/** A browser node announces chunks it has just got after this delay (a burst of chunks makes one announce). */
export const SWARM_HAVE_ANNOUNCE_DELAY_MS = 200
/** Other browsers a browser node connects to per file. */
export const SWARM_MAX_PEER_CONNECTIONS = 8
/** Longest a dial to another tab (relay, then WebRTC) may take; the next announce dials again. */
export const PEER_DIAL_TIMEOUT_MS = 10_000
/**
 * Most often the `stats` event fires: a page redraws its counters on it, and
 * one redraw per chunk (received or served) costs the tabs frames while a
 * video starts.
 */
export const STATS_EVENT_MS = 250
/** Default memory a browser node keeps for chunks (served to other browsers too). */
export const BROWSER_CACHE_BYTES = 256 * 1024 * 1024
/**
 * A file not read for this long stops being announced periodically (an HLS
 * package is hundreds of small files); reading it again resumes.
 */
export const SWARM_IDLE_MS = 60_000
/** A file held whole is announced this often (well within the tracker's SWARM_TTL_MS). */
export const SWARM_HELD_ANNOUNCE_MS = 10_000
/** Longest wait at start for a relay reservation (the address other tabs reach us at); sharing starts without one after it. */
export const RELAY_ADDRESS_WAIT_MS = 5_000

export interface P2PStats {
  /** Bytes received per source peer id. */
  bySource: Record<string, number>
  fromStorage: number
  fromPeers: number
  servedToPeers: number
  /** Chunks that failed verification (their senders are avoided). */
  rejected: number
  storageConnections: number
  peerConnections: number
}

export interface EngineEvents {
  stats: CustomEvent<P2PStats>
}

interface Session {
  manifest: Manifest
  /** Storage replicas (peer ids) of the file's group. */
  replicas: string[]
  /** Other tabs watching the file: their addresses and chunk bitmaps. */
  swarm: Map<string, { addrs: string[], have: Uint8Array }>
  timer?: ReturnType<typeof setInterval>
  /** A prompt announce scheduled because we now hold more chunks. */
  soon?: ReturnType<typeof setTimeout>
  /** When the file was last read or offered here. */
  used: number
  /** The first announce's answer: the swarm is known once it settles. */
  announced?: Promise<void>
  /** When we last told the tracker we hold the whole file. */
  toldWhole?: number
}

/** Another tab watching a file, as the file's tracker last described it. */
export interface SwarmPeer { peerId: string, chunks: number, connected: boolean }

const hasBit = (bitmap: Uint8Array, i: number): boolean => ((bitmap[i >> 3] ?? 0) & (1 << (i & 7))) !== 0
const wsAddrs = (addrs: string[]): string[] => addrs.filter(a => /\/wss?(\/|$)/.test(a))

const consoleLogger: Logger = {
  error: (o, m) => { console.error('dsm', m, o) },
  warn: (o, m) => { console.warn('dsm', m, o) },
  info: () => {},
  debug: () => {},
  child: () => consoleLogger
}

export interface EngineInit {
  /** Storage nodes to join through: peer ids and WebSocket multiaddrs (GET /api/bootstrap). */
  bootstrap: Array<{ peerId: string, addrs: string[] }>
  cacheBytes?: number
}

export class P2PEngine extends TypedEventEmitter<EngineEvents> {
  readonly libp2p: BrowserLibp2p
  readonly cache: ChunkCache
  readonly stats: P2PStats = { bySource: {}, fromStorage: 0, fromPeers: 0, servedToPeers: 0, rejected: 0, storageConnections: 0, peerConnections: 0 }
  /** Test hook: serve altered bytes, as a broken or malicious peer would. */
  corruptServes = false
  private readonly dialer: Dialer
  private readonly storagePeers = new Set<string>()
  /** Peers that sent bytes failing verification (asked last, kept out of the swarm while the record lasts). */
  private readonly scores = new PeerScores()
  private readonly sessions = new Map<string, Promise<Session>>()
  private readonly manifests = new Map<string, Manifest>()
  /** Sessions open (their promises resolved), for answers that must not wait. */
  private readonly opened = new Map<string, Session>()
  /** Dials to other tabs: under way, and failed lately. */
  private readonly dials = new PeerDials()
  private statsTimer?: ReturnType<typeof setTimeout>

  private constructor (libp2p: BrowserLibp2p, cacheBytes: number) {
    super()
    this.libp2p = libp2p
    this.cache = new ChunkCache(cacheBytes)
    this.dialer = fastDialer(libp2p)
  }

  static async start (init: EngineInit): Promise<P2PEngine> {
    const engine = new P2PEngine(await createBrowserLibp2p(), init.cacheBytes ?? BROWSER_CACHE_BYTES)
    await engine.serve()
    const reached = await Promise.allSettled(init.bootstrap.map(async p => engine.dialStorage(p.peerId, p.addrs)))
    if (!reached.some(r => r.status === 'fulfilled')) {
      await engine.stop()
      throw new UnavailableError('no storage node could be reached over WebSockets')
    }
    engine.libp2p.addEventListener('connection:open', () => { engine.countConnections() })
    engine.libp2p.addEventListener('connection:close', () => { engine.countConnections() })
    // Up means reachable: an announce before the relay reservation carries no address (no tab could dial
    // us), and the reservation's streams and identify pushes would otherwise run beside the first play.
    await engine.reachable(AbortSignal.timeout(RELAY_ADDRESS_WAIT_MS))
    return engine
  }

  /** The addresses other tabs reach us at: through a relay they can dial (WebSockets), then WebRTC. */
  private relayAddrs (): string[] {
    return this.libp2p.getMultiaddrs().map(a => a.toString()).filter(a => a.includes('/p2p-circuit/webrtc') && /\/wss?\//.test(a))
  }

  /** Resolves once we have a relay address, or when `signal` aborts (then without one). */
  private async reachable (signal: AbortSignal): Promise<void> {
    if (this.relayAddrs().length > 0) return
    await new Promise<void>(resolve => {
      const check = (): void => {
        if (this.relayAddrs().length === 0 && !signal.aborted) return
        this.libp2p.removeEventListener('self:peer:update', check)
        signal.removeEventListener('abort', check)
        resolve()
      }
      this.libp2p.addEventListener('self:peer:update', check)
      signal.addEventListener('abort', check)
    })
  }

  async stop (): Promise<void> {
    clearTimeout(this.statsTimer)
    for (const s of this.sessions.values()) void s.then(x => { clearInterval(x.timer); clearTimeout(x.soon) }, () => {})
    await this.libp2p.stop()
  }

  /** The manifest of a file (located once per session). */
  async manifest (id: string, options: AbortOptions = {}): Promise<Manifest> {
    return (await this.session(id, options)).manifest
  }

  /** The other tabs watching a file and how many of its chunks each holds (empty before the file is opened). */
  async swarmPeers (id: string): Promise<SwarmPeer[]> {
    const s = await this.sessions.get(id)?.catch(() => undefined)
    if (s == null) return []
    return [...s.swarm.entries()].map(([peerId, p]) => ({
      peerId,
      chunks: s.manifest.chunks.filter((_, i) => hasBit(p.have, i)).length,
      connected: this.connected(peerId)
    }))
  }

  /** Verified bytes [offset, offset + length) of a file. */
  read (id: string, offset: number, length: number, options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    const self = this
    return (async function * () {
      const s = await self.session(id, options)
      self.touch(id, s)
      yield * readP2P({
        dialer: self.dialer,
        cache: self.cache,
        scores: self.scores,
        peersWith: (i) => {
          // Spread the chunks over the tabs that have them: start at a different one for each chunk.
          const holders = [...s.swarm.entries()].filter(([peer, p]) => hasBit(p.have, i) && self.connected(peer)).map(([peer]) => peer)
          return holders.map((_, k) => holders[(i + k) % holders.length] as string)
        },
        storage: () => s.replicas.filter(p => self.connected(p)).concat(s.replicas.filter(p => !self.connected(p))),
        onChunk: (kind: SourceKind, peer, bytes) => {
          self.stats.bySource[peer] = (self.stats.bySource[peer] ?? 0) + bytes
          if (kind === 'peer') self.stats.fromPeers += bytes
          else self.stats.fromStorage += bytes
          self.emitStats()
          self.announceSoon(id, s)
        },
        onRejected: () => { self.stats.rejected++; self.emitStats() }
      }, s.manifest, offset, length, options)
    })()
  }

  /** Open a file's session ahead of reading it: its manifest, and which tabs hold it, are known by then. */
  async prepare (id: string, options: AbortOptions = {}): Promise<void> {
    this.touch(id, await this.session(id, options))
  }

  /**
   * Tabs the file's tracker says hold every chunk of it, and whether we are
   * connected to each — as known now: none while the file's session is still
   * being opened (a segment needed now does not wait for it). A tab we
   * failed to dial lately (gone, most likely) is not counted unless it
   * reached us.
   */
  holders (id: string): Array<{ peerId: string, connected: boolean }> {
    const s = this.opened.get(id)
    if (s == null) return []
    return [...s.swarm.entries()]
      .filter(([peer, p]) => !this.scores.avoided(peer) && s.manifest.chunks.every((_, i) => hasBit(p.have, i)))
      .map(([peerId]) => ({ peerId, connected: this.connected(peerId) }))
      .filter(h => h.connected || !this.dials.failedLately(h.peerId))
  }

  /**
   * Resolves true once we are connected to one of `peers`; false when the
   * signal ends first, or when no dial to any of them is under way (the
   * swarm dials holders on its own, and again after each announce — a
   * link nobody is making is not worth waiting for).
   */
  async connectedTo (peers: string[], options: AbortOptions = {}): Promise<boolean> {
    if (peers.some(p => this.connected(p))) return true
    const dials = this.dials.pending(peers)
    if (dials.length === 0) return false
    return new Promise<boolean>((resolve) => {
      let left = dials.length
      const done = (v: boolean): void => {
        this.libp2p.removeEventListener('connection:open', check)
        options.signal?.removeEventListener('abort', stop)
        resolve(v)
      }
      const check = (): void => { if (peers.some(p => this.connected(p))) done(true) }
      const stop = (): void => { done(false) }
      this.libp2p.addEventListener('connection:open', check)
      options.signal?.addEventListener('abort', stop, { once: true })
      for (const d of dials) void d.then(() => { if (--left === 0) done(peers.some(p => this.connected(p))) })
      if (options.signal?.aborted === true) stop()
    })
  }

  /**
   * Bytes of a whole file fetched elsewhere (over HTTP): each chunk verified
   * against the manifest, then kept and announced like chunks read here, so
   * other tabs can take them from us. False when they do not verify.
   */
  async offer (id: string, bytes: Uint8Array, options: AbortOptions = {}): Promise<boolean> {
    const s = await this.session(id, options)
    if (bytes.byteLength !== s.manifest.size) return false
    const chunks = s.manifest.chunks.map((digest, i) => ({ digest, data: bytes.subarray(i * s.manifest.chunkSize, i * s.manifest.chunkSize + chunkLength(s.manifest, i)) }))
    for (const c of chunks) {
      if (!equalBytes((await hashChunk(c.data)).digest, c.digest)) return false
    }
    for (const c of chunks) this.cache.set(c.digest, c.data)
    this.touch(id, s)
    this.announceSoon(id, s)
    return true
  }

  /** A file in use: announced periodically again if it had gone idle. */
  private touch (id: string, s: Session): void {
    s.used = Date.now()
    if (s.timer == null) {
      s.timer = setInterval(() => { void this.announce(id, s) }, SWARM_ANNOUNCE_INTERVAL_MS)
      const first = this.announce(id, s)
      s.announced ??= first
    }
  }

  /** Resolves once the file's session is open and its swarm has been asked once (or the signal ends). */
  async known (id: string, options: AbortOptions = {}): Promise<void> {
    const s = await this.session(id, options)
    await raceSignal(s.announced ?? Promise.resolve(), options.signal)
  }

  private connected (peer: string): boolean {
    return this.libp2p.getConnections(peerIdFromString(peer)).some(c => c.status === 'open' && c.limits == null)
  }

  private async dialStorage (peerId: string, addrs: string[]): Promise<void> {
    const ws = wsAddrs(addrs).map(a => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${peerId}`))
    if (ws.length === 0) throw new UnavailableError(`storage node ${peerId} has no WebSocket address`)
    await this.libp2p.dial(ws, { signal: AbortSignal.timeout(LOCATE_TIMEOUT_MS * 2) })
    this.storagePeers.add(peerId)
    this.countConnections()
  }

  private async session (id: string, options: AbortOptions): Promise<Session> {
    let s = this.sessions.get(id)
    if (s == null) {
      s = this.open(id, options)
      this.sessions.set(id, s)
      s.catch(() => { this.sessions.delete(id) })
    }
    return s
  }

  /** Locate through the storage nodes we are connected to; the manifest must hash to the ID. */
  private async open (id: string, options: AbortOptions): Promise<Session> {
    const cid = parseFileId(id)
    const asked = [...this.storagePeers].filter(p => this.connected(p))
    const answer = await Promise.any(asked.map(async peer => {
      // The default timeout holds with a caller's signal too (it used to be dropped then).
      const res = await askLocate(this.dialer, peerIdFromString(peer), id, options)
      if (res.manifest == null) throw new FileNotFoundError(`${peer.slice(-8)} does not know ${id}`)
      return { res, manifest: await decodeManifest(res.manifest, cid) }
    })).catch(() => { throw new FileNotFoundError(`no storage node knows ${id}`) })
    const replicas = (answer.res.replicas ?? []).filter(r => wsAddrs(r.addrs).length > 0)
    for (const r of replicas) {
      if (!this.connected(r.peerId)) this.dialStorage(r.peerId, r.addrs).catch(err => { consoleLogger.warn({ err: toError(err).message }, 'replica unreachable') })
    }
    this.manifests.set(id, answer.manifest)
    const session: Session = { manifest: answer.manifest, replicas: replicas.map(r => r.peerId).sort(), swarm: new Map(), used: Date.now() }
    this.opened.set(id, session)
    this.touch(id, session)
    return session
  }

  /**
   * Other tabs choose sources by the bitmaps the tracker holds, so a chunk we
   * just got is worth little until we announce it: announce shortly after
   * (coalescing a burst of chunks into one message) rather than wait for the
   * next periodic announce.
   */
  private announceSoon (id: string, s: Session): void {
    if (s.soon != null) return
    s.soon = setTimeout(() => {
      s.soon = undefined
      void this.announce(id, s)
    }, SWARM_HAVE_ANNOUNCE_DELAY_MS)
  }

  /** Tell the file's tracker (its replica with the lowest peer id, the same for every tab) what we hold. */
  private async announce (id: string, s: Session): Promise<void> {
    if (Date.now() - s.used > SWARM_IDLE_MS) {
      clearInterval(s.timer)
      s.timer = undefined
      return
    }
    const have = new Uint8Array(Math.ceil(s.manifest.chunks.length / 8))
    s.manifest.chunks.forEach((d, i) => { if (this.cache.has(d)) have[i >> 3] = (have[i >> 3] ?? 0) | (1 << (i & 7)) })
    // A file held whole and told already only needs to stay on the tracker's list (an HLS package
    // is many small files: announcing each every 2 s would load the tab and the trackers for nothing).
    const whole = s.manifest.chunks.every(d => this.cache.has(d))
    if (whole && s.toldWhole != null && Date.now() - s.toldWhole < SWARM_HELD_ANNOUNCE_MS) return
    if (whole) s.toldWhole = Date.now()
    const addrs = this.relayAddrs()
    for (const tracker of s.replicas.filter(p => this.connected(p))) {
      try {
        const answer = await request(this.dialer, peerIdFromString(tracker), PROTOCOLS.swarm, SwarmAnnounceSchema, { id, addrs, have }, SwarmPeersSchema)
        s.swarm = new Map(answer.peers.filter(p => !this.scores.avoided(p.peerId)).map(p => [p.peerId, { addrs: p.addrs, have: p.have }]))
        this.connectPeers(s)
        return
      } catch (err) {
        consoleLogger.debug({ err: toError(err).message }, 'announce failed; trying the next replica')
      }
    }
  }

  private connectPeers (s: Session): void {
    const peers = [...s.swarm.keys()]
    const room = SWARM_MAX_PEER_CONNECTIONS - peers.filter(p => this.connected(p)).length - this.dials.pending(peers).length
    for (const [peer, info] of this.dials.candidates(s.swarm.entries(), p => this.connected(p), room)) {
      const dial = this.libp2p.dial(info.addrs.map(a => multiaddr(a)), { signal: AbortSignal.timeout(PEER_DIAL_TIMEOUT_MS) }).then(() => { this.emitStats() })
      this.dials.track(peer, dial, err => {
        consoleLogger.debug({ err: toError(err).message, peer }, 'peer unreachable')
        // The next on the list now, not at the next announce (the failed peer is passed over for a while).
        this.connectPeers(s)
      })
    }
  }

  /** Serve the chunks we hold to other tabs, over the same get protocol as storage nodes. */
  private async serve (): Promise<void> {
    await this.libp2p.handle(PROTOCOLS.get, (stream) => {
      void serveGet({
        chunks: {
          manifestOf: async (id) => this.manifests.get(id),
          readChunk: async (digest, range) => {
            const held = this.cache.get(digest)
            if (held == null) throw new FileNotFoundError('chunk not held here')
            const data = this.corruptServes ? held.map((b, i) => i === 0 ? b ^ 0xff : b) : held
            return coveringLeaves(data, (await hashChunk(data)).leaves, range, CHUNK_LEAF_BYTES)
          }
        },
        status: { beginTransfer: () => () => {} },
        logger: consoleLogger,
        onServed: (bytes) => { this.stats.servedToPeers += bytes; this.emitStats() }
      }, stream, { signal: AbortSignal.timeout(60_000) })
    }, { maxInboundStreams: 64 })
  }

  /** `stats` itself is always current; its event comes at most every STATS_EVENT_MS. */
  private emitStats (): void {
    this.statsTimer ??= setTimeout(() => {
      this.statsTimer = undefined
      this.safeDispatchEvent('stats', { detail: { ...this.stats, bySource: { ...this.stats.bySource } } })
    }, STATS_EVENT_MS)
  }

  private countConnections (): void {
    const conns = this.libp2p.getConnections().filter(c => c.status === 'open')
    this.stats.storageConnections = conns.filter(c => this.storagePeers.has(c.remotePeer.toString())).length
    this.stats.peerConnections = conns.filter(c => !this.storagePeers.has(c.remotePeer.toString()) && c.limits == null).length
    this.emitStats()
  }
}
