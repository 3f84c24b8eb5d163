/**
 * Group assignment.
 *
 * The rule (also in the README):
 * 1. A node started with `--group NAME` joins NAME; a node started with
 *    `--spare` joins none and waits to be recruited. The choice is persisted:
 *    a restarted node keeps its group.
 * 2. Otherwise it auto-joins. The free seats, in order: those of the groups
 *    with fewer committed (not JOINING) live members than `groupSize` — the
 *    group with the fewest first (ties: the lowest name, in natural order) —
 *    then whole new groups `g<k>`, the lowest k not used by any known group,
 *    upwards. The nodes still JOINING, sorted by peer id, take these seats in
 *    order: a node alone takes the first; nodes that start together and see
 *    each other spread over the groups at once instead of all choosing one.
 * 3. It announces that choice as JOINING for `joinSettleMs`, then ranks the
 *    group: committed members first, then joining ones, each by peer id. If its
 *    rank is below `groupSize` it commits; otherwise it chooses again (views
 *    differ while gossip spreads), so concurrent starts still converge.
 * 4. Should a race still seat one node too many, the auto-joined member last
 *    in that order moves on by itself while it holds no file (./surplus.ts).
 */
import type { MemberRecord } from './view.ts'
import { compareGroupNames } from './view.ts'

/** Members that take a seat in a group: alive and not spares. */
function seated (members: MemberRecord[], group: string): MemberRecord[] {
  return members.filter(m => m.group === group && m.state !== 'OFFLINE' && !m.spare)
}

export function chooseGroup (members: MemberRecord[], selfId: string, groupSize: number): string {
  const others = members.filter(m => m.peerId !== selfId)
  const committed = others.filter(m => m.state !== 'JOINING')
  // A joiner's tentative group is no seat yet, and its name is not taken yet either.
  const used = new Set(committed.flatMap(m => m.group == null ? [] : [m.group]))
  const open = [...used]
    .map(name => ({ name, size: seated(committed, name).length }))
    .filter(g => g.size > 0 && g.size < groupSize)
    .sort((a, b) => a.size - b.size || compareGroupNames(a.name, b.name))
  const joiners = [...new Set([selfId, ...others.filter(m => m.state === 'JOINING' && !m.spare).map(m => m.peerId)])].sort()
  let seat = joiners.indexOf(selfId)
  for (const g of open) {
    if (seat < groupSize - g.size) return g.name
    seat -= groupSize - g.size
  }
  // (A group whose members are all JOINING, i.e. restarting, may be offered as new: its members then
  // commit first and outrank us, or it had a free seat anyway.)
  let name = nextGroupName(used)
  for (let k = Math.floor(seat / groupSize); k > 0; k--) {
    used.add(name)
    name = nextGroupName(used)
  }
  return name
}

/** The lowest `g<k>` not in use; a group whose members are all offline still owns its name. */
export function nextGroupName (used: Set<string>): string {
  for (let k = 1; ; k++) {
    if (!used.has(`g${k}`)) return `g${k}`
  }
}

/**
 * Seat order of a group: committed members first, then joining ones; among
 * each, members that hold files before empty ones (a surplus member that
 * moves on takes nothing with it: ./surplus.ts), then by peer id.
 */
export function rankInGroup (members: MemberRecord[], group: string, selfId: string): number {
  const empty = (m: MemberRecord): number => m.sync.head === 0 && (m.sync.files ?? 0) === 0 ? 1 : 0
  const order = seated(members, group).sort((a, b) => {
    const joiningA = a.state === 'JOINING' ? 1 : 0
    const joiningB = b.state === 'JOINING' ? 1 : 0
    return joiningA - joiningB || empty(a) - empty(b) || (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
  })
  const rank = order.findIndex(m => m.peerId === selfId)
  return rank === -1 ? order.length : rank
}
