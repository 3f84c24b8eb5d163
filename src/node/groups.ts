/**
 * Group assignment.
 *
 * The rule (also in the README):
 * 1. A node started with `--group NAME` joins NAME; a node started with
 *    `--spare` joins none and waits to be recruited. The choice is persisted:
 *    a restarted node keeps its group.
 * 2. Otherwise it auto-joins: among groups with fewer live members than
 *    `groupSize`, the one with the fewest members (ties: the lowest name, in
 *    natural order); if every group is full, it founds `g<k>`, the lowest k
 *    not used by any known group.
 * 3. It announces that choice as JOINING for `joinSettleMs`, then ranks the
 *    group: committed members first, then joining ones, each by peer id. If its
 *    rank is below `groupSize` it commits; otherwise it chooses again.
 *    Nodes that start together pick the same group name (rule 2 is
 *    deterministic), the lowest peer ids keep their seats and the rest move
 *    on, so concurrent starts converge instead of founding groups forever.
 */
import type { MemberRecord } from './membership/view.ts'
import { compareGroupNames } from './membership/view.ts'

/** Members that take a seat in a group: alive and not spares. */
function seated (members: MemberRecord[], group: string): MemberRecord[] {
  return members.filter(m => m.group === group && m.state !== 'OFFLINE' && !m.spare)
}

export function chooseGroup (members: MemberRecord[], selfId: string, groupSize: number): string {
  const others = members.filter(m => m.peerId !== selfId)
  const names = new Set(others.flatMap(m => m.group == null ? [] : [m.group]))
  const open = [...names]
    .map(name => ({ name, size: seated(others, name).length }))
    .filter(g => g.size > 0 && g.size < groupSize)
    .sort((a, b) => a.size - b.size || compareGroupNames(a.name, b.name))
  if (open[0] != null) return open[0].name
  return nextGroupName(names)
}

/** The lowest `g<k>` not in use; a group whose members are all offline still owns its name. */
export function nextGroupName (used: Set<string>): string {
  for (let k = 1; ; k++) {
    if (!used.has(`g${k}`)) return `g${k}`
  }
}

/** Seat order of a group: committed members first, then joining ones, each by peer id. */
export function rankInGroup (members: MemberRecord[], group: string, selfId: string): number {
  const order = seated(members, group).sort((a, b) => {
    const joiningA = a.state === 'JOINING' ? 1 : 0
    const joiningB = b.state === 'JOINING' ? 1 : 0
    return joiningA - joiningB || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
  })
  const rank = order.findIndex(m => m.peerId === selfId)
  return rank === -1 ? order.length : rank
}
