/**
 * Membership over gossipsub: publish a heartbeat every interval, validate
 * everyone else's, keep the view, mark silent members OFFLINE, announce leave
 * on a clean stop. A joining node also pulls a full view from a peer
 * (`/dsm/members/1.0.0`) so it need not wait for gossip to hear everyone.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { CLOCK_SKEW_WARN_MS, MEMBERSHIP_TOPIC, REFRESH_VIEW_TIMEOUT_MS } from '../constants.ts'
import { InvalidHeartbeatError, toError } from '../errors.ts'
import { monotonicNow } from '../util/time.ts'
import { LeaveAckSchema, LeaveNoticeSchema, MembersRequestSchema, MembersResponseSchema, PROTOCOLS } from '../wire/messages.ts'
import { request, serve } from '../wire/rpc.ts'
import { DROP_REASONS, checkHeartbeat } from './heartbeat.ts'
import { HeartbeatRateLimit } from './rate-limit.ts'
import { MembershipView } from './view.ts'
import type { DropReason } from './heartbeat.ts'
import { KNOWN_PEERS_SAVE_INTERVAL_MS, MAX_KNOWN_PEERS } from './known-peers.ts'
import type { KnownPeersStore } from './known-peers.ts'
import type { HeartbeatSeal } from './seal.ts'
import type { Logger } from '../logger.ts'
import type { Heartbeat, MembersResponse } from '../wire/messages.ts'
import type { Dialer, Registrar } from '../wire/rpc.ts'
import type { Capacity, LocalStatus } from './local-status.ts'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { AbortOptions, PeerId, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A state change is announced again after these delays (each shorter than the heartbeat interval). */
export const STATE_REANNOUNCE_DELAYS_MS = [1_000, 5_000] as const
/** How long a leaving node waits for its peers to acknowledge the leave notice. */
export const LEAVE_NOTICE_TIMEOUT_MS = 1_000
/** A joining node pulls the views of this many peers before it commits to a group... */
export const REFRESH_VIEW_PEERS = 8
/** Members OFFLINE for this long are dropped from the view. */
export const FORGET_OFFLINE_AFTER_MS = 24 * 60 * 60 * 1000

export interface MembershipInit {
  heartbeatIntervalMs: number
  offlineAfterMs: number
  version: string
  /**
   * Orders our heartbeats across restarts: persisted and raised at every
   * start (./node-state.ts), never taken from the clock, so a restart with a
   * clock set back is not mistaken for an old heartbeat.
   */
  incarnation: number
}

export interface MembershipComponents {
  peerId: PeerId
  pubsub: Pick<GossipSub, 'subscribe' | 'unsubscribe' | 'publish' | 'topicValidators' | 'addEventListener' | 'removeEventListener'>
  registrar: Registrar
  dialer: Dialer
  /** Peers we hold a connection to (told directly when we leave). */
  connectedPeers: () => PeerId[]
  status: LocalStatus
  /** Our own dialable addresses, as advertised in heartbeats. */
  addresses: () => Multiaddr[]
  /** Data-dir capacity and the bytes this node keeps free. */
  capacity: () => Promise<Capacity & { reserve: number }>
  /** Remember a member's addresses so it can be dialled by peer id. */
  rememberAddrs: (peerId: string, addrs: string[]) => Promise<void>
  /** Seals our heartbeats and opens everyone else's (cluster secret, member signature). */
  seal: HeartbeatSeal
  /** Has this peer proven the cluster secret on a connection to us? (Views are pulled only from such peers.) */
  isProven: (peer: PeerId) => boolean
  /** The members known before a restart (./known-peers.ts); none kept without it. */
  knownPeers?: KnownPeersStore
  logger: Logger
}

export class Membership implements Startable {
  readonly view: MembershipView
  readonly dropped: Record<DropReason, number>
  private readonly components: MembershipComponents
  private readonly init: MembershipInit
  private seq = 0
  /** When the heartbeat timer last fired (monotonic ms). */
  private lastTick?: number
  /** The save of the known members in flight, and when the last one began (monotonic ms). */
  private saving?: Promise<void>
  private lastSaved = -Infinity
  private timer?: ReturnType<typeof setInterval>
  /** Follow-up announces of a state change (see onStatusChange). */
  private readonly followUps = new Set<ReturnType<typeof setTimeout>>()
  private started = false
  private readonly decoded = new WeakMap<Message, { heartbeat: Heartbeat, sealed: Uint8Array }>()
  private readonly rateLimit = new HeartbeatRateLimit()

