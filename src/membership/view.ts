/**
 * A node's view of the cluster: the latest heartbeat of every member it has
 * heard of (itself included), and who went silent. Pure bookkeeping: the
 * gossip side lives in ./service.ts. Every change is a typed event.
 */
import { TypedEventEmitter } from 'main-event'
import type { NodeState } from '../wire/state.ts'
import type { Heartbeat, SyncStatus } from '../wire/messages.ts'

export interface MemberRecord {
  peerId: string
  addrs: string[]
  group: string | null
  /** OFFLINE when the member left or went silent, else what it last reported. */
  state: NodeState
  total: number
  free: number
  load: number
  version: string
  sync: SyncStatus
  spare: boolean
  /** Bytes the member keeps free: it can take `free - reserve` more. */
  reserve: number
  incarnation: number
  seq: number
  /** Local clock (ms) when we last heard from it, directly or via another node. */
  lastSeen: number
  /** Local clock (ms) when we first saw it OFFLINE (left or silent), while it is. */
  offlineSince?: number
  /** True once a heartbeat signed by the member itself reached us. */
  confirmed: boolean
  self: boolean
  /** The member's sealed heartbeat this record comes from (relayed as is in views: see seal.ts). */
  sealed?: Uint8Array
  /** Its clock minus ours, measured from the last heartbeat heard from it directly (ms; positive: it is ahead). */
  skewMs?: number
}

export interface StateChange { peerId: string, from: NodeState, to: NodeState }
export interface GroupChange { peerId: string, from: string | null, to: string | null }

export interface MembershipEvents {
  'member:joined': CustomEvent<MemberRecord>
  'member:state': CustomEvent<StateChange>
  'member:group': CustomEvent<GroupChange>
  'member:offline': CustomEvent<MemberRecord>
  'member:forgotten': CustomEvent<MemberRecord>
  /** Any change at all (including capacity/load updates). */
  change: CustomEvent<MemberRecord>
}

export type ApplyResult = 'applied' | 'stale'

export interface GroupView { name: string, members: MemberRecord[] }

export interface MembershipViewInit {
  selfId: string
  offlineAfterMs: number
  forgetAfterMs: number
}

const byPeerId = (a: MemberRecord, b: MemberRecord): number => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0

export class MembershipView extends TypedEventEmitter<MembershipEvents> {
  private readonly records = new Map<string, MemberRecord>()
  /** members() sorted, until the next change: callers ask often (sync, repair, upkeep), changes are rarer. */
  private sorted?: MemberRecord[]
  private readonly init: MembershipViewInit

  constructor (init: MembershipViewInit) {
    super()
    this.init = init
  }

  get (peerId: string): MemberRecord | undefined {
    return this.records.get(peerId)
  }

  /** The records sorted by peer id, shared: callers outside get copies. */
  private ordered (): MemberRecord[] {
    this.sorted ??= [...this.records.values()].sort(byPeerId)
    return this.sorted
  }

  /** Every change of a record goes through here (or sweep's delete), so the sorted list never goes stale. */
  private put (record: MemberRecord): void {
    this.records.set(record.peerId, record)
    this.sorted = undefined
  }

  members (): MemberRecord[] {
    return [...this.ordered()]
  }

  /** Members by group, groups sorted by name (natural order: g2 before g10). */
  groups (): GroupView[] {
    const byName = new Map<string, MemberRecord[]>()
    for (const m of this.members()) {
      if (m.group == null) continue
      byName.set(m.group, [...(byName.get(m.group) ?? []), m])
    }
    return [...byName.entries()]
      .sort(([a], [b]) => compareGroupNames(a, b))
      .map(([name, members]) => ({ name, members }))
  }

  groupMembers (name: string): MemberRecord[] {
    return this.ordered().filter(m => m.group === name)
  }

