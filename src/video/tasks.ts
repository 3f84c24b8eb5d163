/**
 * The work of each video job, on the member that claimed it: a local copy
 * of the source, ffmpeg, and the outputs uploaded as ordinary dsm files into
 * the source's group. Every output is acknowledged (durable on the group's
 * copy floor) before the playlist that names it is written, and the
 * playlist before the job record that names it: nothing points at bytes
 * that are not replicated.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { planLadder } from '../media/ladder.ts'
import { probe } from '../media/probe.ts'
import { avcCodec, bandwidthOf, parseMediaPlaylist, writeMasterPlaylist, writeMediaPlaylist, AAC_LC } from '../media/playlist.ts'
import { makePreview, storyboardVtt, SPRITE_FILE } from '../media/preview.ts'
import { transcodeRendition } from '../media/transcode.ts'
import { PREVIEW_TASK } from '../wire/media.ts'
import type { FfmpegOptions, Progress } from '../media/ffmpeg.ts'
import type { Rendition } from '../media/ladder.ts'
import type { MediaTools } from '../media/tools.ts'
import type { Located } from '../dht/locate.ts'
import type { UploadRequest } from '../replica/service.ts'
import type { DeleteResult, UploadResult } from '../wire/messages.ts'
import type { JobRecord, PackageRecord, PreviewResult, RenditionResult } from '../wire/media.ts'
import type { AbortOptions } from '@libp2p/interface'

/** The file operations a job needs (the replica service's). */
export interface VideoFiles {
  upload(req: UploadRequest, source: AsyncIterable<Uint8Array>, options: AbortOptions): Promise<UploadResult>
  open(id: string, options: AbortOptions): Promise<Located>
  read(located: Located, offset: number, length: number, options: AbortOptions): AsyncIterable<Uint8Array>
  delete(id: string, options: AbortOptions): Promise<DeleteResult>
}

export interface TaskContext extends AbortOptions {
  tools: MediaTools
  files: VideoFiles
  /** This task's own scratch directory (made and removed by the caller). */
  dir: string
  /** Makes this run's files its own (no two runs share a file, so a losing run can delete its outputs). */
  tag: string
  onProgress?: (p: Progress) => void
  /** Every file this run uploaded so far: what to delete when the run is abandoned. */
  uploaded: string[]
}

function ffmpegOptions (ctx: TaskContext, durationS: number | undefined): FfmpegOptions {
  return { ...(ctx.signal != null ? { signal: ctx.signal } : {}), ...(ctx.onProgress != null ? { onProgress: ctx.onProgress } : {}), ...(durationS != null ? { durationS } : {}) }
}

/** Uploads of one task at once. */
const UPLOADS_AT_ONCE = 4
export const PLAYLIST_MIME = 'application/vnd.apple.mpegurl'

/** Copy the source into `path` (the job reads it many times, and ffmpeg wants a seekable file). */
export async function fetchSource (files: VideoFiles, source: string, path: string, options: AbortOptions): Promise<void> {
  const located = await files.open(source, options)
  const part = `${path}.part`
  await pipeline(Readable.from(files.read(located, 0, located.manifest.size, options)), createWriteStream(part), options)
  await rename(part, path)
}

async function upload (ctx: TaskContext, group: string, name: string, mime: string, body: string | Uint8Array): Promise<string> {
  const source = typeof body === 'string' ? createReadStream(body, { highWaterMark: 1024 * 1024 }) : [body]
  const size = typeof body === 'string' ? (await stat(body)).size : body.byteLength
  const result = await ctx.files.upload({ name, mime, group, size, tag: ctx.tag }, source as AsyncIterable<Uint8Array>, { ...(ctx.signal != null ? { signal: ctx.signal } : {}) })
  ctx.uploaded.push(result.id)
  return result.id
}

/** Upload `items` with at most UPLOADS_AT_ONCE in flight, results in order. */
async function uploadAll<T> (items: T[], each: (item: T) => Promise<string>): Promise<string[]> {
  const out: string[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(UPLOADS_AT_ONCE, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await each(items[i] as T)
    }
  }))
  return out
}

export interface Plan { durationS: number, jobs: JobRecord[] }

/** Probe the source and plan its ladder: one job per rendition, and the preview's when it has video. */
export async function planPackage (tools: MediaTools, input: string, options: AbortOptions & { maxVideoRenditions?: number } = {}): Promise<Plan> {
  const info = await probe(tools, input, options)
  const renditions = planLadder(info, options.maxVideoRenditions != null ? { maxVideoRenditions: options.maxVideoRenditions } : {})
  const now = Date.now()
  const jobs: JobRecord[] = renditions.map(r => ({ task: r.name, state: 'queued', spec: r, attempt: 0, updated: now }))
  if (info.video != null) jobs.push({ task: PREVIEW_TASK, state: 'queued', attempt: 0, updated: now })
  return { durationS: info.durationS, jobs }
}

