/**
 * Where a write goes. Placement picks the group among those with at least
 * `--min-copies` ACTIVE members; failing that, among those that can keep
 * their copy floor (every member of a group smaller than that: a group of
 * one keeps one copy, so it takes writes only when no group can keep more —
 * in a 3, 3, 1 cluster the lone node's group got files with a single copy,
 * lost with that node); failing that, any group with an ACTIVE member: a
 * degraded group gets no new files while another group can take them. Among those, `most-free` (default)
 * takes the group whose fullest ACTIVE member has the most room above its
 * reserve (every member stores every file, so the fullest one bounds the
 * group); `round-robin` cycles through groups by name. The coordinator is
 * this node when it is an ACTIVE member, else the least-loaded ACTIVE member.
 */
import { GroupNotFoundError, NoGroupAvailableError } from '../errors.ts'
import { compareGroupNames } from '../membership/view.ts'
import type { MembershipView, MemberRecord } from '../membership/view.ts'

export const PLACEMENTS = ['most-free', 'round-robin'] as const

/** No upload is acknowledged with fewer copies (where the group has that many members): see copyFloor. */
export const DEFAULT_MIN_COPIES = 2

/**
 * The fewest copies an upload may be acknowledged with, whatever the quorum
 * says: a member that sees its mates OFFLINE (partitioned, or its view is
 * wrong) must not take writes alone. Never more than the group has members
 * (a one-node group takes writes), counting those OFFLINE.
 */
export function copyFloor (view: MembershipView, group: string, minCopies: number | null | undefined, quorum: 'all' | number): number {
  const known = view.groupMembers(group).filter(m => !m.spare).length
  return Math.max(1, Math.min(wantedCopies(minCopies, quorum), known))
}

/** The copies a write wants at least, before the group's size caps it (see copyFloor). */
export function wantedCopies (minCopies: number | null | undefined, quorum: 'all' | number): number {
  return minCopies ?? (quorum === 'all' ? DEFAULT_MIN_COPIES : Math.min(DEFAULT_MIN_COPIES, quorum))
}
export type Placement = typeof PLACEMENTS[number]

function activeOf (view: MembershipView, group: string): MemberRecord[] {
  return view.groupMembers(group).filter(m => m.state === 'ACTIVE')
}

function room (members: MemberRecord[]): number {
  return Math.min(...members.map(m => m.free - m.reserve))
}

export class PlacementPolicy {
  private readonly policy: Placement
  private turn = 0

  constructor (policy: Placement) {
    this.policy = policy
  }

  /** `floor`: the copy floor of a group for this write (see copyFloor); `wanted`: the copies it wants (wantedCopies). */
  chooseGroup (view: MembershipView, explicit?: string, floor: (group: string) => number = () => 1, wanted = 1): string {
    if (explicit != null) {
      if (view.groupMembers(explicit).length === 0) throw new GroupNotFoundError(`no group named "${explicit}" is known to the cluster`)
      if (activeOf(view, explicit).length === 0) throw new NoGroupAvailableError(`group ${explicit} has no ACTIVE member right now`)
      return explicit
    }
    const live = view.groups().filter(g => activeOf(view, g.name).length > 0)
    if (live.length === 0) throw new NoGroupAvailableError('no group has an ACTIVE member to take the write')
    const full = live.filter(g => activeOf(view, g.name).length >= Math.max(wanted, floor(g.name)))
    const keeping = live.filter(g => activeOf(view, g.name).length >= floor(g.name))
    const open = full.length > 0 ? full : keeping.length > 0 ? keeping : live
    if (this.policy === 'round-robin') {
      const names = open.map(g => g.name).sort(compareGroupNames)
      return names[this.turn++ % names.length] as string
    }
    const ranked = open
      .map(g => ({ name: g.name, room: room(activeOf(view, g.name)) }))
      .sort((a, b) => b.room - a.room || compareGroupNames(a.name, b.name))
    return ranked[0]?.name as string
  }
}

/** This node if it is an ACTIVE member of `group`, else the least-loaded ACTIVE member. */
export function chooseCoordinator (view: MembershipView, group: string): MemberRecord {
  return coordinators(view, group)[0] as MemberRecord
}

/** `group`'s ACTIVE members in the order they coordinate a write (see chooseCoordinator): the next one if one cannot be reached. */
export function coordinators (view: MembershipView, group: string): MemberRecord[] {
  const active = activeOf(view, group)
  const self = active.find(m => m.self)
  if (self != null) return [self]
  const ordered = active.sort((a, b) => a.load - b.load || (b.free - b.reserve) - (a.free - a.reserve) || (a.peerId < b.peerId ? -1 : 1))
  if (ordered.length === 0) throw new NoGroupAvailableError(`group ${group} has no ACTIVE member right now`)
  return ordered
}
