/**
 * The S3 namespace, replicated like files (the Garage model): a bucket is
 * owned by one replica group, and the bucket's record and its key table live
 * in that group's name log (store/name-index.ts). Every member of the group
 * holds the whole table; members that were away catch up by pulling the log
 * (./name-sync.ts).
 *
 * A write goes to a member of the owning group, which stamps it (after the
 * name's current stamp: last writer wins everywhere), applies it durably and
 * pushes it to its mates; it is acknowledged once the copy floor
 * (--min-copies, ./placement.ts) holds it durably. A read or a listing asks
 * enough members that it meets every acknowledged write (read quorum: live
 * members − copy floor + 1) and merges their answers by stamp, so a write
 * acknowledged is read and listed from every node at once, and a delete
 * acknowledged never comes back.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { BucketExistsError, BucketNotEmptyError, NoSuchBucketError, NotAMemberError, QuorumError, UnavailableError, toError } from '../errors.ts'
import { rpcHandler } from '../wire/handlers.ts'
import { PROTOCOLS } from '../wire/messages.ts'
import { GROUP_TABLE_BUCKET, MAX_NAME_ROWS, NameApplyRequestSchema, NameApplyResponseSchema, NamesRequestSchema, NamesResponseSchema, ownedFile } from '../wire/names.ts'
import { request } from '../wire/rpc.ts'
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { MAX_CONTROL_FRAME_BYTES } from '../constants.ts'
import { BUCKET_RECORD_KEY } from '../store/name-index.ts'
import { isNewer } from '../store/file-index.ts'
import { copyFloor } from './placement.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { NameOp, NameRow } from '../store/name-index.ts'
import type { IngestComponents } from './ingest-components.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import type { NameApplyRequest, NameApplyResponse, NameRowWire, NamesRequest, NamesResponse } from '../wire/names.ts'
import type { AbortOptions } from '@libp2p/interface'

/** A push to a mate that takes longer than this does not count towards the copy floor (the mate syncs later). */
export const NAME_PUSH_TIMEOUT_MS = 5_000
/** Times a write is stamped again after a mate showed a newer operation on the name (then it fails: retry). */
export const MAX_WRITE_ROUNDS = 3

/** A member writing for its group works with what an upload's coordinator does (name pushes share its channels). */
export type NameMemberComponents = Omit<IngestComponents, 'chunkSize'>

function toWire (r: NameRow): NameRowWire {
  return { bucket: r.bucket, key: r.key, live: r.live, ts: r.ts, origin: r.origin, seq: r.seq, ...(r.value != null ? { value: r.value } : {}) }
}

function assertMember (status: LocalStatus, group: string | null): string {
  if (group == null || status.group !== group || (status.state !== 'ACTIVE' && status.state !== 'SYNCING')) {
    throw new NotAMemberError(`not an ACTIVE member of group ${group ?? '?'}`)
  }
  return group
}

/** The checks of a write, against our own table: the bucket, and its create-if-absent / delete-if-empty conditions. */
export function checkWrite (c: NameMemberComponents, req: Extract<NamesRequest, { op: 'write' }>): void {
  // A group's own table has no bucket record: the writer named the group.
  if (req.bucket === GROUP_TABLE_BUCKET) return
  const bucket = c.store.names.get(req.bucket, BUCKET_RECORD_KEY)
  const isBucket = req.key === BUCKET_RECORD_KEY
  if (!isBucket && bucket?.live !== true) throw new NoSuchBucketError(`bucket ${req.bucket} does not exist`)
  if (isBucket && req.ifAbsent === true && bucket?.live === true) throw new BucketExistsError(`bucket ${req.bucket} exists already`)
  if (isBucket && req.ifEmpty === true && c.store.names.count(req.bucket) > 0) throw new BucketNotEmptyError(`bucket ${req.bucket} is not empty`)
}

/** A write, as a member of the owning group runs it: check, stamp, apply durably, push to mates, count copies. */
async function write (c: NameMemberComponents, req: Extract<NamesRequest, { op: 'write' }>, options: AbortOptions): Promise<NamesResponse> {
  const group = assertMember(c.status, c.status.group)
  let after: number | undefined
  for (let round = 1; ; round++) {
    // Checked, stamped after the name's current operation and applied in one step of one transaction.
    const { op } = await c.store.writeName(() => {
      if (round === 1) checkWrite(c, req)
      const current = c.store.names.get(req.bucket, req.key)
      const ts = c.store.clock.next(Math.max(after ?? 0, current?.ts ?? 0))
      const op: NameOp = { bucket: req.bucket, key: req.key, group, live: req.live, ts, origin: c.selfId, ...(req.value != null ? { value: req.value } : {}) }
      // The file the current value owns is freed by this write (stamped after it, so it can never be the value again).
      const freed = round === 1 && current?.live === true ? ownedFile(current.value) : undefined
      return { op, ...(freed != null && freed !== ownedFile(req.value) ? { reclaim: freed } : {}) }
    })
    const pushed = await push(c, group, op, options)
    // A mate holds a newer operation on the name, one we missed (an acknowledged write whose push we did not
    // get, stamped by a clock ahead of ours): stamp after it and write again, so a write that follows an
    // acknowledged one wins whatever the clocks say.
    if (pushed.newer != null && round < MAX_WRITE_ROUNDS) {
      after = pushed.newer
      continue
    }
    const floor = copyFloor(c.view, group, c.minCopies, 'all')
    if (pushed.copies < floor) {
      // Applied here and on some mates; the others get it by sync. Not acknowledged: the caller retries.
      throw new QuorumError(`${pushed.copies} of the ${floor} copies the name needs (--min-copies) hold it; not acknowledged — retry`)
    }
    return { written: { ts: op.ts, origin: op.origin, copies: pushed.copies } }
  }
}