/** Make one rendition and upload it: segments, init, then its playlist. */
export async function runRendition (ctx: TaskContext, pkg: PackageRecord, spec: Rendition, input: string): Promise<RenditionResult> {
  const out = join(ctx.dir, spec.name)
  await mkdir(out, { recursive: true })
  const made = await transcodeRendition(ctx.tools, input, spec, out, ffmpegOptions(ctx, pkg.durationS))
  const playlist = parseMediaPlaylist(await readFile(join(out, made.playlist), 'utf8'))
  const initBytes = await readFile(join(out, playlist.map ?? made.init))
  const sizes = await Promise.all(playlist.segments.map(async s => (await stat(join(out, s.uri))).size))
  const init = await upload(ctx, pkg.group, `${spec.name}-init.mp4`, 'video/mp4', initBytes)
  const ids = await uploadAll(playlist.segments, async s => upload(ctx, pkg.group, `${spec.name}-${s.uri}`, 'video/mp4', join(out, s.uri)))
  const text = writeMediaPlaylist(`${init}.mp4`, playlist.segments.map((s, i) => ({ uri: `${ids[i] as string}.m4s`, durationS: s.durationS })))
  const id = await upload(ctx, pkg.group, `${spec.name}.m3u8`, PLAYLIST_MIME, new TextEncoder().encode(text))
  const bw = bandwidthOf(playlist.segments.map((s, i) => ({ bytes: sizes[i] ?? 0, durationS: s.durationS })))
  const codecs = spec.kind === 'video' ? [avcCodec(initBytes), ...(spec.audioKbps > 0 ? [AAC_LC] : [])] : [AAC_LC]
  return {
    kind: 'rendition',
    playlist: id,
    init,
    segments: ids.length,
    bytes: sizes.reduce((a, b) => a + b, initBytes.byteLength),
    durationS: playlist.segments.reduce((a, s) => a + s.durationS, 0),
    bandwidth: bw.peak,
    averageBandwidth: bw.average,
    codecs: codecs.join(',')
  }
}

/** The poster, the storyboard sprite and its WebVTT track, uploaded. */
export async function runPreview (ctx: TaskContext, pkg: PackageRecord, input: string): Promise<PreviewResult> {
  const info = await probe(ctx.tools, input, ctx)
  const made = await makePreview(ctx.tools, input, info, ctx.dir, ffmpegOptions(ctx, info.durationS))
  if (made == null) throw new Error('the source has no video for a poster')
  const poster = await upload(ctx, pkg.group, 'poster.jpg', 'image/jpeg', join(ctx.dir, made.poster))
  const sprite = await upload(ctx, pkg.group, 'storyboard.jpg', 'image/jpeg', join(ctx.dir, made.sprite))
  // Served beside each other (/files/<source>/storyboard.vtt and .jpg): the cues name the sprite relatively.
  const vtt = await upload(ctx, pkg.group, 'storyboard.vtt', 'text/vtt', new TextEncoder().encode(storyboardVtt(made.board, info.durationS, SPRITE_FILE)))
  return { kind: 'preview', poster, sprite, vtt }
}

/** The master playlist over the done renditions, uploaded; its variants are named `<rendition>/index.m3u8`. */
export async function writeMaster (ctx: Pick<TaskContext, 'files' | 'tag' | 'uploaded' | 'signal'>, pkg: PackageRecord, jobs: JobRecord[]): Promise<string> {
  return upload(ctx as TaskContext, pkg.group, 'master.m3u8', PLAYLIST_MIME, new TextEncoder().encode(masterText(jobs)))
}

/**
 * Whether the done renditions of `jobs` make something to play: a video
 * rendition, for a source with video (hls.js would play an audio-only
 * master as audio); any rendition otherwise.
 */
export function playable (jobs: JobRecord[]): boolean {
  const done = jobs.filter(j => j.state === 'done' && j.result?.kind === 'rendition')
  return jobs.some(j => j.spec?.kind === 'video') ? done.some(j => j.spec?.kind === 'video') : done.length > 0
}

/** The master playlist's text over the renditions of `jobs` that are done. */
export function masterText (jobs: JobRecord[]): string {
  return writeMasterPlaylist(jobs.flatMap(j => {
    if (j.state !== 'done' || j.result?.kind !== 'rendition' || j.spec == null) return []
    const r = j.result
    const video = j.spec.kind === 'video' ? j.spec : undefined
    return [{
      uri: `${j.task}/index.m3u8`,
      bandwidth: r.bandwidth,
      averageBandwidth: r.averageBandwidth,
      codecs: r.codecs,
      ...(video != null ? { width: video.width, height: video.height, frameRate: video.fps } : {})
    }]
  }))
}

/** Delete files a run made (abandoned, cancelled, or the run that lost a race); failures are returned, not thrown. */
export async function deleteFiles (files: VideoFiles, ids: string[], options: AbortOptions): Promise<string[]> {
  const failed: string[] = []
  await uploadAll(ids, async id => {
    await files.delete(id, options).catch(() => { failed.push(id) })
    return id
  })
  return failed
}

export async function removeDir (dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
}
