/**
 * Repair: restoring a group's copy count after it loses a member.
 *
 * The rule (also in the README): the group's leader — its ACTIVE member with
 * the lowest peer id — counts seats: members not OFFLINE, plus members
 * OFFLINE for less than `repairAfterMs` (they may come back), plus recruits
 * it asked for that have not shown up yet. When a member has been OFFLINE
 * longer than `repairAfterMs` and the seats are below the group size, it
 * recruits one node: a spare (most free space first), else a member of the
 * largest group that has more live members than the group size (its ACTIVE
 * member with the highest peer id). The recruit switches group (persisted),
 * syncs as SYNCING and turns ACTIVE: the copy count is back. A member that
 * comes back after being replaced simply makes its group one larger, which
 * later repairs draw on first.
 */
import { rpcHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { toError } from '../errors.ts'
import { monotonicNow } from '../util/time.ts'
import { compareGroupNames } from '../membership/view.ts'
import { RecruitRequestSchema, RecruitResponseSchema, PROTOCOLS } from '../wire/messages.ts'
import { request } from '../wire/rpc.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { MembershipView, MemberRecord } from '../membership/view.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions, Startable } from '@libp2p/interface'

/** A recruit that has not shown up in its new group after this long may be replaced. */
export const RECRUIT_GRACE_MS = 30_000

export interface RepairInit {
  groupSize: number
  repairAfterMs: number
  intervalMs: number
}

export interface RepairComponents {
  selfId: string
  status: LocalStatus
  view: MembershipView
  dialer: Dialer
  /** Make `group` this node's group, persisted, and start syncing it. */
  joinGroup: (group: string) => Promise<void>
  logger: Logger
}

const live = (m: MemberRecord): boolean => m.state !== 'OFFLINE'

function liveSeats (view: MembershipView, group: string): number {
  return view.groupMembers(group).filter(m => live(m) && !m.spare).length
}

/** The node to recruit into `group`, or undefined when there is none. */
export function pickRecruit (view: MembershipView, group: string, groupSize: number, exclude: Set<string>): MemberRecord | undefined {
  const usable = (m: MemberRecord): boolean => m.state === 'ACTIVE' && !exclude.has(m.peerId)
  const spare = view.members()
    .filter(m => m.spare && m.group == null && usable(m))
    .sort((a, b) => (b.free - b.reserve) - (a.free - a.reserve) || (a.peerId < b.peerId ? -1 : 1))[0]
  if (spare != null) return spare
  const surplus = view.groups()
    .filter(g => g.name !== group && liveSeats(view, g.name) > groupSize)
    .sort((a, b) => liveSeats(view, b.name) - liveSeats(view, a.name) || compareGroupNames(a.name, b.name))[0]
  if (surplus == null) return undefined
  return surplus.members.filter(usable).sort((a, b) => (a.peerId < b.peerId ? 1 : -1))[0]
}

export class Repair implements Startable {
  private readonly c: RepairComponents
  private readonly init: RepairInit
  private readonly recruits = new Map<string, { group: string, at: number }>()
  private timer?: ReturnType<typeof setInterval>
  private checking = false
  private warned = false

  constructor (components: RepairComponents, init: RepairInit) {
    this.c = components
    this.init = init
  }

  async start (): Promise<void> {
    // check() handles its own failures (logged): the timer has nobody to report to.
    this.timer ??= setInterval(() => { this.round = this.check() }, this.init.intervalMs)
  }

  /** Stop; a check in flight finishes first (it must not recruit on a node that is going away). */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.round
  }

  /** The timer's check in flight (check() never rejects). */
  private round?: Promise<void>
  /** A recruit accepted here is joining its new group: a second request meanwhile is refused (one move at a time). */
  private joining = false

  /** One look at our group; recruit when the leader finds it short of a member. */
  async check (options: AbortOptions = {}): Promise<void> {
    const group = this.c.status.group
    if (group == null || this.c.status.state !== 'ACTIVE' || this.checking) return
    this.checking = true
    try {
      const members = this.c.view.groupMembers(group)
      const leader = members.filter(m => m.state === 'ACTIVE').map(m => m.peerId).sort()[0]
      if (leader !== this.c.selfId) return
      const now = monotonicNow()
      const longGone = (m: MemberRecord): boolean => !live(m) && now - (m.offlineSince ?? m.lastSeen) > this.init.repairAfterMs
      if (!members.some(longGone)) return
      for (const [peer, r] of this.recruits) {
        if (now - r.at > RECRUIT_GRACE_MS || this.c.view.get(peer)?.group === r.group) this.recruits.delete(peer)
      }
      const seats = members.filter(m => !m.spare && !longGone(m)).length + this.recruits.size
      if (seats >= this.init.groupSize) return
      const candidate = pickRecruit(this.c.view, group, this.init.groupSize, new Set(this.recruits.keys()))
      if (candidate == null) {
        if (!this.warned) this.c.logger.warn({ group, seats, target: this.init.groupSize }, 'group is short of members and no spare or surplus member can be recruited')
        this.warned = true
        return
      }
      this.warned = false
      const res = await request(this.c.dialer, peerIdFromString(candidate.peerId), PROTOCOLS.recruit, RecruitRequestSchema,
        { group }, RecruitResponseSchema, options)
      if (res.accepted) {
        this.recruits.set(candidate.peerId, { group, at: now })
        this.c.logger.info({ group, recruit: candidate.peerId }, 'recruited a member to restore the copy count')
      } else {
        this.c.logger.info({ group, candidate: candidate.peerId, reason: res.reason }, 'recruit declined')
      }
    } catch (err) {
      this.c.logger.debug({ err: toError(err).message }, 'repair check failed')
    } finally {
      this.checking = false
    }
  }

  /** A group asks us to join it. */
  async answerRecruit (group: string, from: string): Promise<{ accepted: boolean, reason?: string }> {
    const { status, view } = this.c
    const asker = view.get(from)
    if (asker?.group !== group || asker.state !== 'ACTIVE') return { accepted: false, reason: 'only an ACTIVE member of the group can recruit for it' }
    if (status.group === group) return { accepted: true }
    if (status.state !== 'ACTIVE') return { accepted: false, reason: `busy (${status.state})` }
    if (status.group != null && liveSeats(view, status.group) <= this.init.groupSize) {
      return { accepted: false, reason: `group ${status.group} has no member to spare` }
    }
    // Checked and taken in one turn: two groups recruiting at once must not both pass the checks above.
    if (this.joining) return { accepted: false, reason: 'busy (joining another group)' }
    this.joining = true
    try {
      await this.c.joinGroup(group)
    } finally {
      this.joining = false
    }
    return { accepted: true }
  }
}

/** `/dsm/recruit`: an ACTIVE member of a short group asks this node to join it. */
export function recruitHandler (repair: Pick<Repair, 'answerRecruit'>): ProtocolHandler {
  return rpcHandler(PROTOCOLS.recruit, RecruitRequestSchema, RecruitResponseSchema, async (req, remote) => repair.answerRecruit(req.group, remote))
}
