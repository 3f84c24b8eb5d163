/**
 * Staying connected: dial the bootstrap addresses (with backoff until one
 * answers), pull a view from the first peer reached, and keep enough live
 * connections afterwards — always to our own group mates, to a few other
 * members otherwise — so gossip survives the loss of any one node and
 * partitions heal by themselves.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { toError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from './local-status.ts'
import type { MembershipView } from './view.ts'
import type { AbortOptions, Connection, PeerId, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A node tries to stay connected to at least this many known members. */
export const MIN_CONNECTED_PEERS = 6
/** First retry delay when no bootstrap peer answers; doubles up to the max. */
export const BOOTSTRAP_RETRY_MIN_MS = 250
export const BOOTSTRAP_RETRY_MAX_MS = 10_000
/** Default timeout of one dial. */
export const DIAL_TIMEOUT_MS = 5_000
/**
 * OFFLINE members are dialled again with backoff from the upkeep interval up
 * to this: either side of a healed partition sees the other OFFLINE, and
 * without a redial neither would ever hear from the other again.
 */
export const OFFLINE_REDIAL_MAX_MS = 60_000
/** OFFLINE members outside our group tried per upkeep round (our group's are all tried). */
export const OFFLINE_REDIALS_PER_ROUND = 2

export interface ConnectivityInit {
  bootstrap: string[]
  intervalMs: number
}

export interface ConnectivityComponents {
  dial(target: PeerId | Multiaddr, options?: AbortOptions): Promise<Connection>
  getConnections(): Connection[]
  view: MembershipView
  status: LocalStatus
  fetchView(peer: PeerId, options?: AbortOptions): Promise<number>
  logger: Logger
}

export class Connectivity implements Startable {
  private readonly components: ConnectivityComponents
  private readonly init: ConnectivityInit
  private controller?: AbortController
  private timer?: ReturnType<typeof setInterval>
  private firstContact = Promise.withResolvers<void>()
  private keeping = false
  /** When each OFFLINE member may be dialled again, and the delay after that. */
  private readonly redial = new Map<string, { at: number, delayMs: number }>()

  constructor (components: ConnectivityComponents, init: ConnectivityInit) {
    this.components = components
    this.init = init
  }

  async start (): Promise<void> {
    if (this.controller != null) return
    this.controller = new AbortController()
    this.firstContact = Promise.withResolvers<void>()
    if (this.init.bootstrap.length === 0) this.firstContact.resolve()
    else {
      // Retries until it reaches a peer or stops; a failure of the loop itself is logged (nobody waits on it).
      this.bootstrap(this.controller.signal).catch(err => { this.components.logger.warn({ err: toError(err).message }, 'bootstrap failed') })
    }
    this.timer = setInterval(() => {
      this.keep().catch(err => { this.components.logger.warn({ err: toError(err).message }, 'connection upkeep failed') })
    }, this.init.intervalMs)
  }

  async stop (): Promise<void> {
    this.controller?.abort()
    this.controller = undefined
    clearInterval(this.timer)
    this.firstContact.resolve()
  }

  /** Resolves once a bootstrap peer answered and its view was merged (or there is none). */
  async waitForFirstContact (options: AbortOptions = {}): Promise<void> {
    const aborted = new Promise<void>((resolve, reject) => {
      options.signal?.addEventListener('abort', () => { reject(toError(options.signal?.reason)) }, { once: true })
    })
    await Promise.race([this.firstContact.promise, aborted])
  }

  private async bootstrap (signal: AbortSignal): Promise<void> {
    let delay = BOOTSTRAP_RETRY_MIN_MS
    while (!signal.aborted) {
      const reached = await this.dialBootstrap(signal)
      if (reached.length > 0) {
        await Promise.allSettled(reached.map(async peer => this.components.fetchView(peer, { signal: AbortSignal.any([signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)]) })))
        this.firstContact.resolve()
        return
      }
      this.components.logger.warn({ retryInMs: delay }, 'no bootstrap peer reachable yet')
      await sleep(delay, undefined, { signal }).catch(() => {})
      delay = Math.min(delay * 2, BOOTSTRAP_RETRY_MAX_MS)
    }
  }

  private async dialBootstrap (signal: AbortSignal): Promise<PeerId[]> {
    const results = await Promise.allSettled(this.init.bootstrap.map(async addr =>
      this.components.dial(multiaddr(addr), { signal: AbortSignal.any([signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)]) })))
    results.forEach((r, i) => {
      if (r.status === 'rejected') this.components.logger.debug({ addr: this.init.bootstrap[i], err: toError(r.reason).message }, 'bootstrap dial failed')
    })
    return results.flatMap(r => r.status === 'fulfilled' ? [r.value.remotePeer] : [])
  }

  /** One round of upkeep: reconnect to group mates, top up to MIN_CONNECTED_PEERS. */
  private async keep (): Promise<void> {
    if (this.keeping || this.controller == null) return
    this.keeping = true
    try {
      const connected = new Set(this.components.getConnections().map(c => c.remotePeer.toString()))
      const live = this.components.view.members().filter(m => !m.self && m.state !== 'OFFLINE' && !connected.has(m.peerId))
      const group = this.components.status.group
      const mates = live.filter(m => group != null && m.group === group)
      const others = shuffle(live.filter(m => !mates.includes(m)))
      const wanted = [...mates, ...others.slice(0, Math.max(0, MIN_CONNECTED_PEERS - connected.size))]
      await Promise.allSettled([
        ...wanted.map(async m => this.components.dial(peerIdFromString(m.peerId), { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })),
        this.redialOffline(connected, group)
      ])
      if (connected.size === 0 && this.init.bootstrap.length > 0 && this.controller != null) {
        await this.dialBootstrap(this.controller.signal)
      }
    } finally {
      this.keeping = false
    }
  }

  /** Try OFFLINE members again (mates first), each with its own backoff; one that answers is asked for its view. */
  private async redialOffline (connected: Set<string>, group: string | null): Promise<void> {
    const now = performance.now()
    const offline = this.components.view.members().filter(m => !m.self && m.state === 'OFFLINE' && !connected.has(m.peerId))
    const known = new Set(offline.map(m => m.peerId))
    for (const peer of this.redial.keys()) if (!known.has(peer)) this.redial.delete(peer)
    const due = offline.filter(m => (this.redial.get(m.peerId)?.at ?? 0) <= now)
    const mates = due.filter(m => group != null && m.group === group)
    const tried = [...mates, ...shuffle(due.filter(m => !mates.includes(m))).slice(0, OFFLINE_REDIALS_PER_ROUND)]
    await Promise.allSettled(tried.map(async m => {
      const delayMs = Math.min((this.redial.get(m.peerId)?.delayMs ?? this.init.intervalMs / 2) * 2, OFFLINE_REDIAL_MAX_MS)
      this.redial.set(m.peerId, { at: now + delayMs, delayMs })
      const peer = peerIdFromString(m.peerId)
      await this.components.dial(peer, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
      this.redial.delete(m.peerId)
      await this.components.fetchView(peer, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
    }))
  }
}

function shuffle<T> (items: T[]): T[] {
  const a = [...items]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const tmp = a[i] as T
    a[i] = a[j] as T
    a[j] = tmp
  }
  return a
}

export function createConnectivity (init: ConnectivityInit): (components: ConnectivityComponents) => Connectivity {
  return (components) => new Connectivity(components, init)
}
