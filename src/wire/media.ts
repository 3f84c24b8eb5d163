/**
 * Records of video packages (an HLS ladder, a poster and a storyboard made
 * from a source file) and of the jobs that make them. They live in the
 * source's group's name log under MEDIA_BUCKET — a table every group has and
 * no S3 client can name — so they are replicated, durable and read by
 * quorum like S3 keys, and every member of the group sees every job:
 *
 *   pkg/<source id>          PackageRecord
 *   job/<source id>/<task>   JobRecord (task: a rendition's name, or 'preview')
 */
import { z } from 'zod'
import { count, fileId, groupName, peerIdString } from './messages.ts'
import { GROUP_TABLE_BUCKET } from './names.ts'

export const MEDIA_BUCKET = GROUP_TABLE_BUCKET
export const PACKAGE_PREFIX = 'pkg/'
export const JOB_PREFIX = 'job/'
export const PREVIEW_TASK = 'preview'
/** A task: a rendition ('1080p' … '240p', 'audio') or the preview. */
export const taskName = z.string().regex(/^(?:\d{2,4}p|audio|preview)$/, 'a rendition name or "preview"')
/** Longest error text a record keeps (ffmpeg's reason, cut). */
export const MAX_ERROR_CHARS = 2000

const errorText = z.string().max(MAX_ERROR_CHARS)

export const ProgressSchema = z.object({ percent: z.number().min(0).max(100), speed: z.number().min(0), etaS: count.optional() })
export type ProgressWire = z.infer<typeof ProgressSchema>

export const RenditionSpecSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('video'), name: taskName, width: count, height: count, videoKbps: count, audioKbps: count, fps: z.number().positive().max(1000) }),
  z.object({ kind: z.literal('audio'), name: z.literal('audio'), audioKbps: count })
])

export const RenditionResultSchema = z.object({
  kind: z.literal('rendition'),
  /** The media playlist, a dsm file naming the init segment and segments as `<file id>.mp4|.m4s`. */
  playlist: fileId,
  init: fileId,
  segments: count,
  bytes: count,
  durationS: z.number().nonnegative(),
  bandwidth: count,
  averageBandwidth: count,
  codecs: z.string().max(100)
})
export type RenditionResult = z.infer<typeof RenditionResultSchema>

export const PreviewResultSchema = z.object({ kind: z.literal('preview'), poster: fileId, sprite: fileId, vtt: fileId })
export type PreviewResult = z.infer<typeof PreviewResultSchema>

export const JobStateSchema = z.enum(['queued', 'running', 'done', 'failed'])
export type JobState = z.infer<typeof JobStateSchema>

export const JobRecordSchema = z.object({
  task: taskName,
  state: JobStateSchema,
  /** What to make: a rendition's parameters (none for the preview). */
  spec: RenditionSpecSchema.optional(),
  /** The member running it (running) or that ran it (done, failed). */
  owner: peerIdString.optional(),
  /** Runs started, takeovers included. */
  attempt: count,
  progress: ProgressSchema.optional(),
  error: errorText.optional(),
  result: z.discriminatedUnion('kind', [RenditionResultSchema, PreviewResultSchema]).optional(),
  /** ms since the epoch, by the writer's clock: for people; staleness is judged by each member's own clock. */
  updated: count
})
export type JobRecord = z.infer<typeof JobRecordSchema>

export const PackageStateSchema = z.enum(['queued', 'transcoding', 'ready', 'failed', 'cancelled'])
export type PackageState = z.infer<typeof PackageStateSchema>

export const PackageRecordSchema = z.object({
  source: fileId,
  group: groupName,
  state: PackageStateSchema,
  created: count,
  /** Set once planned: the source's duration and the tasks made for it. */
  durationS: z.number().nonnegative().optional(),
  tasks: z.array(taskName).max(16).optional(),
  /** Once ready: the master playlist (a dsm file) and the preview's files. */
  master: fileId.optional(),
  preview: PreviewResultSchema.optional(),
  error: errorText.optional(),
  updated: count
})
export type PackageRecord = z.infer<typeof PackageRecordSchema>

export function packageKey (source: string): string {
  return `${PACKAGE_PREFIX}${source}`
}

export function jobKey (source: string, task: string): string {
  return `${JOB_PREFIX}${source}/${task}`
}

/** `job/<source>/<task>` → its parts; undefined for any other key. */
export function parseJobKey (key: string): { source: string, task: string } | undefined {
  if (!key.startsWith(JOB_PREFIX)) return undefined
  const rest = key.slice(JOB_PREFIX.length)
  const slash = rest.lastIndexOf('/')
  return slash > 0 ? { source: rest.slice(0, slash), task: rest.slice(slash + 1) } : undefined
}
