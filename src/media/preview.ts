/**
 * What a player shows before and around playback: a poster (one frame, a
 * few seconds in, at most 720 lines) and a storyboard — thumbnails every
 * few seconds tiled into one sprite JPEG, and a WebVTT track whose cues
 * point into it with media fragments (`storyboard.jpg#xywh=x,y,w,h`), the
 * form players' seek-preview plugins read.
 */
import { join } from 'node:path'
import { runFfmpeg } from './ffmpeg.ts'
import type { FfmpegOptions } from './ffmpeg.ts'
import type { ProbeResult } from './probe.ts'
import type { MediaTools } from './tools.ts'

export const POSTER_FILE = 'poster.jpg'
export const SPRITE_FILE = 'storyboard.jpg'
export const THUMB_WIDTH_PX = 160
/** At most this many thumbnails: the interval grows with the duration. */
export const MAX_THUMBS = 100
const MIN_THUMB_INTERVAL_S = 2
const SPRITE_COLUMNS = 10
const POSTER_MAX_HEIGHT_PX = 720

export interface Storyboard {
  intervalS: number
  count: number
  columns: number
  rows: number
  thumbWidth: number
  thumbHeight: number
}

export function planStoryboard (source: ProbeResult): Storyboard | undefined {
  const v = source.video
  if (v == null) return undefined
  const duration = Math.max(source.durationS, 0.1)
  const intervalS = Math.max(MIN_THUMB_INTERVAL_S, Math.ceil(duration / MAX_THUMBS))
  const count = Math.max(1, Math.ceil(duration / intervalS))
  const columns = Math.min(SPRITE_COLUMNS, count)
  return {
    intervalS,
    count,
    columns,
    rows: Math.ceil(count / columns),
    thumbWidth: THUMB_WIDTH_PX,
    thumbHeight: Math.max(2, Math.round(THUMB_WIDTH_PX * v.height / v.width / 2) * 2)
  }
}

function vttTime (s: number): string {
  const ms = Math.round(s * 1000)
  const h = Math.floor(ms / 3_600_000)
  const m = Math.floor(ms / 60_000) % 60
  const sec = Math.floor(ms / 1000) % 60
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}.${String(ms % 1000).padStart(3, '0')}`
}

/** The WebVTT thumbnails track: one cue per thumbnail, pointing into `spriteUri`. */
export function storyboardVtt (board: Storyboard, durationS: number, spriteUri: string): string {
  const cues = ['WEBVTT', '']
  for (let i = 0; i < board.count; i++) {
    const start = i * board.intervalS
    const end = Math.min(durationS, (i + 1) * board.intervalS)
    const x = (i % board.columns) * board.thumbWidth
    const y = Math.floor(i / board.columns) * board.thumbHeight
    cues.push(`${vttTime(start)} --> ${vttTime(Math.max(end, start + 0.001))}`, `${spriteUri}#xywh=${x},${y},${board.thumbWidth},${board.thumbHeight}`, '')
  }
  return cues.join('\n')
}

export interface PreviewFiles { poster: string, sprite: string, board: Storyboard }

/** Make the poster and the storyboard sprite of a video `input` into `dir`; undefined for a source without video. */
export async function makePreview (tools: MediaTools, input: string, source: ProbeResult, dir: string, options: FfmpegOptions = {}): Promise<PreviewFiles | undefined> {
  const board = planStoryboard(source)
  if (board == null) return undefined
  const at = Math.min(3, source.durationS / 3)
  await runFfmpeg(tools.ffmpeg, ['-ss', at.toFixed(3), '-i', input, '-frames:v', '1', '-vf', `scale=-2:'min(${POSTER_MAX_HEIGHT_PX},ih)'`, '-q:v', '3', join(dir, POSTER_FILE)], { what: 'the poster', ...options, durationS: undefined })
  await runFfmpeg(tools.ffmpeg, [
    '-i', input, '-an',
    '-vf', `fps=1/${board.intervalS},scale=${board.thumbWidth}:${board.thumbHeight},tile=${board.columns}x${board.rows}`,
    '-frames:v', '1', '-q:v', '5', join(dir, SPRITE_FILE)
  ], { what: 'the storyboard', ...options })
  return { poster: POSTER_FILE, sprite: SPRITE_FILE, board }
}
