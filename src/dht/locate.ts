/**
 * Finding a file from any node: the local index, then the manifest cache,
 * then one ACTIVE member of every group (`/dsm/locate/1.0.0`) — one we are
 * connected to where there is one: in a large cluster the other choice is a
 * new connection (handshake, identify, gossip and DHT set-up) per group per
 * read — in waves of LOCATE_WAVE_PEERS, then the other ACTIVE members. The
 * answer carries the manifest, checked against the ID (self-certifying), so
 * a lying member cannot make us serve other bytes.
 *
 * Every ACTIVE member stores a file before its upload is acknowledged, so the
 * first wave finds it at once; the second wave covers a write quorum smaller
 * than the group. No per-file record is kept in the DHT: re-providing millions
 * of them forever is what IPFS cannot keep up with, and they cost every node
 * memory per file (kad-dht's in-memory provider records).
 */
import { rpcHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { LocateRequestSchema, LocateResponseSchema, PROTOCOLS } from '../wire/messages.ts'
import { askLocate } from '../wire/locate.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { LRUCache } from 'lru-cache'
import { LOCATE_TIMEOUT_MS } from '../constants.ts'
import { FileNotFoundError, UnavailableError, UndecidedError } from '../errors.ts'
import { anySignal } from '../util/abort.ts'
import { decodeManifest } from '../content/manifest.ts'
import type { Manifest } from '../content/manifest.ts'
import type { GroupSummaries, Verdict } from './summaries.ts'
import type { Logger } from '../logger.ts'
import type { MembershipView } from '../membership/view.ts'
import type { FileIndex } from '../store/file-index.ts'
import type { LocateResponse } from '../wire/messages.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** What a read needs of a file this node holds, by (id, stamp). */
interface LocalFile { manifest: Manifest, group: string, createdAt: number }

/** Decoded manifests of local files kept for reads (a 256 MiB file's manifest is ~8 KiB). */
const LOCAL_MANIFEST_CACHE_BYTES = 16 * 1024 * 1024

/** Manifests of remote files kept by the locator (bytes of manifest data). */
export const LOCATE_CACHE_BYTES = 64 * 1024 * 1024
/**
 * How long a node that holds no copy trusts a located manifest before asking
 * the group again: the bound on how long a deleted file stays readable there
 * (its chunks may still sit in the chunk cache). One small RPC per file per period.
 */
export const LOCATE_CACHE_TTL_MS = 3_000
/**
 * Locate asks at most this many peers at once (one per group first): with 67
 * groups a read asked 67 members, and those questions were most of the CPU of
 * a read in the 200-node simulation. A file sits in a group taken at random, so
 * waves of 16 ask about 60 % as many.
 */
export const LOCATE_WAVE_PEERS = 16
/** The next wave starts when the current one has all said no, or after this long (a silent peer must not stall the search). */
export const LOCATE_WAVE_DELAY_MS = 250

export interface Located {
  manifest: Manifest
  group: string
  createdAt: number
  /** Where the answer came from. */
  via: 'local' | 'cache' | 'member'
  /** The member that answered (when it was not us). */
  holder?: string
}

export interface LocatorComponents {
  index: FileIndex
  view: MembershipView
  dialer: Dialer
  /** Peers we hold a connection to. */
  connectedPeers: () => Set<string>
  logger: Logger
  /** Other groups' summaries: which group probably holds a file (./summaries.ts). */
  summaries?: GroupSummaries
  /** Whether this node holds a prepared, undecided copy of the file (its commit may have been acknowledged). */
  preparedHere?: (id: string) => boolean
  /** Make the view know a group's members when it shows none live (./group-finder.ts). */
  findGroup?: (group: string, options: AbortOptions) => Promise<string[]>
}

/** What this node answers about a file; with `view`, also the group's ACTIVE members and their addresses. */
export function answerLocate (index: FileIndex, id: string, view?: MembershipView): LocateResponse {
  const row = index.get(id)
  if (row == null) return { state: 'unknown' }
  if (row.state === 'deleted' || row.manifest == null) return { state: 'deleted', group: row.group }
  const replicas = view?.groupMembers(row.group).filter(m => m.state === 'ACTIVE').map(m => ({ peerId: m.peerId, addrs: m.addrs }))
  return { state: row.state, group: row.group, manifest: row.manifest, createdAt: row.createdAt, ...(replicas != null ? { replicas } : {}) }
}

export class Locator {
  /** Locate requests sent to members (a cold read's cost), for metrics and tests. */
  readonly counters = { asked: 0 }
  private readonly c: LocatorComponents
  private readonly cache = new LRUCache<string, Located>({
    maxSize: LOCATE_CACHE_BYTES,
    ttl: LOCATE_CACHE_TTL_MS,
    sizeCalculation: (l) => l.manifest.bytes.byteLength + 256
  })

  /** Decoded manifests of files held here, by file and stamp (bytes of manifest data). */
  private readonly local = new LRUCache<string, LocalFile>({ maxSize: LOCAL_MANIFEST_CACHE_BYTES, sizeCalculation: (f) => f.manifest.bytes.byteLength + 256 })

  constructor (components: LocatorComponents) {
    this.c = components
  }

  /** Forget a file (it was deleted, or a member said so). */
  forget (id: string): void {
    this.cache.delete(id)
  }

  async locate (id: CID, options: AbortOptions = {}): Promise<Located> {
    const key = id.toString()
    const local = await this.fromIndex(id)
    if (local != null) return local
    const cached = this.cache.get(key)
    if (cached != null) return { ...cached, via: 'cache' }
    const seen = { unsure: false }
    const found = await this.askMembers(id, options, seen) ?? await this.askGroupsFoundInDht(id, options, seen)
    if (found != null) {
      this.cache.set(key, found)
      return found
    }
    // Committed here while we asked (a prepared copy whose decision just arrived): ours after all.
    return await this.fromIndex(id) ?? Promise.reject(this.notFound(key, seen.unsure))
  }

  /** The file from this node's index; undefined if it has no row here; FileNotFoundError if it was deleted. */
  private async fromIndex (id: CID): Promise<Located | undefined> {
    const key = id.toString()
    // The stamp first (no manifest blob copied out of SQLite): a file read again is found in the cache by it.
    const stamp = this.c.index.stamp(key)
    if (stamp == null) return undefined
    if (stamp.state === 'deleted') throw new FileNotFoundError(`file ${key} was deleted`)
    const cached = this.local.get(`${key}/${stamp.ts}/${stamp.origin}`)
    if (cached != null) return { ...cached, via: 'local' }
    const row = this.c.index.get(key)
    if (row?.state === 'deleted') throw new FileNotFoundError(`file ${key} was deleted`)
    if (row?.manifest == null) return undefined
    // Decoded once per (file, stamp): a manifest is checked against its ID when decoded, and a big one costs
    // a hash and a canonical re-encode every time — most of a small Range's time to first byte.
    const file: LocalFile = { manifest: await decodeManifest(row.manifest, id), group: row.group, createdAt: row.createdAt }
    this.local.set(`${key}/${row.ts}/${row.origin}`, file)
    return { ...file, via: 'local' }
  }

  /**
   * Groups this node knows by name but has no live member of in view (gossip
   * has not reached it, or it was cut off): their members from the DHT, then
   * ask again. Undefined if no group was found that way, or none has it.
   */
  private async askGroupsFoundInDht (id: CID, options: AbortOptions, seen: { unsure: boolean }): Promise<Located | undefined> {
    if (this.c.findGroup == null) return undefined
    const dark = this.c.view.groups().filter(g => !g.members.some(m => !m.self && m.state === 'ACTIVE')).map(g => g.name)
    const found = await Promise.all(dark.map(async g => this.c.findGroup?.(g, options) ?? []))
    if (found.every(peers => peers.length === 0)) return undefined
    return this.askMembers(id, options, seen)
  }

  /**
   * Nobody said they hold it. That is a 404 only if everyone who might was
   * asked and answered: a copy prepared here (or on a member that said so)
   * may belong to an upload already acknowledged whose coordinator died
   * before the decision reached us, and a group with no ACTIVE member may
   * hold it. Those are "not now" (503, retry), never "not found".
   */
  private notFound (key: string, unsure: boolean): Error {
    if (this.c.preparedHere?.(key) === true || unsure) {
      return new UndecidedError(`${key} is being committed (a copy is prepared and its decision has not arrived yet); retry`)
    }
    const down = this.c.view.groups().filter(g => g.members.some(m => !m.spare) && g.members.every(m => m.state !== 'ACTIVE')).map(g => g.name)
    if (down.length > 0) return new UnavailableError(`no replica of ${key} was found, but group(s) ${down.join(', ')} have no ACTIVE member to ask; retry`)
    return new FileNotFoundError(`no replica of ${key} was found`)
  }

  /**
   * Ask one ACTIVE member per group (connected, then least loaded, first), then the rest: first the groups whose
   * summary says the file is probably theirs, then those we have no fresh summary of, then those whose summary
   * says no (a Bloom filter never says no to a file it holds, but a summary can be older than the file).
   */
  private async askMembers (id: CID, options: AbortOptions, seen: { unsure: boolean }): Promise<Located | undefined> {
    const key = id.toString()
    const connected = this.c.connectedPeers()
    const rank = (peer: string): number => connected.has(peer) ? 0 : 1
    const tier: Record<Verdict, number> = { probably: 0, unknown: 1, no: 2 }
    const firsts: Array<{ peer: string, tier: number }> = []
    const others: string[] = []
    const groups = this.c.view.groups()
    for (const g of groups) {
      const active = g.members.filter(m => m.state === 'ACTIVE' && !m.self).sort((a, b) => rank(a.peerId) - rank(b.peerId) || a.load - b.load)
      const t = tier[this.c.summaries?.verdict(g.name, key) ?? 'unknown']
      active.forEach((m, i) => { if (i === 0) firsts.push({ peer: m.peerId, tier: t }); else others.push(m.peerId) })
    }
    this.c.summaries?.refresh(groups.map(g => g.name))
    // Groups we can ask without dialling go first within a tier: a dial is paid only if the file is not among them.
    firsts.sort((a, b) => a.tier - b.tier || rank(a.peer) - rank(b.peer))
    const waves = [
      firsts.filter(f => f.tier === 0).map(f => f.peer),
      firsts.filter(f => f.tier > 0).map(f => f.peer),
      others.sort((a, b) => rank(a) - rank(b))
    ]
    for (const wave of waves) {
      const found = await this.askAll(id, wave, 'member', options, seen)
      if (found === 'deleted') throw new FileNotFoundError(`file ${key} was deleted`)
      if (found != null) return found
    }
    return undefined
  }

  /** Ask peers, LOCATE_WAVE_PEERS at a time (see askInWaves); the first verified answer wins. */
  private async askAll (id: CID, peers: string[], via: Located['via'], options: AbortOptions, seen: { unsure: boolean }): Promise<Located | 'deleted' | undefined> {
    if (peers.length === 0) return undefined
    const controller = new AbortController()
    const signal = anySignal(options.signal, controller.signal, AbortSignal.timeout(LOCATE_TIMEOUT_MS * Math.ceil(peers.length / LOCATE_WAVE_PEERS)))
    let deleted = false
    const ask = async (peer: string): Promise<Located> => {
      this.counters.asked++
      const res = await askLocate(this.c.dialer, peerIdFromString(peer), id.toString(), { signal })
        .catch((err: unknown) => {
          // The member holds a prepared copy it cannot answer for yet (see answerLocate's caller).
          if ((err as { code?: string }).code === 'ERR_UNDECIDED') seen.unsure = true
          throw err
        })
      if (res.state === 'deleted') deleted = true
      if (res.manifest == null || res.group == null) throw new FileNotFoundError(`${peer.slice(-8)} has no ${id.toString()}`)
      const manifest = await decodeManifest(res.manifest, id)
      return { manifest, group: res.group, createdAt: res.createdAt ?? 0, via, holder: peer }
    }
    try {
      return await askInWaves(peers, ask, signal) ?? (deleted ? 'deleted' : undefined)
    } finally {
      controller.abort()
    }
  }
}

/**
 * Run `ask` over `peers` a wave at a time (LOCATE_WAVE_PEERS) until one
 * answers. The next wave starts as soon as every question of the current one
 * failed, or a delay (LOCATE_WAVE_DELAY_MS) after it started, whichever is first: on a healthy
 * network a wave costs one round trip, and a peer that never answers delays
 * the search by at most the delay. Resolves undefined when all failed or
 * `signal` aborted.
 */
export async function askInWaves<T> (peers: string[], ask: (peer: string) => Promise<T>, signal: AbortSignal,
  waves: { size: number, delayMs: number } = { size: LOCATE_WAVE_PEERS, delayMs: LOCATE_WAVE_DELAY_MS }): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve) => {
    let next = 0
    let pending = 0
    let timer: ReturnType<typeof setTimeout> | undefined
    let done = false
    const finish = (value: T | undefined): void => {
      done = true
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      resolve(value)
    }
    const onAbort = (): void => { finish(undefined) }
    const launch = (): void => {
      clearTimeout(timer)
      if (done || signal.aborted) return
      const wave = peers.slice(next, next + waves.size)
      next += wave.length
      pending += wave.length
      if (next < peers.length) timer = setTimeout(launch, waves.delayMs)
      for (const peer of wave) {
        ask(peer).then(finish, () => {
          pending--
          if (pending > 0) return
          if (next < peers.length) launch()
          else finish(undefined)
        })
      }
    }
    if (signal.aborted) { finish(undefined); return }
    signal.addEventListener('abort', onAbort, { once: true })
    launch()
  })
}

export interface LocateServerComponents {
  index: FileIndex
  view: MembershipView
  /** Whether a prepared copy of the file waits here for its decision. */
  preparedHere: (id: string) => boolean
}

/** `/dsm/locate`: does this node hold a file? Answers with its manifest and group. */
export function locateHandler (c: LocateServerComponents): ProtocolHandler {
  return rpcHandler(PROTOCOLS.locate, LocateRequestSchema, LocateResponseSchema, async (req) => {
    const answer = answerLocate(c.index, req.id, c.view)
    // A prepared copy whose decision has not arrived: perhaps an acknowledged upload. "Unknown" would be a 404.
    if (answer.state === 'unknown' && c.preparedHere(req.id)) throw new UndecidedError(`${req.id} is being committed here; ask again`)
    return answer
  })
}