  constructor (components: MembershipComponents, init: MembershipInit) {
    this.components = components
    this.init = init
    this.view = new MembershipView({
      selfId: components.peerId.toString(),
      offlineAfterMs: init.offlineAfterMs,
      forgetAfterMs: FORGET_OFFLINE_AFTER_MS
    })
    this.dropped = Object.fromEntries(DROP_REASONS.map(r => [r, 0])) as Record<DropReason, number>
  }

  isStarted (): boolean { return this.started }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    const { pubsub } = this.components
    pubsub.topicValidators.set(MEMBERSHIP_TOPIC, this.validate)
    pubsub.addEventListener('message', this.onMessage)
    pubsub.subscribe(MEMBERSHIP_TOPIC)
    this.components.status.addEventListener('change', this.onStatusChange)
    await serve(this.components.registrar, PROTOCOLS.members, MembersRequestSchema, MembersResponseSchema,
      async (req) => this.snapshot(req.group))
    await serve(this.components.registrar, PROTOCOLS.leave, LeaveNoticeSchema, LeaveAckSchema,
      async (notice, remote) => this.onLeave(notice.sealed, remote.toString()))
    await this.restoreKnown()
    this.timer = setInterval(this.tick, this.init.heartbeatIntervalMs)
    await this.announce()
  }

  /** The members known before the restart, as OFFLINE hearsay: dialled again, and counted in our group. */
  private async restoreKnown (): Promise<void> {
    const store = this.components.knownPeers
    if (store == null) return
    let records: Uint8Array[]
    try {
      records = await store.load()
    } catch (err) {
      this.components.logger.warn({ err: toError(err).message }, 'could not read the members this node knew before it restarted; gossip will tell it')
      return
    }
    const now = monotonicNow()
    for (const sealed of records) {
      const opened = await this.components.seal.open(sealed)
      // Records sealed with a secret we no longer hold (rotated away) or damaged: skipped.
      if (!opened.ok || opened.heartbeat.peer === this.components.peerId.toString()) continue
      // As old as its member's clock says (at least OFFLINE): one gone for longer than a day is forgotten at once.
      const ageMs = Math.max(this.init.offlineAfterMs + 1, Date.now() - opened.heartbeat.ts)
      if (this.view.apply(opened.heartbeat, now, { ageMs, confirmed: false, sealed }) === 'applied') {
        await this.components.rememberAddrs(opened.heartbeat.peer, opened.heartbeat.addrs).catch(() => {})
      }
    }
  }

  /** Keep the view for the next start (one write at a time; at most every KNOWN_PEERS_SAVE_INTERVAL_MS from the tick). */
  private async saveKnown (): Promise<void> {
    const store = this.components.knownPeers
    if (store == null) return
    const records = this.view.members().filter(m => !m.self && m.sealed != null)
      .sort((a, b) => b.lastSeen - a.lastSeen).slice(0, MAX_KNOWN_PEERS).map(m => m.sealed as Uint8Array)
    await store.save(records)
  }

  private saveKnownLogged (now: number): void {
    if (this.components.knownPeers == null || this.saving != null || now - this.lastSaved < KNOWN_PEERS_SAVE_INTERVAL_MS) return
    this.lastSaved = now
    this.saving = this.saveKnown()
      .catch(err => { this.components.logger.warn({ err: toError(err).message }, 'could not save the members this node knows') })
      .finally(() => { this.saving = undefined })
  }

  /** Stop; `leave` (the default) tells peers at once that we are going. */
  async stop (options: { leave?: boolean } = {}): Promise<void> {
    if (!this.started) return
    this.started = false
    clearInterval(this.timer)
    for (const t of this.followUps) clearTimeout(t)
    this.followUps.clear()
    this.components.status.removeEventListener('change', this.onStatusChange)
    if (options.leave !== false) await this.leave()
    const { pubsub } = this.components
    pubsub.unsubscribe(MEMBERSHIP_TOPIC)
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.topicValidators.delete(MEMBERSHIP_TOPIC)
    await this.components.registrar.unhandle(PROTOCOLS.members)
    await this.components.registrar.unhandle(PROTOCOLS.leave)
    await this.saving
    await this.saveKnown().catch(err => { this.components.logger.warn({ err: toError(err).message }, 'could not save the members this node knows') })
  }

  /**
   * Announce leave by gossip and, to every connected peer, directly: a
   * gossip message still queued when the connections close is lost, while a
   * direct notice is answered, so we know it arrived (bounded by a timeout).
   */
  private async leave (): Promise<void> {
    const hb = await this.heartbeat('OFFLINE')
    const sealed = await this.components.seal.seal(hb)
    this.view.apply(hb, monotonicNow(), { sealed })
    await this.publish(sealed)
    const signal = AbortSignal.timeout(LEAVE_NOTICE_TIMEOUT_MS)
    const peers = this.components.connectedPeers().filter(p => this.components.isProven(p))
    await Promise.allSettled(peers.map(async peer =>
      request(this.components.dialer, peer, PROTOCOLS.leave, LeaveNoticeSchema, { sealed }, LeaveAckSchema, { signal })))
  }

  private async onLeave (sealed: Uint8Array, remote: string): Promise<{ ok: true }> {
    // The secure channel authenticated `remote`: only a member can announce its own leave.
    const opened = await this.components.seal.open(sealed, remote)
    if (!opened.ok || opened.heartbeat.state !== 'OFFLINE') {
      this.dropped[opened.ok ? 'forged' : opened.reason]++
      throw new InvalidHeartbeatError('a leave notice must be the leaving member\'s own sealed OFFLINE heartbeat')
    }
    if (this.view.apply(opened.heartbeat, monotonicNow(), { sealed }) === 'stale') this.dropped.stale++
    return { ok: true }
  }

  /** Publish our heartbeat now (also updates our own record in the view). */
  async announce (): Promise<void> {
    if (!this.started) return
    const hb = await this.heartbeat()
    const sealed = await this.components.seal.seal(hb)
    this.view.apply(hb, monotonicNow(), { sealed })
    await this.publish(sealed)
  }

  /** Pull a peer's view (whole, or of one `group`) and merge it (hearsay until members confirm). */
  async fetchView (peer: PeerId | Multiaddr, options: AbortOptions & { group?: string } = {}): Promise<number> {
    const req = options.group != null ? { group: options.group } : {}
    const res = await request(this.components.dialer, peer, PROTOCOLS.members, MembersRequestSchema, req, MembersResponseSchema, options)
    let applied = 0
    for (const { sealed, ageMs } of res.members) {
      // Each record must be its member's own words, sealed with our secret: a peer cannot describe another.
      const opened = await this.components.seal.open(sealed)
      if (!opened.ok) {
        this.dropped[opened.reason]++
        continue
      }
      const heartbeat = opened.heartbeat
      if (heartbeat.peer === this.components.peerId.toString()) continue
      if (this.view.apply(heartbeat, monotonicNow(), { ageMs, confirmed: false, sealed }) === 'applied') {
        applied++
        await this.components.rememberAddrs(heartbeat.peer, heartbeat.addrs)
      }
    }
    return applied
  }

  /**
   * Merge the views of up to `limit` connected peers, `prefer`red ones first:
   * fresher than waiting for gossip while meshes are still forming. With
   * `group`, only that group's records travel (a few instead of the cluster).
   */
  async refresh (options: AbortOptions & { prefer?: string[], limit?: number, group?: string } = {}): Promise<void> {
    const prefer = new Set(options.prefer ?? [])
    // A peer without the secret fails fetchView at once (its handshake fails); one still proving itself is waited for.
    const peers = this.components.connectedPeers()
      .sort((a, b) => Number(prefer.has(b.toString())) - Number(prefer.has(a.toString())))
      .slice(0, options.limit ?? REFRESH_VIEW_PEERS)
    const signal = options.signal ?? AbortSignal.timeout(REFRESH_VIEW_TIMEOUT_MS)
    await Promise.allSettled(peers.map(async p => this.fetchView(p, { signal, ...(options.group != null ? { group: options.group } : {}) })))
  }

  private snapshot (group?: string): MembersResponse {
    const now = monotonicNow()
    // A record is relayed as its member sealed it; the state we derived (OFFLINE after silence) travels as its age.
    return {
      members: (group != null ? this.view.groupMembers(group) : this.view.members()).flatMap(m => m.sealed == null
        ? []
        : [{
            sealed: m.sealed,
            ageMs: Math.max(0, now - m.lastSeen)
          }])
    }
  }

  private async heartbeat (state = this.components.status.state): Promise<Heartbeat> {
    const { status } = this.components
    const capacity = await this.components.capacity().catch(() => ({ total: 0, free: 0, reserve: 0 }))
    return {
      peer: this.components.peerId.toString(),
      addrs: this.components.addresses().map(a => a.toString()).slice(0, 32),
      group: status.group,
      state,
      total: capacity.total,
      free: capacity.free,
      load: status.load,
      version: this.init.version,
      incarnation: this.init.incarnation,
      seq: ++this.seq,
      ts: Date.now(),
      sync: status.sync,
      spare: status.spare,
      reserve: capacity.reserve
    }
  }

  private async publish (sealed: Uint8Array): Promise<void> {
    try {
      await this.components.pubsub.publish(MEMBERSHIP_TOPIC, sealed)
    } catch (err) {
      this.components.logger.debug({ err: toError(err).message }, 'heartbeat publish failed')
    }
  }

  private readonly tick = (): void => {
    const now = monotonicNow()
    // A tick that comes late means this process was stalled: that time is not the members' silence.
    if (this.lastTick != null) this.view.forgive(now - this.lastTick - 2 * this.init.heartbeatIntervalMs, now)
    this.lastTick = now
    this.view.sweep(now)
    this.announceLogged('heartbeat failed')
    this.saveKnownLogged(now)
  }

  /** Announce from a timer or an event: a failure is logged, there is no caller to tell. */
  private announceLogged (what: string): void {
    this.announce().catch(err => { this.components.logger.warn({ err: toError(err).message }, what) })
  }

  /**
   * A state change is announced at once, and again a little later when the
   * next heartbeat is further away: a node that has just started publishes its
   * first changes before gossipsub knows who subscribes (such a message reaches
   * nobody), and with a slow heartbeat the cluster would see the change only a
   * whole period later. Changes in quick succession (a joiner's group, then
   * SYNCING, then ACTIVE) share one series of follow-ups: each carries the
   * latest state, so the earlier series would only repeat it.
   */
  private readonly onStatusChange = (): void => {
    this.announceLogged('announce failed')
    for (const t of this.followUps) clearTimeout(t)
    this.followUps.clear()
    for (const delay of STATE_REANNOUNCE_DELAYS_MS) {
      if (delay >= this.init.heartbeatIntervalMs) continue
      const t = setTimeout(() => {
        this.followUps.delete(t)
        this.announceLogged('announce failed')
      }, delay)
      this.followUps.add(t)
    }
  }

  private readonly validate = async (from: PeerId, msg: Message): Promise<TopicValidatorResult> => {
    const check = await checkHeartbeat(msg, this.components.seal)
    if (!check.ok) {
      this.dropped[check.reason]++
      this.components.logger.debug({ reason: check.reason, detail: check.detail }, 'heartbeat dropped')
      // Whoever hands us a heartbeat without the secret's MAC, or a forged one, is scored down.
      return TopicValidatorResult.Reject
    }
    if (!this.rateLimit.take(check.heartbeat.peer, monotonicNow())) {
      this.dropped.flood++
      // Penalise the flooder itself, not an honest peer that relayed its heartbeats.
      return from.toString() === check.heartbeat.peer ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    }
    this.decoded.set(msg, check)
    return TopicValidatorResult.Accept
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    if (evt.detail.topic !== MEMBERSHIP_TOPIC) return
    const check = this.decoded.get(evt.detail)
    if (check == null) return
    const hb = check.heartbeat
    // Its clock against ours (gossip adds milliseconds): reported, never a reason to drop it.
    const skewMs = hb.ts - Date.now()
    const previous = this.view.get(hb.peer)?.skewMs
    if (this.view.apply(hb, monotonicNow(), { sealed: check.sealed, skewMs }) === 'stale') {
      this.dropped.stale++
      return
    }
    this.reportSkew(hb.peer, previous, skewMs)
    this.components.rememberAddrs(hb.peer, hb.addrs).catch(err => {
      this.components.logger.debug({ err: toError(err).message, peer: hb.peer }, 'could not store member addresses')
    })
  }

  /** Log when a member's clock moves beyond (or back within) CLOCK_SKEW_WARN_MS of ours. */
  private reportSkew (peer: string, previous: number | undefined, skewMs: number): void {
    const off = (v: number | undefined): boolean => v != null && Math.abs(v) > CLOCK_SKEW_WARN_MS
    if (off(skewMs) && !off(previous)) {
      this.components.logger.warn({ peer: peer.slice(-8), skewMs }, `member's clock is ${Math.round(skewMs / 1000)} s ${skewMs > 0 ? 'ahead of' : 'behind'} ours: run NTP on every host (dsm keeps working; signed-URL expiry and timestamps shown to users follow each host's clock)`)
    } else if (!off(skewMs) && off(previous)) {
      this.components.logger.info({ peer: peer.slice(-8), skewMs }, 'member\'s clock agrees with ours again')
    }
  }
}

export function createMembership (init: MembershipInit): (components: MembershipComponents) => Membership {
  return (components) => new Membership(components, init)
}
