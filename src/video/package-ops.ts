/**
 * Whole-package steps: asking for a ladder, planning it (probe → one job
 * per rendition and the preview), finishing it (the master playlist, once
 * every rendition is done), failing it, cancelling it and removing it with
 * its source — and the status people see.
 */
import { createHash } from 'node:crypto'
import { NoSuchPackageError, ProbeError, TranscodeError } from '../errors.ts'
import { PREVIEW_TASK } from '../wire/media.ts'
import { deleteFiles, planPackage, playable, writeMaster } from './tasks.ts'
import { playlistFiles } from './serving.ts'
import { cutError } from './records.ts'
import { settled } from './scheduler.ts'
import type { MediaTools } from '../media/tools.ts'
import type { JobRecord, PackageRecord, PackageState } from '../wire/media.ts'
import type { MediaRecords } from './records.ts'
import type { SourceCache } from './source-cache.ts'
import type { VideoFiles } from './tasks.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface PackageComponents {
  records: MediaRecords
  files: VideoFiles
  sources: SourceCache
  tools?: MediaTools
}

export interface TaskStatus {
  task: string
  state: JobRecord['state']
  percent: number
  speed?: number
  etaS?: number
  owner?: string
  attempt: number
  error?: string
}

export interface PackageStatus {
  source: string
  group: string
  state: PackageState
  /** Of all tasks together. */
  percent: number
  etaS?: number
  error?: string
  created: number
  durationS?: number
  tasks: TaskStatus[]
  /** Playable now (ready, or some rendition done while the rest are made). */
  playable: boolean
  master?: string
  poster?: string
  storyboard?: string
}

/** Ask for a package of `source` in `group` (again, when the last one failed or was cancelled). */
export async function requestPackage (c: PackageComponents, source: string, group: string, options: AbortOptions): Promise<PackageRecord> {
  const existing = await c.records.getPackage(group, source, options)
  if (existing != null && existing.state !== 'failed' && existing.state !== 'cancelled') return existing
  if (existing != null) await dropOutputs(c, existing, options)
  const now = Date.now()
  const record: PackageRecord = { source, group, state: 'queued', created: now, updated: now }
  await c.records.putPackage(record, options)
  return record
}

/** Probe the source and write its jobs, then the package as transcoding; a source ffprobe cannot read fails the package. */
export async function planPackageJobs (c: PackageComponents, pkg: PackageRecord, options: AbortOptions & { maxVideoRenditions?: number }): Promise<void> {
  if (c.tools == null) return
  let plan
  const input = await c.sources.acquire(pkg.source, options)
  try {
    plan = await planPackage(c.tools, input, options)
  } catch (err) {
    if (!(err instanceof ProbeError) && !(err instanceof TranscodeError)) throw err
    await c.records.putPackage({ ...pkg, state: 'failed', error: cutError(err.message), updated: Date.now() }, options)
    return
  } finally {
    await c.sources.release(pkg.source)
  }
  // A job another planner wrote already (and a member may have claimed) is left as it is.
  for (const job of plan.jobs) {
    if (c.records.heldJob(pkg.source, job.task) == null) await c.records.putJob(pkg.group, pkg.source, job, options)
  }
  await c.records.putPackage({ ...pkg, state: 'transcoding', durationS: plan.durationS, tasks: plan.jobs.map(j => j.task), updated: Date.now() }, options)
}

/** Every rendition is done (and the preview done or failed): write the master playlist, the package is ready. */
export async function finishPackage (c: PackageComponents, group: string, source: string, options: AbortOptions): Promise<void> {
  const pkg = await c.records.getPackage(group, source, options)
  if (pkg?.state !== 'transcoding') return
  const jobs = await c.records.jobs(group, source, options)
  if (!settled(pkg.tasks ?? [], t => jobs.get(t))) return
  const uploaded: string[] = []
  const master = await writeMaster({ files: c.files, tag: `hls-master:${createHash('sha256').update(`${source}\0${pkg.created}`).digest('base64url').slice(0, 32)}`, uploaded, ...options }, pkg, [...jobs.values()])
  const preview = jobs.get(PREVIEW_TASK)?.result
  await c.records.putPackage({ ...pkg, state: 'ready', master, ...(preview?.kind === 'preview' ? { preview } : {}), updated: Date.now() }, options)
}

export async function failPackage (c: PackageComponents, group: string, source: string, error: string, options: AbortOptions): Promise<void> {
  const pkg = await c.records.getPackage(group, source, options)
  if (pkg?.state !== 'transcoding') return
  await c.records.putPackage({ ...pkg, state: 'failed', error: cutError(error), updated: Date.now() }, options)
  await dropOutputs(c, pkg, options)
}

