/**
 * What ffprobe says about a source: duration, the first video stream (codec,
 * size, frame rate, bitrate) and the first audio stream — what a ladder is
 * planned from (renditions up to the source's height, an audio-only one
 * when there is audio). ffprobe's JSON is checked with a schema: a file it
 * cannot read is a ProbeError with ffprobe's own reason.
 */
import { z } from 'zod'
import { ProbeError } from '../errors.ts'
import { run } from './tools.ts'
import type { MediaTools } from './tools.ts'
import type { AbortOptions } from '@libp2p/interface'
import { anySignal } from '../util/abort.ts'

/** How long a probe may take. */
export const PROBE_TIMEOUT_MS = 30_000

export interface VideoInfo { codec: string, width: number, height: number, fps: number, bitRate?: number }
export interface AudioInfo { codec: string, channels: number, sampleRate: number }
export interface ProbeResult { durationS: number, video?: VideoInfo, audio?: AudioInfo }

const numeric = z.union([z.string(), z.number()]).transform(Number).pipe(z.number().finite())
const StreamSchema = z.object({
  codec_type: z.string().optional(),
  codec_name: z.string().optional(),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
  avg_frame_rate: z.string().optional(),
  r_frame_rate: z.string().optional(),
  bit_rate: numeric.optional(),
  channels: z.number().int().positive().optional(),
  sample_rate: numeric.optional()
})
const ProbeOutputSchema = z.object({
  streams: z.array(StreamSchema).default([]),
  format: z.object({ duration: numeric.optional() }).default({})
})

/** "30000/1001" → 29.97; "0/0" → undefined. */
export function parseRate (rate: string | undefined): number | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(rate ?? '')
  if (m == null) return undefined
  const den = Number(m[2])
  return den > 0 && Number(m[1]) > 0 ? Number(m[1]) / den : undefined
}

export async function probe (tools: MediaTools, file: string, options: AbortOptions = {}): Promise<ProbeResult> {
  const signal = anySignal(AbortSignal.timeout(PROBE_TIMEOUT_MS), options.signal)
  let out: string
  try {
    out = await run(tools.ffprobe, ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file], { signal })
  } catch (err) {
    const reason = String((err as { stderr?: string }).stderr ?? '').trim().split('\n').at(-1) ?? ''
    throw new ProbeError(`ffprobe could not read ${file}: ${reason !== '' ? reason : (err as Error).message}`)
  }
  const parsed = ProbeOutputSchema.safeParse(JSON.parse(out === '' ? '{}' : out))
  if (!parsed.success) throw new ProbeError(`ffprobe's answer for ${file} is not what dsm expects`)
  const { streams, format } = parsed.data
  const v = streams.find(s => s.codec_type === 'video')
  const a = streams.find(s => s.codec_type === 'audio')
  const fps = parseRate(v?.avg_frame_rate) ?? parseRate(v?.r_frame_rate)
  const video = v?.width != null && v.height != null && fps != null
    ? { codec: v.codec_name ?? 'unknown', width: v.width, height: v.height, fps, ...(v.bit_rate != null ? { bitRate: v.bit_rate } : {}) }
    : undefined
  const audio = a?.channels != null && a.sample_rate != null ? { codec: a.codec_name ?? 'unknown', channels: a.channels, sampleRate: a.sample_rate } : undefined
  if (video == null && audio == null) throw new ProbeError(`${file} has no video or audio stream ffprobe can read`)
  return { durationS: format.duration ?? 0, ...(video != null ? { video } : {}), ...(audio != null ? { audio } : {}) }
}
