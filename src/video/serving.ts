/**
 * What the HTTP routes serve of a package: the master playlist (the stored
 * one once ready; while renditions are still being made, one written from
 * those done so far, so playback starts with the first rendition), the
 * media playlists, and — only those a playlist names — its segments, init
 * segments, poster and storyboard. Playlists are immutable dsm files, so
 * they are cached by file ID; the package record briefly.
 */
import { LRUCache } from 'lru-cache'
import { NoSuchPackageError } from '../errors.ts'
import { playlistUris } from '../media/playlist.ts'
import { masterText, playable } from './tasks.ts'
import { PREVIEW_TASK } from '../wire/media.ts'
import type { MediaRecords } from './records.ts'
import type { VideoFiles } from './tasks.ts'
import type { PackageRecord } from '../wire/media.ts'
import type { AbortOptions } from '@libp2p/interface'

/** Playlists are small; a bigger file named as one is refused. */
export const MAX_PLAYLIST_BYTES = 4 * 1024 * 1024
/** How long a package's record is reused by the routes. */
export const PACKAGE_CACHE_MS = 2_000

/** A whole small file's bytes. */
export async function readSmall (files: VideoFiles, id: string, options: AbortOptions, max = MAX_PLAYLIST_BYTES): Promise<Uint8Array> {
  const located = await files.open(id, options)
  if (located.manifest.size > max) throw new NoSuchPackageError(`${id} is too large for a playlist`)
  const parts: Uint8Array[] = []
  for await (const p of files.read(located, 0, located.manifest.size, options)) parts.push(p)
  return Buffer.concat(parts)
}

/** The file IDs a stored playlist names (`<file id>.<ext>` URIs). */
export function idsOf (text: string): string[] {
  return playlistUris(text).map(u => u.replace(/\.[a-z0-9]+$/i, ''))
}

export async function playlistFiles (files: VideoFiles, playlist: string, options: AbortOptions): Promise<string[]> {
  return idsOf(new TextDecoder().decode(await readSmall(files, playlist, options)))
}

export type PreviewPart = 'poster' | 'sprite' | 'vtt'

export class PackageServer {
  private readonly files: VideoFiles
  private readonly records: MediaRecords
  private readonly texts = new LRUCache<string, { text: string, ids: Set<string> }>({ max: 2_000 })
  private readonly packages = new LRUCache<string, PackageRecord>({ max: 2_000, ttl: PACKAGE_CACHE_MS })

  constructor (files: VideoFiles, records: MediaRecords) {
    this.files = files
    this.records = records
  }

  private async pkg (source: string, options: AbortOptions): Promise<PackageRecord> {
    const cached = this.packages.get(source)
    if (cached != null) return cached
    const { group } = await this.files.open(source, options)
    const pkg = await this.records.getPackage(group, source, options)
    if (pkg == null || pkg.state === 'cancelled') throw new NoSuchPackageError(`${source} has no video package (ask for one with POST /api/files/${source}/hls)`)
    this.packages.set(source, pkg)
    return pkg
  }

  private async text (id: string, options: AbortOptions): Promise<{ text: string, ids: Set<string> }> {
    const cached = this.texts.get(id)
    if (cached != null) return cached
    const text = new TextDecoder().decode(await readSmall(this.files, id, options))
    const entry = { text, ids: new Set(idsOf(text)) }
    this.texts.set(id, entry)
    return entry
  }

  /** The master playlist, and whether it is final (ready) or grows as renditions finish. */
  async master (source: string, options: AbortOptions = {}): Promise<{ text: string, final: boolean }> {
    const pkg = await this.pkg(source, options)
    if (pkg.state === 'ready' && pkg.master != null) return { text: (await this.text(pkg.master, options)).text, final: true }
    if (pkg.state === 'transcoding') {
      const jobs = [...(await this.records.jobs(pkg.group, source, options)).values()]
      if (playable(jobs)) return { text: masterText(jobs), final: false }
    }
    throw new NoSuchPackageError(`the video package of ${source} is ${pkg.state}${pkg.error != null ? `: ${pkg.error}` : ''}; no rendition is playable yet`)
  }

  private async rendition (source: string, name: string, options: AbortOptions): Promise<{ text: string, ids: Set<string> }> {
    const pkg = await this.pkg(source, options)
    if (pkg.state !== 'ready' && pkg.state !== 'transcoding') throw new NoSuchPackageError(`the video package of ${source} is ${pkg.state}`)
    const job = await this.records.getJob(pkg.group, source, name, options)
    if (job?.state !== 'done' || job.result?.kind !== 'rendition') throw new NoSuchPackageError(`${source} has no ${name} rendition${job != null ? ` (it is ${job.state})` : ''}`)
    return this.text(job.result.playlist, options)
  }

  async mediaPlaylist (source: string, name: string, options: AbortOptions = {}): Promise<string> {
    return (await this.rendition(source, name, options)).text
  }

  /** The file of a segment or init segment `file` (`<id>.m4s|.mp4`), only if the rendition's playlist names it. */
  async segment (source: string, name: string, file: string, options: AbortOptions = {}): Promise<string> {
    const id = file.replace(/\.(m4s|mp4)$/, '')
    const { ids } = await this.rendition(source, name, options)
    if (id === file || !ids.has(id)) throw new NoSuchPackageError(`${file} is not a segment of the ${name} rendition of ${source}`)
    return id
  }

  async preview (source: string, part: PreviewPart, options: AbortOptions = {}): Promise<string> {
    const pkg = await this.pkg(source, options)
    if (pkg.preview == null && pkg.state === 'transcoding') {
      // Made before the ladder is: shown while the renditions are still being made.
      const job = await this.records.getJob(pkg.group, source, PREVIEW_TASK, options)
      if (job?.state === 'done' && job.result?.kind === 'preview') return job.result[part]
    }
    if (pkg.preview == null) throw new NoSuchPackageError(`${source} has no ${part === 'poster' ? 'poster' : 'storyboard'}${pkg.state !== 'ready' ? ` yet (its package is ${pkg.state})` : ''}`)
    return pkg.preview[part]
  }

  forget (source: string): void {
    this.packages.delete(source)
  }
}