/** Stop making a package: running jobs stop (their members see the state), what was made is deleted. */
export async function cancelPackage (c: PackageComponents, group: string, source: string, options: AbortOptions): Promise<PackageRecord> {
  const pkg = await c.records.getPackage(group, source, options)
  if (pkg == null) throw new NoSuchPackageError(`${source} has no video package`)
  if (pkg.state === 'ready' || pkg.state === 'failed' || pkg.state === 'cancelled') return pkg
  const cancelled: PackageRecord = { ...pkg, state: 'cancelled', updated: Date.now() }
  await c.records.putPackage(cancelled, options)
  await dropOutputs(c, pkg, options)
  return cancelled
}

/** The source was deleted: its package goes, files and records. */
export async function removePackage (c: PackageComponents, group: string, source: string, options: AbortOptions): Promise<boolean> {
  const pkg = await c.records.getPackage(group, source, options)
  if (pkg == null) return false
  // Cancelled first: jobs running on other members stop, and what they finish after this is theirs to delete.
  if (pkg.state === 'queued' || pkg.state === 'transcoding') await c.records.putPackage({ ...pkg, state: 'cancelled', updated: Date.now() }, options)
  await dropOutputs(c, pkg, options)
  await c.records.removePackage(group, source, options)
  return true
}

/** Delete every file the package's jobs made, and the jobs' records. */
async function dropOutputs (c: PackageComponents, pkg: PackageRecord, options: AbortOptions): Promise<void> {
  const jobs = await c.records.jobs(pkg.group, pkg.source, options)
  const ids: string[] = pkg.master != null ? [pkg.master] : []
  for (const job of jobs.values()) ids.push(...await outputsOf(c, job, options))
  const left = await deleteFiles(c.files, ids, options)
  if (left.length > 0) throw new Error(`could not delete ${left.length} file(s) of the package of ${pkg.source} (${left.slice(0, 3).join(', ')}); retry`)
  for (const task of jobs.keys()) await c.records.removeJob(pkg.group, pkg.source, task, options)
}

/** The files a job's result names: its playlist, and what the playlist names (init and segments). */
async function outputsOf (c: PackageComponents, job: JobRecord, options: AbortOptions): Promise<string[]> {
  const r = job.result
  if (r == null) return []
  if (r.kind === 'preview') return [r.poster, r.sprite, r.vtt]
  return [r.playlist, ...await playlistFiles(c.files, r.playlist, options)]
}

export function packageStatus (pkg: PackageRecord, jobs: Map<string, JobRecord>): PackageStatus {
  // A planned task without its record yet is queued; a package that ended shows only the records left.
  const names = pkg.state === 'transcoding' ? (pkg.tasks ?? []) : [...jobs.keys()]
  const tasks: TaskStatus[] = [...new Set([...names, ...jobs.keys()])].map(t => {
    const j = jobs.get(t)
    return {
      task: t,
      state: j?.state ?? 'queued',
      percent: j?.state === 'done' ? 100 : j?.progress?.percent ?? 0,
      ...(j?.progress != null && j.state === 'running' ? { speed: j.progress.speed, ...(j.progress.etaS != null ? { etaS: j.progress.etaS } : {}) } : {}),
      ...(j?.owner != null ? { owner: j.owner } : {}),
      attempt: j?.attempt ?? 0,
      ...(j?.error != null ? { error: j.error } : {})
    }
  })
  const percent = pkg.state === 'ready' ? 100 : tasks.length > 0 ? tasks.reduce((a, t) => a + t.percent, 0) / tasks.length : 0
  const etas = tasks.flatMap(t => t.etaS != null ? [t.etaS] : [])
  const base = `/files/${pkg.source}`
  const canPlay = pkg.state === 'ready' || (pkg.state === 'transcoding' && playable([...jobs.values()]))
  return {
    source: pkg.source,
    group: pkg.group,
    state: pkg.state,
    percent: Math.round(percent * 10) / 10,
    ...(etas.length > 0 ? { etaS: Math.max(...etas) } : {}),
    ...(pkg.error != null ? { error: pkg.error } : {}),
    created: pkg.created,
    ...(pkg.durationS != null ? { durationS: pkg.durationS } : {}),
    tasks,
    playable: canPlay,
    ...(canPlay ? { master: `${base}/hls/master.m3u8` } : {}),
    ...(pkg.preview != null ? { poster: `${base}/poster.jpg`, storyboard: `${base}/storyboard.vtt` } : {})
  }
}
