/**
 * The commit rule of an upload, with one forced write per copy.
 *
 * The coordinator prepares its own copy (chunks and a prepared record, one
 * group commit) while every member prepares its own (the same, one group
 * commit each). The upload is **committed once `copies` planned copies are
 * durably prepared** — the coordinator's among them — and only then
 * acknowledged. No decision record is forced anywhere: the coordinator then
 * turns its record into the file and tells the members, none of which writes
 * are forced either, because the decision can always be recovered:
 *
 *  - a prepared record whose decision never arrived is decided by the
 *    resolver (./resolve.ts): it asks the coordinator — "committed" commits,
 *    "unknown" (it has nothing: it never prepared, or it aborted) aborts —
 *    or, when the coordinator is gone or undecided too, counts the planned
 *    copies that are prepared or committed: `copies` of them commit;
 *  - an acknowledged upload has `copies` durable prepared records, so every
 *    resolver finds it committed; one that was not acknowledged either
 *    commits everywhere (enough copies prepared, then sync brings it to the
 *    rest) or aborts everywhere: all or nothing;
 *  - a resolver never aborts on missing answers: it waits for the coordinator
 *    or for enough copies.
 *
 * `--write-quorum N` acknowledges after N copies; members that prepare later
 * commit when they do ("the others follow").
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { InsufficientStorageError, QuorumError, toError } from '../errors.ts'
/** One member's part in an upload, as the quorum sees it (a replication stream, or a put on a channel). */
export interface CopyAttempt {
  readonly peer: string
  /** The member holds the upload durably prepared. */
  readonly prepared: boolean
  /** Why it dropped out, if it did. */
  readonly failure?: Error
  /** Tell the member the decision (only once it prepared), within DECISION_TIMEOUT_MS. */
  decide(commit: boolean): Promise<void>
}

/** How long one decision may take to send; a failed upload also waits this long for members still preparing. */
export const DECISION_TIMEOUT_MS = 2_000

/**
 * The upload committed: the copies of the quorum hear it now, those still
 * preparing once they are done ("the others follow"). A decision that does not
 * arrive is recovered by the member's resolver, or the group's sync.
 */
export function announceCommit<T extends CopyAttempt> (copies: T[], prepares: Array<Promise<void>>, ready: T[]): void {
  copies.forEach((copy, i) => {
    const tell = async (): Promise<void> => copy.decide(true)
    void (ready.includes(copy) ? tell() : prepares[i]?.then(tell))?.catch(() => {})
  })
}

/**
 * The upload failed: members still preparing get a bounded wait and our own
 * prepare its end, so that every copy that prepared hears the abort now rather
 * than from its resolver later; then each of them is told to drop it.
 */
export async function announceAbort (copies: CopyAttempt[], prepares: Array<Promise<void>>, local: Promise<void> | undefined): Promise<void> {
  await Promise.race([Promise.allSettled(prepares), sleep(DECISION_TIMEOUT_MS, undefined, { ref: false })])
  await local?.catch(() => {})
  await Promise.allSettled(copies.filter(c => c.prepared).map(async c => c.decide(false)))
}

export interface QuorumPlan {
  /** Copies needed, the coordinator's included. */
  copies: number
  /** Members that must be among them (quorum "all": every member ACTIVE when the upload started). */
  mustStore: Set<string>
  group: string
}

/**
 * Wait until the coordinator's own prepare and enough members' prepares are
 * durable; throws (QuorumError, or 507 when a member is out of space) as soon
 * as that can no longer happen. Returns the members prepared at that moment.
 */
export async function prepareQuorum<T extends CopyAttempt> (local: Promise<void>, sessions: T[], prepares: Array<Promise<void>>, plan: QuorumPlan): Promise<T[]> {
  let localDone = false
  const settled = new Set<T>()
  return new Promise<T[]>((resolve, reject) => {
    let done = false
    const check = (): void => {
      if (done) return
      const ready = sessions.filter(s => s.prepared)
      const lost = sessions.filter(s => settled.has(s) && !s.prepared)
      const lostRequired = lost.find(s => plan.mustStore.has(s.peer))
      const possible = sessions.length - lost.length + 1
      if (lostRequired != null || possible < plan.copies) {
        done = true
        const failed = lostRequired ?? lost[0]
        reject(outOfSpace(lost) ?? new QuorumError(`stored on fewer than the ${plan.copies} copies required in ${plan.group} ` +
          `(${failed?.peer.slice(-8) ?? '?'}: ${failed?.failure?.message ?? 'unknown'}); not acknowledged — retrying is safe`))
        return
      }
      const mustAll = [...plan.mustStore].every(p => ready.some(s => s.peer === p))
      if (localDone && ready.length + 1 >= plan.copies && mustAll) {
        done = true
        resolve(ready)
      }
    }
    local.then(() => { localDone = true; check() }, (err: unknown) => { if (!done) { done = true; reject(toError(err)) } })
    prepares.forEach((p, i) => {
      const s = sessions[i] as T
      p.then(() => { settled.add(s); check() }, () => { settled.add(s); check() })
    })
    check()
  })
}

/** A member out of space makes the upload a 507 (the client must free space), not a quorum problem. */
export function outOfSpace (sessions: CopyAttempt[]): InsufficientStorageError | undefined {
  const full = sessions.find(s => (s.failure as { code?: string } | undefined)?.code === 'ERR_INSUFFICIENT_STORAGE')
  return full?.failure != null ? new InsufficientStorageError(full.failure.message) : undefined
}
