/**
 * Video packages made by the cluster: HLS ladders, posters and storyboards
 * (docs/architecture.md, "Video jobs"). Every member of a group runs this
 * service over its group's jobs: each pass (every `scanIntervalMs`) reads
 * our own copy of the group's table, asks the scheduler what to do
 * (./scheduler.ts) and does it — plan a package, claim jobs up to
 * `transcodeJobs` at once, finish or fail a package, stop a job that is no
 * longer ours. Any node asks for a package, cancels one or reads one's
 * status, through the source group's quorum.
 */
import { join } from 'node:path'
import { NotStartedError, toError } from '../errors.ts'
import { findMediaTools } from '../media/tools.ts'
import { Periodic } from '../util/periodic.ts'
import { jobKey } from '../wire/media.ts'
import { MediaRecords } from './records.ts'
import { JobRunner } from './runner.ts'
import { StampAges, schedule } from './scheduler.ts'
import { SourceCache } from './source-cache.ts'
import { PackageServer } from './serving.ts'
import { cancelPackage, failPackage, finishPackage, packageStatus, planPackageJobs, removePackage, requestPackage } from './package-ops.ts'
import type { Action } from './scheduler.ts'
import type { GroupTables, LocalTable } from './records.ts'
import type { RunningJob } from './runner.ts'
import type { PackageComponents, PackageStatus } from './package-ops.ts'
import type { VideoFiles } from './tasks.ts'
import type { MediaTools } from '../media/tools.ts'
import type { Logger } from '../logger.ts'
import type { NodeState } from '../wire/state.ts'
import type { AbortOptions, Startable } from '@libp2p/interface'
import { anySignal } from '../util/abort.ts'

export const DEFAULT_TRANSCODE_JOBS = 1
export const SCAN_INTERVAL_MS = 2_000
export const STALE_AFTER_MS = 30_000
export const PROGRESS_INTERVAL_MS = 2_000
export const CLAIM_GRACE_MS = 10_000
/** How long a package operation asked by a client may take. */
export const PACKAGE_OP_TIMEOUT_MS = 30_000

export interface VideoInit {
  /** Scratch space for sources and outputs (under the data directory). */
  workDir: string
  /** Jobs this member runs at once; 0: it makes none (it still serves and asks). */
  transcodeJobs?: number
  scanIntervalMs?: number
  staleAfterMs?: number
  progressIntervalMs?: number
  claimGraceMs?: number
  /** Video renditions per package at most (the highest kept): small ladders for tests and weak hosts. */
  maxVideoRenditions?: number
  /** The tools to use (default: findMediaTools()). */
  tools?: MediaTools
}

export interface VideoComponents {
  selfId: string
  status: { readonly group: string | null, readonly state: NodeState }
  view: { groupMembers(group: string): Array<{ peerId: string, state: NodeState, spare: boolean }> }
  tables: GroupTables
  local: LocalTable
  files: VideoFiles
  /** Whether our own index holds the file as deleted. */
  isDeleted: (id: string) => boolean
  logger: Logger
}

function withTimeout (options: AbortOptions): AbortOptions {
  return { signal: anySignal(AbortSignal.timeout(PACKAGE_OP_TIMEOUT_MS), options.signal) }
}

export class VideoService implements Startable {
  readonly records: MediaRecords
  readonly server: PackageServer
  private readonly c: VideoComponents
  private readonly init: Required<Omit<VideoInit, 'tools' | 'maxVideoRenditions'>> & Pick<VideoInit, 'tools' | 'maxVideoRenditions'>
  private readonly sources: SourceCache
  private readonly ages = new StampAges()
  private readonly running = new Map<string, RunningJob>()
  /** Packages being planned or finished here. */
  private readonly busy = new Set<string>()
  private readonly chores = new Set<Promise<void>>()
  private tools?: MediaTools
  private runner?: JobRunner
  private pass?: Periodic
  private stopping = new AbortController()