/** Push an operation to the live mates: how many members hold it now (us included), and a newer stamp one holds. */
async function push (c: NameMemberComponents, group: string, op: NameOp, options: AbortOptions): Promise<{ copies: number, newer?: number }> {
  const mates = c.view.groupMembers(group).filter(m => !m.self && (m.state === 'ACTIVE' || m.state === 'SYNCING'))
  const signal = AbortSignal.any([AbortSignal.timeout(NAME_PUSH_TIMEOUT_MS), ...(options.signal != null ? [options.signal] : [])])
  const req: NameApplyRequest = { group, op: { bucket: op.bucket, key: op.key, live: op.live, ts: op.ts, origin: op.origin, ...(op.value != null ? { value: op.value } : {}) } }
  // On the upload channel to each mate (one frame each way), else a stream of its own.
  const frame = c.channels != null ? encodeMessage(NameApplyRequestSchema, req) : undefined
  const answers = await Promise.allSettled(mates.map(async m => c.channels != null && frame != null
    ? decodeMessage(NameApplyResponseSchema, await c.channels.to(m.peerId).name(frame, { signal }), MAX_CONTROL_FRAME_BYTES)
    : request(c.dialer, peerIdFromString(m.peerId), PROTOCOLS.nameApply, NameApplyRequestSchema, req, NameApplyResponseSchema, { signal })))
  let copies = 1
  let newer: number | undefined
  for (const a of answers) {
    if (a.status !== 'fulfilled') continue
    const holds = a.value.holds
    if (a.value.effect === 'ignored' && holds != null && isNewer(holds, op)) newer = Math.max(newer ?? 0, holds.ts)
    else copies++
  }
  return { copies, ...(newer != null ? { newer } : {}) }
}

/** What a member of a bucket's group answers: a read, a listing, or a write it stamps (asked over `/dsm/names`, or by itself). */
export async function answerNames (c: NameMemberComponents, req: NamesRequest, options: AbortOptions): Promise<NamesResponse> {
  if (req.op === 'write') return write(c, req, options)
  assertMember(c.status, c.status.group)
  // An upload prepared before our last start may carry a record we applied (and acknowledged) and then lost.
  if (!c.store.namesSettled()) throw new UnavailableError('this member is still deciding uploads that carry key records; ask another')
  if (req.op === 'get') {
    const row = c.store.names.get(req.bucket, req.key)
    return row != null ? { row: toWire(row) } : {}
  }
  if (req.op === 'list') {
    const rows = c.store.names.listWithTombstones(req.bucket, req.after, req.limit)
    return { rows: rows.map(toWire), more: rows.length === req.limit }
  }
  return { rows: c.store.names.bucketRecords().map(toWire) }
}

/** `/dsm/names`: a member of a bucket's group answers reads and takes writes for it. */
export function namesHandler (c: NameMemberComponents): ProtocolHandler {
  return rpcHandler(PROTOCOLS.names, NamesRequestSchema, NamesResponseSchema, async (req, _remote, options) => answerNames(c, req, options), { maxRequestBytes: 64 * 1024 })
}

/** Ask `peer` — ourselves directly (a node cannot dial itself), anyone else over `/dsm/names`. */
export async function askMember (c: NameMemberComponents, peer: string, req: NamesRequest, options: AbortOptions): Promise<NamesResponse> {
  if (peer === c.selfId) return answerNames(c, req, options)
  return request(c.dialer, peerIdFromString(peer), PROTOCOLS.names, NamesRequestSchema, req, NamesResponseSchema, options)
}

/** Apply an operation a mate stamped and pushed (over the upload channel, or `/dsm/name-apply`). */
export async function applyPushed (c: NameMemberComponents, req: NameApplyRequest): Promise<NameApplyResponse> {
  const group = assertMember(c.status, req.group)
  const effect = await c.store.applyName({ ...req.op, group })
  if (effect === 'applied') return { effect }
  // Ignored: we hold this very operation already, or a newer one (whose stamp the writer needs).
  const row = c.store.names.get(req.op.bucket, req.op.key)
  return { effect, ...(row != null ? { holds: { ts: row.ts, origin: row.origin } } : {}) }
}

