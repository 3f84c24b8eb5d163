/** The sample media of ../shared/media, and ffprobe on what dsm serves. */
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { findMediaTools, run } from '../../src/media/tools.ts'

export const MEDIA_DIR = join(import.meta.dirname, '..', '..', '..', 'shared', 'media')
export const SAMPLE_30S = join(MEDIA_DIR, 'sample-30s.mp4')

export async function sample30s (): Promise<Uint8Array<ArrayBuffer>> {
  const b = await readFile(SAMPLE_30S)
  return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) as Uint8Array<ArrayBuffer>
}

export interface ProbedStream { codec_type: string, codec_name: string, width?: number, height?: number, profile?: string }

/** ffprobe's streams and format of a URL or file (an HLS playlist is read as one stream, segments and all). */
export async function ffprobe (input: string): Promise<{ streams: ProbedStream[], format: { duration?: string } }> {
  const tools = await findMediaTools()
  const out = await run(tools.ffprobe, ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', input])
  return JSON.parse(out) as { streams: ProbedStream[], format: { duration?: string } }
}

/** Presentation times of the key frames of a file's video. */
export async function keyFrameTimes (input: string): Promise<number[]> {
  const tools = await findMediaTools()
  const out = await run(tools.ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-skip_frame', 'nokey', '-show_entries', 'frame=pts_time,best_effort_timestamp_time', '-of', 'csv=p=0', input])
  return out.split('\n').map(l => Number.parseFloat(l.split(',')[0] ?? '')).filter(n => Number.isFinite(n))
}

/**
 * Processes whose command line names a path under `dir`: the ffmpeg runs a
 * node killed with SIGKILL left behind. Each ends at its next progress write
 * (the pipe to its node is gone), and until then it may still write there.
 */
export async function processesUnder (dir: string): Promise<number> {
  let n = 0
  for (const pid of (await readdir('/proc')).filter(p => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmd.includes(dir)) n++
  }
  return n
}
