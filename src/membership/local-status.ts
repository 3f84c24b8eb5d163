/**
 * What this node says about itself in its heartbeats: lifecycle state, group,
 * load and sync position. Owned by the node, read by membership; a change of
 * state or group is announced at once rather than at the next heartbeat.
 */
import { statfs } from 'node:fs/promises'
import { TypedEventEmitter } from 'main-event'
import { canTransition } from '../wire/state.ts'
import type { NodeState } from '../wire/state.ts'
import type { SyncStatus } from '../wire/messages.ts'
import type { Capacity } from '../store/local-store.ts'

export interface LocalStatusEvents {
  /** State, group or spare flag changed, or a SYNCING node learned it has files to fetch: worth an immediate heartbeat. */
  change: CustomEvent<{ state: NodeState, group: string | null }>
}

export type { Capacity }

export class LocalStatus extends TypedEventEmitter<LocalStatusEvents> {
  private _state: NodeState = 'JOINING'
  private _group: string | null = null
  private _spare = false
  private transfers = 0
  private _sync: SyncStatus = { head: 0, filesToGo: 0, bytesToGo: 0 }

  get state (): NodeState { return this._state }
  get group (): string | null { return this._group }
  get spare (): boolean { return this._spare }
  get sync (): SyncStatus { return this._sync }

  /**
   * The sync position. A SYNCING node that finds it has files to fetch says
   * so at once: otherwise a short catch-up can end before the next heartbeat,
   * and nobody ever sees its progress.
   */
  setSync (next: SyncStatus): void {
    const learned = this._state === 'SYNCING' && this._sync.filesToGo === 0 && next.filesToGo > 0
    this._sync = next
    if (learned) this.changed()
  }

  /** Transfers in progress (uploads received and downloads served). */
  get load (): number { return this.transfers }

  setState (to: NodeState): void {
    if (to === this._state) return
    if (!canTransition(this._state, to)) throw new Error(`illegal state transition ${this._state} → ${to}`)
    this._state = to
    this.changed()
  }

  setGroup (group: string | null, spare = false): void {
    if (group === this._group && spare === this._spare) return
    this._group = group
    this._spare = spare
    this.changed()
  }

  /** Count a transfer until the returned function is called (idempotent). */
  beginTransfer (): () => void {
    this.transfers++
    let ended = false
    return () => {
      if (!ended) { ended = true; this.transfers-- }
    }
  }

  private changed (): void {
    this.safeDispatchEvent('change', { detail: { state: this._state, group: this._group } })
  }
}

export async function diskCapacity (dir: string): Promise<Capacity> {
  const s = await statfs(dir)
  return { total: s.blocks * s.bsize, free: s.bavail * s.bsize }
}
