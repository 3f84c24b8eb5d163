/**
 * What a member of a group does next with its group's video jobs, decided
 * from its own copy of the group's table (pure: the service acts on it).
 *
 * Every job is ranked for the group's ACTIVE members by load — the jobs the
 * table shows each one running — then by a rendezvous hash of (job, member),
 * so members agree without talking: the first in rank claims it, and a job
 * left queued past the grace time (its first choice does not transcode, say
 * `--transcode-jobs 0`) goes to whoever has a free slot. A running job is
 * taken over when its owner is not alive in the view (a crash), when its
 * record has not changed for `staleAfterMs` by our own clock (owners write
 * progress every few seconds), or when it is ours but not running here (we
 * restarted). Two members that claim at once both write; the later stamp
 * wins, and the loser sees it and stops. A package whose source our index
 * holds as deleted is removed (a delete needs no quorum of the media
 * table: the package follows its source here).
 */
import { createHash } from 'node:crypto'
import { PREVIEW_TASK } from '../wire/media.ts'
import type { JobRecord, PackageRecord } from '../wire/media.ts'
import type { Held } from './records.ts'

export interface Member { peerId: string, state: string }

export type Action =
  | { kind: 'plan', source: string }
  | { kind: 'claim', source: string, task: string, job: JobRecord }
  | { kind: 'finalize', source: string }
  | { kind: 'fail', source: string, error: string }
  | { kind: 'remove', source: string }
  | { kind: 'forget', source: string, task: string }
  | { kind: 'abort', key: string, why: string }

export interface ScheduleInput {
  selfId: string
  /** The group's members as our view has them (spares excluded). */
  members: Member[]
  packages: Array<Held<PackageRecord>>
  jobs: Array<Held<JobRecord> & { source: string }>
  /** Job keys running here, with the stamp of the record we wrote when we claimed or last updated. */
  running: Map<string, { ts: number, origin: string }>
  /** Sources being planned or finished here. */
  busy: Set<string>
  /** Whether our own index holds `source` as deleted: its package goes too. */
  sourceDeleted: (source: string) => boolean
  freeSlots: number
  /** How long (our clock) the row `key` has held this stamp. */
  ageOf: (key: string, ts: number, origin: string) => number
  staleAfterMs: number
  claimGraceMs: number
}

function rendezvous (key: string, peer: string): Buffer {
  return createHash('sha256').update(`${key}\0${peer}`).digest()
}

const ALIVE = new Set(['ACTIVE', 'SYNCING', 'JOINING'])

/** ACTIVE members, least loaded first, ties by rendezvous hash. */
export function rank (key: string, members: Member[], load: Map<string, number>): string[] {
  return members.filter(m => m.state === 'ACTIVE')
    .map(m => ({ id: m.peerId, load: load.get(m.peerId) ?? 0, h: rendezvous(key, m.peerId) }))
    .sort((a, b) => a.load - b.load || Buffer.compare(b.h, a.h))
    .map(m => m.id)
}

/** Every task of a package is done (the preview may have failed: the package is ready without it). */
export function settled (tasks: string[], jobOf: (task: string) => JobRecord | undefined): boolean {
  return tasks.every(t => {
    const state = jobOf(t)?.state
    return state === 'done' || (t === PREVIEW_TASK && state === 'failed')
  })
}

/**
 * Cheapest video renditions first (the video plays as soon as its first one
 * is done), then the rest up the ladder, then audio only and the preview.
 */
export function priority (job: JobRecord): number {
  if (job.spec?.kind === 'video') return Math.min(job.spec.width, job.spec.height)
  return job.spec?.kind === 'audio' ? 100_000 : 200_000
}

function isNewerStamp (a: { ts: number, origin: string }, b: { ts: number, origin: string }): boolean {
  return a.ts > b.ts || (a.ts === b.ts && a.origin > b.origin)
}

