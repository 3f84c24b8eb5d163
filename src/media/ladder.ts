/**
 * The renditions a source gets: H.264 + AAC at the standard heights up to
 * the source's own (never upscaled), and an audio-only rendition when the
 * source has audio. A source smaller than the lowest rung gets one rendition
 * at its own height. Bitrates follow the usual ladders (Apple's HLS
 * authoring spec, rounded), capped at what the source itself carries plus a
 * margin: re-encoding a 400 kbit/s 360p source at 800 kbit/s only wastes
 * bytes.
 */
import type { ProbeResult } from './probe.ts'

export interface VideoRendition {
  kind: 'video'
  /** '720p', … : the name in URLs and playlists. */
  name: string
  width: number
  height: number
  videoKbps: number
  /** 0: the source has no audio. */
  audioKbps: number
  fps: number
}

export interface AudioRendition {
  kind: 'audio'
  name: 'audio'
  audioKbps: number
}

export type Rendition = VideoRendition | AudioRendition

/** The rungs, highest first: height and video kbit/s. */
export const LADDER_RUNGS: ReadonlyArray<{ height: number, videoKbps: number }> = [
  { height: 1080, videoKbps: 5000 },
  { height: 720, videoKbps: 2800 },
  { height: 480, videoKbps: 1400 },
  { height: 360, videoKbps: 800 },
  { height: 240, videoKbps: 400 }
]
export const AUDIO_KBPS = 128
export const AUDIO_ONLY_KBPS = 96
/** Frame rates above this are halved (a 4 s GOP of 120 fps helps nobody on a phone). */
export const MAX_FPS = 60
/** A rung may use up to this much more than the source's own video bitrate. */
const SOURCE_BITRATE_MARGIN = 1.5
const MIN_VIDEO_KBPS = 150

/** Even, as H.264 in 4:2:0 needs. */
function even (n: number): number {
  return Math.max(2, Math.round(n / 2) * 2)
}

export interface LadderOptions {
  /** At most this many video renditions, the highest kept (default: every rung that fits). */
  maxVideoRenditions?: number
}

export function planLadder (source: ProbeResult, options: LadderOptions = {}): Rendition[] {
  const out: Rendition[] = []
  const audioKbps = source.audio != null ? AUDIO_KBPS : 0
  const v = source.video
  if (v != null) {
    // The display height: a portrait source's rungs are its shorter side.
    const short = Math.min(v.width, v.height)
    const portrait = v.height > v.width
    const fps = v.fps > MAX_FPS ? v.fps / 2 : v.fps
    const cap = v.bitRate != null && v.bitRate > 0 ? Math.max(MIN_VIDEO_KBPS, Math.round(v.bitRate / 1000 * SOURCE_BITRATE_MARGIN)) : Infinity
    let rungs = LADDER_RUNGS.filter(r => r.height <= short)
    if (rungs.length === 0) rungs = [{ height: even(short), videoKbps: LADDER_RUNGS.at(-1)?.videoKbps ?? MIN_VIDEO_KBPS }]
    if (options.maxVideoRenditions != null) rungs = rungs.slice(0, Math.max(1, options.maxVideoRenditions))
    for (const r of rungs) {
      const long = even(r.height * Math.max(v.width, v.height) / short)
      out.push({
        kind: 'video',
        name: `${r.height}p`,
        width: portrait ? r.height : long,
        height: portrait ? long : r.height,
        videoKbps: Math.min(r.videoKbps, cap),
        audioKbps,
        fps
      })
    }
  }
  if (source.audio != null) out.push({ kind: 'audio', name: 'audio', audioKbps: AUDIO_ONLY_KBPS })
  return out
}
