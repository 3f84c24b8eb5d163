/**
 * Deleting a file. A member of the file's group stamps a delete operation
 * after the file's own stamp (so it wins last-writer-wins everywhere), applies
 * it — a tombstone in its group log, chunks collected — and pushes it to the
 * other members (`/dsm/apply/1.0.0`). A member that is offline gets the
 * tombstone when it syncs, and the tombstone stops it from bringing the file
 * back.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { FileNotFoundError, NotAMemberError, UnavailableError } from '../errors.ts'
import { copyFloor } from './placement.ts'
import { ApplyRequestSchema, ApplyResultSchema, PROTOCOLS } from '../wire/messages.ts'
import { request } from '../wire/rpc.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { MembershipView } from '../membership/view.ts'
import type { DeleteOp } from '../store/file-index.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { DeleteResult } from '../wire/messages.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface DeleteComponents {
  selfId: string
  store: LocalStore
  status: LocalStatus
  view: MembershipView
  dialer: Dialer
  /** The copy floor (--min-copies; see placement.ts copyFloor): a delete is acknowledged once that many members applied it. */
  minCopies?: number | null
}

function assertMember (status: LocalStatus, group: string): void {
  if (status.group !== group || (status.state !== 'ACTIVE' && status.state !== 'SYNCING')) {
    throw new NotAMemberError(`not a member of group ${group}`)
  }
}

/** Coordinate the delete of a file of our own group. */
export async function deleteAsMember (c: DeleteComponents, id: string, options: AbortOptions = {}): Promise<DeleteResult> {
  const row = c.store.index.get(id)
  if (row == null || row.state === 'deleted') throw new FileNotFoundError(`file ${id} does not exist (or was deleted)`)
  assertMember(c.status, row.group)
  const others = c.view.groupMembers(row.group).filter(m => !m.self && m.state !== 'OFFLINE')
  // Like an upload: a delete held by fewer durable copies than the floor could come back with this one disk.
  const floor = copyFloor(c.view, row.group, c.minCopies, 'all')
  if (others.length + 1 < floor) {
    throw new UnavailableError(`${others.length + 1} member(s) of ${row.group} can apply the delete now, fewer than the copy floor of ${floor}; nothing was deleted — retry`)
  }
  const op: DeleteOp = { kind: 'delete', id, group: row.group, ts: c.store.clock.next(row.ts), origin: c.selfId }
  await c.store.applyDelete(op)
  const results = await Promise.allSettled(others.map(async m =>
    request(c.dialer, peerIdFromString(m.peerId), PROTOCOLS.apply, ApplyRequestSchema, { op }, ApplyResultSchema, options)))
  const replicas = [c.selfId, ...others.filter((_, i) => results[i]?.status === 'fulfilled').map(m => m.peerId)]
  if (replicas.length < floor) {
    // Applied here (and spread by sync), but not on enough disks to promise it: not acknowledged.
    throw new UnavailableError(`the delete of ${id} reached ${replicas.length} of the ${floor} copies it needs; it is applied where it reached and spreads by sync — retry to be sure`)
  }
  return { id, group: row.group, replicas }
}

/** A member applies a delete pushed by the coordinator. */
export async function applyPushedDelete (c: DeleteComponents, op: DeleteOp): Promise<{ effect: Awaited<ReturnType<LocalStore['applyDelete']>> }> {
  assertMember(c.status, op.group)
  return { effect: await c.store.applyDelete(op) }
}
