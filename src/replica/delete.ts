/**
 * Deleting a file. A member of the file's group stamps a delete operation
 * after the file's own stamp (so it wins last-writer-wins everywhere), applies
 * it — a tombstone in its group log, chunks collected — and pushes it to the
 * other members (`/dsm/apply/1.0.0`). A member that is offline gets the
 * tombstone when it syncs, and the tombstone stops it from bringing the file
 * back.
 */
import { rpcHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { FileNotFoundError, NotAMemberError, UnavailableError } from '../errors.ts'
import { copyFloor } from './placement.ts'
import { ApplyRequestSchema, ApplyResultSchema, DeleteRequestSchema, DeleteResultSchema, PROTOCOLS } from '../wire/messages.ts'
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

/** `/dsm/delete`: delete a file as a member of its group (stamped here, pushed to the others). */
export function deleteHandler (c: DeleteComponents): ProtocolHandler {
  return rpcHandler(PROTOCOLS.delete, DeleteRequestSchema, DeleteResultSchema, async (req, _remote, options) => deleteAsMember(c, req.id, options))
}

/** `/dsm/apply`: a mate pushes its delete here. */
export function applyHandler (c: DeleteComponents): ProtocolHandler {
  return rpcHandler(PROTOCOLS.apply, ApplyRequestSchema, ApplyResultSchema, async (req) => applyPushedDelete(c, req.op))
}

/**
 * Delete a located file from any node. Its holder deletes it as a member;
 * else the member that told us about the file (it knows the stamp the delete
 * must beat) or, when it is no longer ACTIVE, any ACTIVE member — never
 * ourselves: we do not hold it (a member that has not caught up yet), so a
 * mate that does must stamp the delete.
 */
export async function deleteLocated (c: DeleteComponents, located: { group: string, via: string, holder?: string }, id: string, options: AbortOptions = {}): Promise<DeleteResult> {
  if (located.via === 'local') return deleteAsMember(c, id, options)
  const active = c.view.groupMembers(located.group).filter(m => m.state === 'ACTIVE' && !m.self).map(m => m.peerId)
  const order = [...new Set([located.holder, ...active].filter((p): p is string => p != null && active.includes(p)))]
  if (order.length === 0) throw new UnavailableError(`group ${located.group} has no ACTIVE member right now; nothing was deleted — retry`)
  let last: Error | undefined
  for (const peer of order) {
    try {
      return await request(c.dialer, peerIdFromString(peer), PROTOCOLS.delete, DeleteRequestSchema, { id }, DeleteResultSchema, options)
    } catch (err) {
      // Only an unreachable member is worth another try; its refusal (e.g. not found) is the answer.
      if (!(err instanceof UnavailableError) || options.signal?.aborted === true) throw err
      last = err
    }
  }
  throw last ?? new UnavailableError(`no member of ${located.group} answered the delete`)
}