/** The channel's side of applyPushed: encoded request in, encoded answer out. */
export async function applyPushedFrame (c: NameMemberComponents, frame: Uint8Array): Promise<Uint8Array> {
  return encodeMessage(NameApplyResponseSchema, await applyPushed(c, decodeMessage(NameApplyRequestSchema, frame, MAX_CONTROL_FRAME_BYTES)))
}

/** `/dsm/name-apply`: the member that stamped a name operation pushes it here (peers without the channel's `name`). */
export function nameApplyHandler (c: NameMemberComponents): ProtocolHandler {
  return rpcHandler(PROTOCOLS.nameApply, NameApplyRequestSchema, NameApplyResponseSchema, async (req) => applyPushed(c, req))
}

export interface NameReply { peer: string, res: NamesResponse }

/**
 * Whether our own table is a read quorum of `group` alone (we are a live
 * member and one member is enough: members − floor + 1 = 1). A read then
 * needs no request and no await: the answer is our row.
 */
export function answersAlone (c: NameMemberComponents, group: string): boolean {
  if (!c.store.namesSettled() || c.status.group !== group || (c.status.state !== 'ACTIVE' && c.status.state !== 'SYNCING')) return false
  const members = c.view.groupMembers(group).filter(m => !m.spare)
  return members.length - copyFloor(c.view, group, c.minCopies, 'all') + 1 <= 1
}

/**
 * Ask the read quorum of `group` and return their answers; fewer than the
 * quorum is unavailable. A write is acknowledged once `floor` of the group's
 * members hold it, so any `members − floor + 1` of them — counted over every
 * member the group has, OFFLINE ones included, never over those that happen
 * to be reachable — meet every acknowledged write. (Counted over the live
 * ones, a reader cut off with the one member that missed a write read that
 * member alone, and the key was "absent": the simulation's history checker
 * found it.) ACTIVE members are asked first, ourselves first among them;
 * SYNCING ones count too (any member that acknowledged a write holds it).
 */
export async function askGroup (c: NameMemberComponents, group: string, req: NamesRequest, options: AbortOptions): Promise<NameReply[]> {
  const members = c.view.groupMembers(group).filter(m => !m.spare)
  const rank = (m: { self: boolean, state: string }): number => (m.state === 'ACTIVE' ? 0 : 2) + (m.self ? 0 : 1)
  const live = members.filter(m => m.state === 'ACTIVE' || m.state === 'SYNCING').sort((a, b) => rank(a) - rank(b))
  const floor = copyFloor(c.view, group, c.minCopies, 'all')
  const needed = Math.max(1, members.length - floor + 1)
  if (live.length < needed) throw new UnavailableError(`a read of group ${group} needs ${needed} of its ${members.length} members; ${live.length} can be asked right now`)
  const replies: NameReply[] = []
  const failures: string[] = []
  // Only as many as the quorum needs, ourselves first (no request at all when we alone are enough); more if some fail.
  let next = 0
  while (replies.length < needed && next < live.length) {
    const batch = live.slice(next, next + needed - replies.length)
    next += batch.length
    await Promise.all(batch.map(async m => {
      try {
        replies.push({ peer: m.peerId, res: await askMember(c, m.peerId, req, options) })
      } catch (err) {
        failures.push(`${m.peerId.slice(-8)}: ${toError(err).message}`)
      }
    }))
  }
  if (replies.length < needed) throw new UnavailableError(`${replies.length} of the ${needed} members of ${group} a read needs answered (${failures.join('; ')})`)
  return replies
}

/** The newest of several members' answers for one name (undefined: none of them ever saw it). */
export function newest (rows: Array<NameRowWire | undefined>): NameRowWire | undefined {
  let best: NameRowWire | undefined
  for (const r of rows) {
    if (r != null && (best == null || r.ts > best.ts || (r.ts === best.ts && r.origin > best.origin))) best = r
  }
  return best
}

/**
 * Merge members' list pages into one: per key the newest row, tombstones
 * dropped, sorted by raw key bytes. A member whose page was full covers keys
 * only up to its last one, so the merged page ends there too.
 */
export function mergePages (pages: Array<{ rows: NameRowWire[], more: boolean }>, limit = MAX_NAME_ROWS): { rows: NameRowWire[], more: boolean, last?: string } {
  let bound: string | undefined
  for (const p of pages) {
    const last = p.rows.at(-1)?.key
    if (p.more && last != null && (bound == null || Buffer.compare(Buffer.from(last), Buffer.from(bound)) < 0)) bound = last
  }
  const byKey = new Map<string, NameRowWire[]>()
  for (const p of pages) {
    for (const r of p.rows) {
      if (bound != null && Buffer.compare(Buffer.from(r.key), Buffer.from(bound)) > 0) continue
      byKey.set(r.key, [...(byKey.get(r.key) ?? []), r])
    }
  }
  const keys = [...byKey.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  const rows = keys.map(k => newest(byKey.get(k) ?? [])).filter((r): r is NameRowWire => r?.live === true).slice(0, limit)
  return { rows, more: bound != null, ...(bound != null ? { last: bound } : {}) }
}
