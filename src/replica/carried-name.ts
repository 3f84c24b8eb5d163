/**
 * An S3 key record written with its object's file, in one commit.
 *
 * A PUT of a small object (one chunk, on the upload channel) whose file lands
 * in the bucket's own group, coordinated by us: instead of committing the
 * file and then writing the record (a second forced write and round trip on
 * every copy: ./names.ts), the coordinator stamps the record the way a write
 * of ours is stamped — after our row of the name, with the write's checks —
 * and every copy's prepare carries it, durable with the file's prepared
 * record (store/prepared.ts). When the upload commits, each copy applies it
 * in the commit's transaction; a copy that never hears the decision gets it
 * from its resolver, like the file.
 *
 * Acknowledged like a write: once the copy floor has applied it — our copy
 * and floor − 1 members answering the decision (one frame each way, no
 * forced write: the prepared record is durable). A member that holds a newer
 * stamp of the name, a local apply that lost to one, or too few answers: the
 * record is not written here and the caller writes it the ordinary way,
 * which stamps after whatever it finds. A node that restarts with such an
 * upload undecided answers no name read until it is decided
 * (LocalStore.namesSettled): its unforced commit may be what it lost.
 */
import { copyFloor } from './placement.ts'
import { checkWrite } from './names.ts'
import { DECISION_TIMEOUT_MS } from './commit.ts'
import type { NameMemberComponents } from './names.ts'
import type { ChannelCopy } from './transfer-channel.ts'
import type { PreparedName } from '../store/prepared.ts'

export interface CarriedName {
  bucket: string
  key: string
  /** The bucket's owning group: the record is carried only by an upload to that group. */
  group: string
  /** The record's value, once the file's ID is known. */
  value: (fileId: string) => Uint8Array
}

/** The record's operation, checked and stamped here as a write of ours is; its copy here reclaims what it replaces. */
export function stampCarried (c: NameMemberComponents, name: CarriedName, fileId: string): PreparedName {
  const value = name.value(fileId)
  checkWrite(c, { op: 'write', bucket: name.bucket, key: name.key, live: true, value })
  const current = c.store.names.get(name.bucket, name.key)
  return { bucket: name.bucket, key: name.key, live: true, ts: c.store.clock.next(current?.ts ?? 0), origin: c.selfId, value, reclaims: true }
}

/**
 * Tell the copies that prepared the upload it committed, and wait until the
 * copy floor applied the record (ours included): true, or false as soon as
 * that cannot be (the caller writes the record the ordinary way).
 */
export async function confirmCarried (c: NameMemberComponents, group: string, op: PreparedName, ready: ChannelCopy[]): Promise<boolean> {
  const own = c.store.names.get(op.bucket, op.key)
  const ownApplied = own?.ts === op.ts && own.origin === op.origin
  const need = copyFloor(c.view, group, c.minCopies, 'all') - 1
  return new Promise<boolean>(resolve => {
    if (ready.length === 0) { resolve(ownApplied && need <= 0); return }
    let applied = 0
    let answered = 0
    let settled = false
    const finish = (ok: boolean): void => { if (!settled) { settled = true; resolve(ok) } }
    // The decisions go out whatever we conclude: the copies must hear that the upload committed.
    if (!ownApplied) finish(false)
    else if (need <= 0) finish(true)
    for (const copy of ready) {
      copy.confirm({ signal: AbortSignal.timeout(DECISION_TIMEOUT_MS) }).then(d => {
        if (d.holds != null) finish(false)
        if (d.applied) applied++
      }, () => {}).finally(() => {
        answered++
        if (applied >= need) finish(true)
        else if (answered === ready.length) finish(false)
      }).catch(() => {})
    }
  })
}
