/**
 * Running one claimed job on this member: the claim written and read back
 * from the group's quorum (a later claim by another member wins, and we
 * stop), progress written every `progressIntervalMs` (which is also how
 * other members see we are alive), and the end: done with its result,
 * failed with ffmpeg's reason, or queued again for another attempt when
 * the failure was the cluster's (a quorum lost mid-upload), at most
 * MAX_JOB_ATTEMPTS times. A run that ends without its outputs being used
 * (taken over, cancelled, lost a race) deletes what it uploaded.
 */
import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { NotStartedError, ProbeError, TranscodeError, toError } from '../errors.ts'
import { deleteFiles, removeDir, runPreview, runRendition } from './tasks.ts'
import { cutError } from './records.ts'
import type { Progress } from '../media/ffmpeg.ts'
import type { MediaTools } from '../media/tools.ts'
import type { Logger } from '../logger.ts'
import type { JobRecord, PackageRecord } from '../wire/media.ts'
import type { MediaRecords } from './records.ts'
import type { SourceCache } from './source-cache.ts'
import type { TaskContext, VideoFiles } from './tasks.ts'
import { anySignal } from '../util/abort.ts'

/** Runs of one job, takeovers included, before a failure that is not ffmpeg's fails it. */
export const MAX_JOB_ATTEMPTS = 3
/** How long writing a job record may take. */
export const JOB_WRITE_TIMEOUT_MS = 15_000

export interface RunnerComponents {
  selfId: string
  tools: MediaTools
  files: VideoFiles
  records: MediaRecords
  sources: SourceCache
  logger: Logger
}

export interface RunningJob {
  controller: AbortController
  /** The stamp of our latest write of the record (MAX until the claim is in: nothing is newer). */
  stamp: { ts: number, origin: string }
  done: Promise<void>
}

function writeSignal (signal?: AbortSignal): AbortSignal {
  return anySignal(AbortSignal.timeout(JOB_WRITE_TIMEOUT_MS), signal)
}

export class JobRunner {
  private readonly c: RunnerComponents
  private readonly workDir: string
  private readonly progressIntervalMs: number

  constructor (c: RunnerComponents, init: { workDir: string, progressIntervalMs: number }) {
    this.c = c
    this.workDir = init.workDir
    this.progressIntervalMs = init.progressIntervalMs
  }

  /** Claim and run `job` of `pkg`; `entry` is already in the running table (reserved before any await). */
  async run (pkg: PackageRecord, job: JobRecord, entry: RunningJob): Promise<void> {
    const { records, selfId, logger } = this.c
    const { signal } = entry.controller
    const log = logger.child({ source: pkg.source.slice(0, 12), task: job.task })
    let current: JobRecord = { ...job, state: 'running', owner: selfId, attempt: job.attempt + 1, progress: { percent: 0, speed: 0 }, updated: Date.now() }
    delete current.error
    delete current.result
    let writes = 0
    const write = async (next: JobRecord): Promise<void> => {
      const n = ++writes
      await records.putJob(pkg.group, pkg.source, next, { signal: writeSignal(signal) })
      // A progress write that lands after a later write must not make its record the current one again.
      if (n !== writes) return
      current = next
      const held = records.heldJob(pkg.source, job.task)
      if (held != null && held.record.owner === selfId) entry.stamp = { ts: held.ts, origin: held.origin }
    }
    await write(current)
    // Read back from the quorum: a member that claimed it at the same time with a later stamp has it.
    const back = await records.getJob(pkg.group, pkg.source, job.task, { signal: writeSignal(signal) })
    if (back?.owner !== selfId || back.attempt !== current.attempt) {
      log.debug({ owner: back?.owner }, 'another member claimed the job first')
      return
    }
    log.info({ attempt: current.attempt }, 'running a video job')
    const ctx: TaskContext = {
      tools: this.c.tools,
      files: this.c.files,
      dir: join(this.workDir, 'jobs', `${randomBytes(8).toString('hex')}`),
      tag: `hls:${randomBytes(9).toString('base64url')}`,
      signal,
      uploaded: [],
      onProgress: this.progressWriter(entry, () => current, write)
    }
    let kept = false
    try {
      await mkdir(ctx.dir, { recursive: true })
      const input = await this.c.sources.acquire(pkg.source, { signal })
      try {
        const result = job.spec != null ? await runRendition(ctx, pkg, job.spec, input) : await runPreview(ctx, pkg, input)
        signal.throwIfAborted()
        await write({ ...current, state: 'done', result, progress: { percent: 100, speed: current.progress?.speed ?? 0 }, updated: Date.now() })
        kept = await this.stillWanted(pkg, job.task, signal)
        log.info({ kept }, 'video job done')
      } finally {
        await this.c.sources.release(pkg.source)
      }
    } catch (err) {
      if (signal.aborted) {
        log.info({ why: toError(signal.reason).message }, 'video job stopped')
      } else {
        const e = toError(err)
        const final = e instanceof TranscodeError || e instanceof ProbeError || current.attempt >= MAX_JOB_ATTEMPTS
        log.warn({ err: e.message, final }, 'video job failed')
        await write({ ...current, state: final ? 'failed' : 'queued', error: cutError(e.message), updated: Date.now() })
          .catch((werr: unknown) => { log.warn({ err: toError(werr).message }, 'could not record the failure of a video job (another member takes it over once its record goes stale)') })
      }
    } finally {
      // Outputs nobody will name are deleted (a stop of the node keeps them: the job's record may still be ours).
      if (!kept && !(signal.aborted && signal.reason instanceof NotStartedError)) {
        const left = await deleteFiles(this.c.files, ctx.uploaded, { signal: AbortSignal.timeout(JOB_WRITE_TIMEOUT_MS * 4) })
        if (left.length > 0) log.warn({ files: left }, 'could not delete the outputs of an abandoned video job')
      }
      await removeDir(ctx.dir)
    }
  }

  /** After our done write: the package still wants this job's result, and the record that won is ours. */
  private async stillWanted (pkg: PackageRecord, task: string, signal: AbortSignal): Promise<boolean> {
    const [p, j] = await Promise.all([
      this.c.records.getPackage(pkg.group, pkg.source, { signal: writeSignal(signal) }),
      this.c.records.getJob(pkg.group, pkg.source, task, { signal: writeSignal(signal) })
    ])
    return p != null && p.state !== 'cancelled' && j?.owner === this.c.selfId && j.state === 'done'
  }

  /** Progress, written at most every progressIntervalMs, one write at a time (a slow write skips updates, never queues them). */
  private progressWriter (entry: RunningJob, current: () => JobRecord, write: (r: JobRecord) => Promise<void>): (p: Progress) => void {
    let last = 0
    let inFlight = false
    return (p) => {
      const now = Date.now()
      if (inFlight || now - last < this.progressIntervalMs || entry.controller.signal.aborted) return
      last = now
      inFlight = true
      write({ ...current(), progress: { percent: Math.min(p.percent, 99), speed: p.speed, ...(p.etaS != null ? { etaS: p.etaS } : {}) }, updated: now })
        .catch((err: unknown) => { this.c.logger.debug({ err: toError(err).message }, 'a progress write failed') })
        .finally(() => { inFlight = false })
    }
  }
}