export function schedule (s: ScheduleInput): Action[] {
  const actions: Action[] = []
  const alive = new Set(s.members.filter(m => ALIVE.has(m.state)).map(m => m.peerId))
  const packages = new Map(s.packages.map(p => [p.record.source, p]))
  const load = new Map<string, number>()
  for (const j of s.jobs) {
    if (j.record.state === 'running' && j.record.owner != null && packages.get(j.source)?.record.state === 'transcoding') load.set(j.record.owner, (load.get(j.record.owner) ?? 0) + 1)
  }
  const mayAct = (key: string, ts: number, origin: string): boolean => rank(key, s.members, new Map())[0] === s.selfId || s.ageOf(key, ts, origin) > s.claimGraceMs

  // Our running jobs: stop those that are not ours any more.
  const held = new Map(s.jobs.map(j => [j.key, j]))
  for (const [key, ours] of s.running) {
    const j = held.get(key)
    const pkg = j != null ? packages.get(j.source) : undefined
    if (j == null) actions.push({ kind: 'abort', key, why: 'its job was removed' })
    else if (pkg?.record.state !== 'transcoding') actions.push({ kind: 'abort', key, why: `its package is ${pkg?.record.state ?? 'deleted'}` })
    else if (j.record.owner !== s.selfId && isNewerStamp(j, ours)) actions.push({ kind: 'abort', key, why: `taken over by ${j.record.owner?.slice(-8) ?? '?'}` })
  }

  for (const p of s.packages) {
    const { source, state } = p.record
    if (s.busy.has(source)) continue
    if (s.sourceDeleted(source)) {
      if (mayAct(p.key, p.ts, p.origin)) actions.push({ kind: 'remove', source })
      continue
    }
    if (state === 'queued' && mayAct(p.key, p.ts, p.origin)) actions.push({ kind: 'plan', source })
    if (state !== 'transcoding') continue
    const jobs = s.jobs.filter(j => j.source === source)
    const tasks = p.record.tasks ?? []
    const failed = jobs.find(j => j.record.state === 'failed' && j.record.task !== PREVIEW_TASK)
    if (failed != null && mayAct(p.key, p.ts, p.origin)) actions.push({ kind: 'fail', source, error: `${failed.record.task}: ${failed.record.error ?? 'failed'}` })
    else if (settled(tasks, t => jobs.find(x => x.record.task === t)?.record) && mayAct(p.key, p.ts, p.origin)) actions.push({ kind: 'finalize', source })
  }

  // Job rows of a cancelled or removed package (a progress write that landed after the cancel, say) are dropped.
  for (const j of s.jobs) {
    const state = packages.get(j.source)?.record.state
    if ((state == null || state === 'cancelled') && !s.running.has(j.key) && !s.busy.has(j.source) && mayAct(j.key, j.ts, j.origin)) actions.push({ kind: 'forget', source: j.source, task: j.record.task })
  }

  let free = s.freeSlots
  for (const j of [...s.jobs].sort((a, b) => priority(a.record) - priority(b.record))) {
    if (free <= 0) break
    if (packages.get(j.source)?.record.state !== 'transcoding' || s.running.has(j.key) || s.sourceDeleted(j.source)) continue
    const { state, owner } = j.record
    const age = s.ageOf(j.key, j.ts, j.origin)
    const orphaned = state === 'running' && (owner === s.selfId || owner == null || !alive.has(owner) || age > s.staleAfterMs)
    if (state !== 'queued' && !orphaned) continue
    // Our own orphan (we restarted) is ours to take again at once; others go by rank.
    const first = rank(j.key, s.members, load)[0]
    if (owner !== s.selfId && first !== s.selfId && age <= s.claimGraceMs) continue
    actions.push({ kind: 'claim', source: j.source, task: j.record.task, job: j.record })
    load.set(s.selfId, (load.get(s.selfId) ?? 0) + 1)
    free--
  }
  return actions
}

/** How long each row has held its current stamp, by our clock: a row that stopped changing is stale. */
export class StampAges {
  private readonly seen = new Map<string, { ts: number, origin: string, since: number }>()

  ageOf (key: string, ts: number, origin: string, now: number): number {
    const s = this.seen.get(key)
    if (s != null && s.ts === ts && s.origin === origin) return now - s.since
    this.seen.set(key, { ts, origin, since: now })
    return 0
  }

  /** Forget rows that are gone. */
  keep (keys: Set<string>): void {
    for (const k of this.seen.keys()) if (!keys.has(k)) this.seen.delete(k)
  }
}
