/**
 * The media tools a node transcodes with: ffmpeg and ffprobe. The system's
 * (on PATH) when both are there and ffmpeg is at least MIN_FFMPEG_VERSION;
 * else the static binaries that come with `npm install`
 * (@ffmpeg-installer/ffmpeg: ffmpeg 4.1; @ffprobe-installer/ffprobe), chosen
 * because they ship their binaries in the package — installers that download
 * at install time cannot run where only the registry is reachable.
 */
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { MediaToolsError } from '../errors.ts'
import type { AbortOptions } from '@libp2p/interface'
import { anySignal } from '../util/abort.ts'

/** The oldest ffmpeg whose HLS muxer has what the ladder needs (fMP4 segments, var_stream_map). */
export const MIN_FFMPEG_VERSION: readonly [number, number] = [4, 1]
/** How long asking a binary for its version may take. */
const VERSION_TIMEOUT_MS = 10_000

export interface MediaTools {
  ffmpeg: string
  ffprobe: string
  /** ffmpeg's version line, as it prints it. */
  version: string
  source: 'system' | 'npm'
}

/** Run a binary and return its stdout (its stderr in the error when it fails). */
export async function run (file: string, args: string[], options: AbortOptions & { maxBuffer?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { signal: options.signal, maxBuffer: options.maxBuffer ?? 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err != null) reject(Object.assign(err, { stderr }))
      else resolve(stdout)
    })
  })
}

/** "ffmpeg version 5.1.6-0+deb12u1 …" → [5, 1]; a git build ("N-47683-…") has no number: undefined. */
export function parseVersion (line: string): [number, number] | undefined {
  const m = /version\s+n?(\d+)\.(\d+)/i.exec(line)
  return m != null ? [Number(m[1]), Number(m[2])] : undefined
}

function newEnough (v: [number, number] | undefined): boolean {
  return v != null && (v[0] > MIN_FFMPEG_VERSION[0] || (v[0] === MIN_FFMPEG_VERSION[0] && v[1] >= MIN_FFMPEG_VERSION[1]))
}

async function versionLine (file: string, options: AbortOptions): Promise<string | undefined> {
  const signal = anySignal(AbortSignal.timeout(VERSION_TIMEOUT_MS), options.signal)
  const out = await run(file, ['-hide_banner', '-version'], { signal }).catch(() => undefined)
  return out?.split('\n')[0]
}

/** The packaged binaries' paths (the packages pick the platform's build). */
function packaged (): { ffmpeg: string, ffprobe: string } {
  const require = createRequire(import.meta.url)
  try {
    return { ffmpeg: (require('@ffmpeg-installer/ffmpeg') as { path: string }).path, ffprobe: (require('@ffprobe-installer/ffprobe') as { path: string }).path }
  } catch (err) {
    throw new MediaToolsError(`no ffmpeg on PATH and the packaged one is missing for ${process.platform}-${process.arch} (${(err as Error).message}); install ffmpeg ${MIN_FFMPEG_VERSION.join('.')} or newer`)
  }
}

/** The tools to use: the system's when new enough, else the packaged ones; MediaToolsError if neither runs. */
export async function findMediaTools (options: AbortOptions & { ffmpeg?: string, ffprobe?: string } = {}): Promise<MediaTools> {
  const system = await versionLine(options.ffmpeg ?? 'ffmpeg', options)
  if (system != null && newEnough(parseVersion(system)) && await versionLine(options.ffprobe ?? 'ffprobe', options) != null) {
    return { ffmpeg: options.ffmpeg ?? 'ffmpeg', ffprobe: options.ffprobe ?? 'ffprobe', version: system, source: 'system' }
  }
  const { ffmpeg, ffprobe } = packaged()
  const version = await versionLine(ffmpeg, options)
  if (version == null || await versionLine(ffprobe, options) == null) throw new MediaToolsError(`the packaged ffmpeg/ffprobe (${ffmpeg}, ${ffprobe}) do not run here`)
  return { ffmpeg, ffprobe, version, source: 'npm' }
}