  /**
   * Apply a heartbeat. `ageMs` > 0 means it is hearsay: relayed by another
   * node's view, not heard from the member itself.
   */
  apply (hb: Heartbeat, now: number, options: { ageMs?: number, confirmed?: boolean, sealed?: Uint8Array, skewMs?: number } = {}): ApplyResult {
    const prev = this.records.get(hb.peer)
    if (prev != null && !isNewer(hb, prev)) return 'stale'
    const confirmed = options.confirmed ?? true
    const lastSeen = now - (options.ageMs ?? 0)
    // Hearsay about a member nobody heard from lately must not revive it.
    const silent = hb.peer !== this.init.selfId && now - lastSeen > this.init.offlineAfterMs
    const next: MemberRecord = {
      peerId: hb.peer,
      addrs: hb.addrs,
      group: hb.group,
      state: silent ? 'OFFLINE' : hb.state,
      total: hb.total,
      free: hb.free,
      load: hb.load,
      version: hb.version,
      sync: hb.sync,
      spare: hb.spare,
      reserve: hb.reserve,
      incarnation: hb.incarnation,
      seq: hb.seq,
      lastSeen,
      ...(silent || hb.state === 'OFFLINE' ? { offlineSince: prev?.offlineSince ?? now } : {}),
      confirmed: confirmed || (prev?.confirmed ?? false),
      self: hb.peer === this.init.selfId,
      ...(options.sealed != null ? { sealed: options.sealed } : {}),
      ...(options.skewMs != null ? { skewMs: options.skewMs } : prev?.skewMs != null ? { skewMs: prev.skewMs } : {})
    }
    this.put(next)
    this.emitChanges(prev, next)
    return 'applied'
  }

  /**
   * We were not running for `ms` (our event loop stalled: GC, a starved CPU):
   * nobody could be heard meanwhile, so that time must not count as their
   * silence — or one stall of ours would mark the whole cluster OFFLINE.
   */
  forgive (ms: number, now: number): void {
    if (ms <= 0) return
    for (const m of this.records.values()) {
      if (!m.self && m.state !== 'OFFLINE') m.lastSeen = Math.min(now, m.lastSeen + ms)
    }
  }

  /** Mark silent members OFFLINE and forget long-gone ones. */
  sweep (now: number): void {
    const { offlineAfterMs, forgetAfterMs } = this.init
    for (const m of [...this.records.values()]) {
      if (m.self) continue
      const silentMs = now - m.lastSeen
      if (m.state === 'OFFLINE' && silentMs > forgetAfterMs) {
        this.records.delete(m.peerId)
        this.sorted = undefined
        this.safeDispatchEvent('member:forgotten', { detail: m })
      } else if (m.state !== 'OFFLINE' && silentMs > offlineAfterMs) {
        this.setOffline(m, now)
      }
    }
  }

  private setOffline (m: MemberRecord, now: number): void {
    const next = { ...m, state: 'OFFLINE' as const, offlineSince: now }
    this.put(next)
    this.emitChanges(m, next)
  }

  private emitChanges (prev: MemberRecord | undefined, next: MemberRecord): void {
    if (prev == null) {
      this.safeDispatchEvent('member:joined', { detail: next })
    } else {
      if (prev.group !== next.group) {
        this.safeDispatchEvent('member:group', { detail: { peerId: next.peerId, from: prev.group, to: next.group } })
      }
      if (prev.state !== next.state) {
        this.safeDispatchEvent('member:state', { detail: { peerId: next.peerId, from: prev.state, to: next.state } })
        if (next.state === 'OFFLINE') this.safeDispatchEvent('member:offline', { detail: next })
      }
    }
    this.safeDispatchEvent('change', { detail: next })
  }
}

/** A heartbeat supersedes a record if it comes from a later incarnation or later in the same one. */
function isNewer (hb: Heartbeat, rec: MemberRecord): boolean {
  return hb.incarnation > rec.incarnation || (hb.incarnation === rec.incarnation && hb.seq > rec.seq)
}

/** Natural order: "g2" < "g10"; plain string order otherwise. */
export function compareGroupNames (a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true })
}