  constructor (components: VideoComponents, init: VideoInit) {
    this.c = components
    this.init = {
      transcodeJobs: DEFAULT_TRANSCODE_JOBS,
      scanIntervalMs: SCAN_INTERVAL_MS,
      staleAfterMs: STALE_AFTER_MS,
      progressIntervalMs: PROGRESS_INTERVAL_MS,
      claimGraceMs: CLAIM_GRACE_MS,
      ...init
    }
    this.records = new MediaRecords(components.tables, components.local)
    this.sources = new SourceCache(join(init.workDir, 'sources'), components.files)
    this.server = new PackageServer(components.files, this.records)
  }

  private get ops (): PackageComponents {
    return { records: this.records, files: this.c.files, sources: this.sources, ...(this.tools != null ? { tools: this.tools } : {}) }
  }

  async start (): Promise<void> {
    if (this.pass != null) return
    this.stopping = new AbortController()
    if (this.init.transcodeJobs > 0) {
      try {
        this.tools = this.init.tools ?? await findMediaTools()
      } catch (err) {
        this.c.logger.warn({ err: toError(err).message }, 'no ffmpeg: this node makes no video packages (it still serves them)')
      }
    }
    if (this.tools != null) {
      this.runner = new JobRunner({ selfId: this.c.selfId, tools: this.tools, files: this.c.files, records: this.records, sources: this.sources, logger: this.c.logger }, { workDir: this.init.workDir, progressIntervalMs: this.init.progressIntervalMs })
    }
    this.pass = new Periodic(this.init.scanIntervalMs, async () => { this.scan() }, (err) => { this.c.logger.warn({ err: err.message }, 'a video jobs pass failed') })
    this.pass.start()
  }

  async stop (): Promise<void> {
    const pass = this.pass
    if (pass == null) return
    this.pass = undefined
    await pass.stop()
    this.stopping.abort(new NotStartedError('the node is stopping'))
    for (const job of this.running.values()) job.controller.abort(new NotStartedError('the node is stopping'))
    await Promise.allSettled([...[...this.running.values()].map(async j => j.done), ...this.chores])
  }

  /** Run a pass now (after a request, say), unless one is under way. */
  kick (): void {
    this.pass?.kick()
  }

  /** Jobs running here now. */
  get runningJobs (): number {
    return this.running.size
  }

  /** One pass: what our copy of the group's table asks of us. */
  private scan (): void {
    const group = this.c.status.group
    if (group == null || this.c.status.state !== 'ACTIVE' || this.runner == null) return
    const now = Date.now()
    const packages = this.records.heldPackages()
    const jobs = this.records.heldJobs()
    this.ages.keep(new Set([...packages.map(p => p.key), ...jobs.map(j => j.key)]))
    const actions = schedule({
      selfId: this.c.selfId,
      members: this.c.view.groupMembers(group).filter(m => !m.spare),
      packages,
      jobs,
      running: new Map([...this.running].map(([k, j]) => [k, j.stamp])),
      busy: this.busy,
      sourceDeleted: (source) => this.c.isDeleted(source),
      freeSlots: this.init.transcodeJobs - this.running.size,
      ageOf: (key, ts, origin) => this.ages.ageOf(key, ts, origin, now),
      staleAfterMs: this.init.staleAfterMs,
      claimGraceMs: this.init.claimGraceMs
    })
    for (const a of actions) this.act(group, a)
  }

