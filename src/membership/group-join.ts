/**
 * Runs the group assignment rule of ./groups.ts at start-up and persists the
 * result, so a restarted node keeps its group.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { chooseGroup, rankInGroup } from './groups.ts'
import type { Logger } from '../logger.ts'
import type { NodeStateFile } from './node-state.ts'
import type { LocalStatus } from './local-status.ts'
import type { MembershipView } from './view.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface GroupJoinInit {
  group: string | null
  spare: boolean
  groupSize: number
  joinSettleMs: number
}

export interface GroupJoinComponents {
  selfId: string
  state: NodeStateFile
  view: MembershipView
  status: LocalStatus
  /** Wait until we heard from the cluster (bootstrap view merged). */
  waitForContact: (options: AbortOptions) => Promise<void>
  /** Pull fresh views from peers, members of `group` first. */
  refreshView: (group: string, options: AbortOptions) => Promise<void>
  logger: Logger
}

export type Assignment = { group: string, spare: false, how: 'persisted' | 'configured' | 'auto' } | { group: null, spare: true, how: 'persisted' | 'configured' }

/** Decide this node's group; resolves once it is committed and persisted. */
export async function joinGroup (c: GroupJoinComponents, init: GroupJoinInit, options: AbortOptions = {}): Promise<Assignment> {
  const persisted = c.state.group
  if (persisted != null) {
    if (init.group != null && init.group !== persisted) {
      c.logger.warn({ persisted, configured: init.group }, 'keeping the persisted group; the configured one is ignored (a member cannot change groups by flag: its data belongs to its group)')
    }
    c.status.setGroup(persisted)
    return { group: persisted, spare: false, how: 'persisted' }
  }
  if (init.group != null) {
    await c.state.setGroup(init.group)
    c.status.setGroup(init.group)
    return { group: init.group, spare: false, how: 'configured' }
  }
  if (init.spare || c.state.spare) {
    const how = init.spare ? 'configured' : 'persisted'
    await c.state.setSpare()
    c.status.setGroup(null, true)
    return { group: null, spare: true, how }
  }
  await c.waitForContact(options)
  return autoJoin(c, init, options)
}

/**
 * The auto-join rule: choose a seat, announce it as JOINING, keep it if it
 * holds; else choose again. Also how a surplus member moves on (./surplus.ts).
 */
export async function autoJoin (c: GroupJoinComponents, init: GroupJoinInit, options: AbortOptions = {}): Promise<Assignment & { how: 'auto' }> {
  for (;;) {
    const tentative = chooseGroup(c.view.members(), c.selfId, init.groupSize)
    c.status.setGroup(tentative)
    await sleep(init.joinSettleMs, undefined, options)
    if (await holdsSeat(c, init, tentative, options)) {
      await c.state.setGroup(tentative, { auto: true })
      c.logger.info({ group: tentative }, 'joined group')
      return { group: tentative, spare: false, how: 'auto' }
    }
    c.logger.debug({ group: tentative }, 'group overfull, choosing again')
  }
}

/**
 * Our seat in `group` must hold in two fresh views taken a settle period
 * apart: gossip meshes form over seconds, so each check first asks peers
 * directly, and a node that chose a moment after our first look is caught by
 * the second.
 */
async function holdsSeat (c: GroupJoinComponents, init: GroupJoinInit, group: string, options: AbortOptions): Promise<boolean> {
  for (let check = 0; check < 2; check++) {
    if (check > 0) await sleep(init.joinSettleMs / 2, undefined, options)
    await c.refreshView(group, options)
    if (rankInGroup(c.view.members(), group, c.selfId) >= init.groupSize) return false
  }
  return true
}
