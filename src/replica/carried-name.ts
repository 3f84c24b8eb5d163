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
 * Acknowledged like a write: every copy answers the decision (one frame
 * each way, no forced write: the prepared record is durable), and the copy
 * floor must have applied it, ours included. A copy that holds a newer stamp
 * of the name (a write we missed, stamped by a clock ahead of ours), a local
 * apply that lost to one, or too few answers: the record is not written here
 * and the caller writes it the ordinary way, which stamps after whatever it
 * finds — so a PUT that follows an acknowledged one wins whatever the clocks
 * say, as with every other write. A node that restarts with such an
 * upload undecided answers no name read until it is decided
 * (LocalStore.namesSettled): its unforced commit may be what it lost.
 */
import { raceSignal } from '../util/abort.ts'
import { copyFloor } from './placement.ts'
import { NAME_PUSH_TIMEOUT_MS, checkWrite } from './names.ts'
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
 * Tell every copy the upload committed — those still preparing once they
 * are done — and hear what each applied, as the ordinary write hears every
 * mate it pushes to: true once all answered (or NAME_PUSH_TIMEOUT_MS passed)
 * with the copy floor applied (ours included) and none holding a newer
 * stamp of the name. Any such stamp, or too few applied: false, and the
 * caller writes the record the ordinary way, which stamps after it.
 */
export async function confirmCarried (c: NameMemberComponents, group: string, op: PreparedName, copies: ChannelCopy[], prepares: Array<Promise<void>>): Promise<boolean> {
  const own = c.store.names.get(op.bucket, op.key)
  const ownApplied = own?.ts === op.ts && own.origin === op.origin
  const floor = copyFloor(c.view, group, c.minCopies, 'all')
  const signal = AbortSignal.timeout(NAME_PUSH_TIMEOUT_MS)
  // A copy whose prepare failed has nothing to decide; the others answer, or run out of time. One still
  // preparing then hears the decision when it is done, without an answer (its resolver would find it anyway).
  const answers = await Promise.allSettled(copies.map(async (copy, i) => raceSignal((async () => {
    await prepares[i]
    if (signal.aborted) {
      await copy.decide(true)
      throw new Error('prepared after the deadline')
    }
    return copy.confirm({ signal })
  })(), signal)))
  let applied = ownApplied ? 1 : 0
  for (const a of answers) {
    if (a.status !== 'fulfilled') continue
    if (a.value.holds != null) return false
    if (a.value.applied) applied++
  }
  return ownApplied && applied >= floor
}