  private act (group: string, a: Action): void {
    if (a.kind === 'abort') {
      this.running.get(a.key)?.controller.abort(new Error(a.why))
      return
    }
    if (a.kind === 'claim') {
      const pkg = this.records.heldPackage(a.source)?.record
      if (pkg == null || this.runner == null) return
      const key = jobKey(a.source, a.task)
      // Reserved before any await: the next pass sees the slot taken.
      const entry: RunningJob = { controller: new AbortController(), stamp: { ts: Number.MAX_SAFE_INTEGER, origin: '' }, done: Promise.resolve() }
      this.running.set(key, entry)
      entry.done = this.runner.run(pkg, a.job, entry)
        .catch((err: unknown) => { if (!entry.controller.signal.aborted) this.c.logger.warn({ err: toError(err).message, task: a.task }, 'a video job could not start') })
        .finally(() => {
          this.running.delete(key)
          this.kick()
        })
      return
    }
    const { signal } = this.stopping
    this.chore(a.source, async () => {
      if (a.kind === 'plan') {
        const pkg = this.records.heldPackage(a.source)?.record
        if (pkg?.state === 'queued') await planPackageJobs(this.ops, pkg, { signal, ...(this.init.maxVideoRenditions != null ? { maxVideoRenditions: this.init.maxVideoRenditions } : {}) })
      } else if (a.kind === 'forget') {
        await this.records.removeJob(group, a.source, a.task, withTimeout({ signal }))
      } else if (a.kind === 'remove') {
        await removePackage(this.ops, group, a.source, withTimeout({ signal }))
        this.server.forget(a.source)
      } else if (a.kind === 'finalize') {
        await finishPackage(this.ops, group, a.source, withTimeout({ signal }))
      } else {
        await failPackage(this.ops, group, a.source, a.error, withTimeout({ signal }))
      }
    })
  }

  /** A package step run here, one per package at a time, owned until stop. */
  private chore (source: string, work: () => Promise<void>): void {
    if (this.busy.has(source)) return
    this.busy.add(source)
    const p = work()
      .then(() => { this.kick() }, (err: unknown) => {
        // Retried on the next pass on schedule, not at once: a step that keeps failing must not spin.
        if (!this.stopping.signal.aborted) this.c.logger.warn({ err: toError(err).message, source: source.slice(0, 12) }, 'a video package step failed (retried on a later pass)')
      })
      .finally(() => {
        this.busy.delete(source)
        this.chores.delete(p)
      })
    this.chores.add(p)
  }

  /** Ask for a package of `source` (in its group). */
  async request (source: string, group: string, options: AbortOptions = {}): Promise<PackageStatus> {
    const pkg = await requestPackage(this.ops, source, group, withTimeout(options))
    this.server.forget(source)
    this.kick()
    return packageStatus(pkg, new Map())
  }

  async status (source: string, group: string, options: AbortOptions = {}): Promise<PackageStatus | undefined> {
    const o = withTimeout(options)
    const pkg = await this.records.getPackage(group, source, o)
    return pkg != null ? packageStatus(pkg, await this.records.jobs(group, source, o)) : undefined
  }

  async cancel (source: string, group: string, options: AbortOptions = {}): Promise<PackageStatus> {
    const o = withTimeout(options)
    const pkg = await cancelPackage(this.ops, group, source, o)
    this.server.forget(source)
    this.kick()
    return packageStatus(pkg, await this.records.jobs(group, source, o))
  }

  /** Remove `source`'s package (its members also do so on their own once they hold the source as deleted). */
  async remove (source: string, group: string, options: AbortOptions = {}): Promise<boolean> {
    const removed = await removePackage(this.ops, group, source, withTimeout(options))
    this.server.forget(source)
    return removed
  }

  /** Every package of the given groups, with its jobs (`dsm jobs`); groups that could not answer are named. */
  async list (groups: string[], options: AbortOptions = {}): Promise<{ packages: PackageStatus[], unavailable: string[] }> {
    const o = withTimeout(options)
    const perGroup = await Promise.allSettled(groups.map(async g => {
      const pkgs = await this.records.packages(g, o)
      return Promise.all(pkgs.map(async p => packageStatus(p, await this.records.jobs(g, p.source, o))))
    }))
    return {
      packages: perGroup.flatMap(r => r.status === 'fulfilled' ? r.value : []).sort((a, b) => b.created - a.created),
      unavailable: groups.filter((_g, i) => perGroup[i]?.status === 'rejected')
    }
  }
}
