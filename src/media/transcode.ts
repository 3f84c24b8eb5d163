/**
 * One rendition of the ladder, made by one ffmpeg run into a directory:
 * `index.m3u8` (VOD), `init.mp4` and `seg_NNNNN.m4s` (CMAF/fMP4). Every
 * rendition forces a key frame at every multiple of SEGMENT_S seconds and
 * disables scene-cut key frames, with closed GOPs (x264's default), so
 * renditions made by separate runs — on separate nodes — cut their
 * segments at the same instants and a player switches between them at any
 * segment boundary.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { runFfmpeg } from './ffmpeg.ts'
import type { FfmpegOptions } from './ffmpeg.ts'
import type { Rendition } from './ladder.ts'
import type { MediaTools } from './tools.ts'

/** Target segment length, seconds. */
export const SEGMENT_S = 4
export const PLAYLIST_FILE = 'index.m3u8'
export const INIT_FILE = 'init.mp4'

function renditionArgs (r: Rendition): string[] {
  if (r.kind === 'audio') return ['-map', '0:a:0', '-vn', '-c:a', 'aac', '-b:a', `${r.audioKbps}k`, '-ac', '2']
  const gop = Math.max(1, Math.round(r.fps * SEGMENT_S))
  return [
    '-map', '0:v:0',
    ...(r.audioKbps > 0 ? ['-map', '0:a:0', '-c:a', 'aac', '-b:a', `${r.audioKbps}k`, '-ac', '2'] : []),
    '-vf', `scale=${r.width}:${r.height}`,
    '-r', String(Math.round(r.fps * 1000) / 1000),
    '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'main', '-pix_fmt', 'yuv420p',
    '-b:v', `${r.videoKbps}k`, '-maxrate', `${Math.round(r.videoKbps * 1.1)}k`, '-bufsize', `${r.videoKbps * 2}k`,
    '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0',
    '-force_key_frames', `expr:gte(t,n_forced*${SEGMENT_S})`
  ]
}

export interface RenditionFiles {
  dir: string
  playlist: string
  init: string
  /** Segment file names in `dir`, in order. */
  segments: string[]
}

/** Make `r` from `input` into `dir` (which must exist and be empty). */
export async function transcodeRendition (tools: MediaTools, input: string, r: Rendition, dir: string, options: FfmpegOptions = {}): Promise<RenditionFiles> {
  await runFfmpeg(tools.ffmpeg, [
    '-i', input,
    ...renditionArgs(r),
    '-f', 'hls', '-hls_time', String(SEGMENT_S), '-hls_playlist_type', 'vod',
    '-hls_segment_type', 'fmp4', '-hls_flags', 'independent_segments',
    '-hls_fmp4_init_filename', INIT_FILE,
    '-hls_segment_filename', join(dir, 'seg_%05d.m4s'),
    join(dir, PLAYLIST_FILE)
  ], { what: `the ${r.name} rendition`, ...options })
  const names = await readdir(dir)
  return { dir, playlist: PLAYLIST_FILE, init: INIT_FILE, segments: names.filter(n => n.endsWith('.m4s')).sort() }
}
