/**
 * Seats that do not race: gossip is eventually consistent, so two nodes
 * joining at once can still both take a group's last seat. The member that
 * finds itself beyond `groupSize` in its group's seat order (./groups.ts
 * rankInGroup) moves on by itself: it chooses again by the auto-join rule, as
 * a joiner would. Only a member that auto-joined does (a --group or recruited
 * seat is the operator's or the group's choice), and only when moving takes
 * no copy the group needs: no prepared upload or transfer in progress here,
 * and the `groupSize` members that keep their seats are all ACTIVE, with
 * nothing left to fetch and at least as many files as this node holds (a
 * start-up race ends before the first upload: the member holds nothing).
 * The surplus must hold in two looks a settle period apart, the second after
 * asking the group's members directly, so a view that is merely behind does
 * not move anybody.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { toError } from '../errors.ts'
import { autoJoin } from './group-join.ts'
import { rankInGroup } from './groups.ts'
import type { GroupJoinComponents, GroupJoinInit } from './group-join.ts'
import type { AbortOptions, Startable } from '@libp2p/interface'

export interface SurplusComponents extends GroupJoinComponents {
  /** A prepared upload or a transfer is in progress here. */
  busy: () => boolean
  /** Files this node holds. */
  filesHeld: () => number
  /** We moved to `group` (persisted, JOINING): catch up with it. */
  moved: (group: string) => void
}

export interface SurplusInit extends GroupJoinInit {
  /** How often the seat is looked at. */
  intervalMs: number
}

export class SurplusCheck implements Startable {
  private readonly c: SurplusComponents
  private readonly init: SurplusInit
  private controller?: AbortController
  private timer?: ReturnType<typeof setInterval>
  private running?: Promise<void>
  /** Moves made (for tests and logs). */
  moves = 0

  constructor (components: SurplusComponents, init: SurplusInit) {
    this.c = components
    this.init = init
  }

  async start (): Promise<void> {
    if (this.controller != null) return
    this.controller = new AbortController()
    this.timer = setInterval(() => { this.check() }, this.init.intervalMs)
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.controller?.abort()
    this.controller = undefined
    await this.running
  }

  /** Is this node a seat too many in its group, and free to move? */
  surplus (): string | undefined {
    const { status, state, view } = this.c
    const group = status.group
    if (group == null || !state.auto || state.group !== group || (status.state !== 'ACTIVE' && status.state !== 'SYNCING')) return undefined
    const members = view.members()
    if (rankInGroup(members, group, this.c.selfId) < this.init.groupSize || this.c.busy()) return undefined
    const held = this.c.filesHeld()
    const staying = members.filter(m => !m.self && m.group === group && rankInGroup(members, group, m.peerId) < this.init.groupSize)
    const cover = staying.every(m => m.state === 'ACTIVE' && m.sync.filesToGo === 0 && (m.sync.files ?? (m.sync.head === 0 ? 0 : -1)) >= held)
    return staying.length >= this.init.groupSize && cover ? group : undefined
  }

  private check (): void {
    const signal = this.controller?.signal
    if (signal == null || this.running != null || this.surplus() == null) return
    this.running = this.confirmAndMove({ signal })
      .catch(err => { if (!signal.aborted) this.c.logger.warn({ err: toError(err).message }, 'could not move on from an over-full group') })
      .finally(() => { this.running = undefined })
  }

  private async confirmAndMove (options: AbortOptions): Promise<void> {
    await sleep(this.init.joinSettleMs, undefined, options)
    const group = this.surplus()
    if (group == null) return
    await this.c.refreshView(group, options)
    // Checked and left in one turn: from here on this node takes no write for the group it leaves.
    if (this.surplus() !== group) return
    this.c.logger.info({ group, groupSize: this.init.groupSize }, 'a seat too many in the group (two nodes joined at once): this node holds nothing of it and moves on')
    this.c.status.setState('JOINING')
    const assignment = await autoJoin(this.c, this.init, options)
    this.moves++
    this.c.moved(assignment.group)
  }
}
