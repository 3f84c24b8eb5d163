/**
 * One ffmpeg run with its progress (`-progress pipe:1`: key=value blocks on
 * stdout) and its reason when it fails (the last lines of stderr, logged at
 * `error` level). Progress is reported as the share of the source's
 * duration done, ffmpeg's speed (× real time) and the time left.
 */
import { spawn } from 'node:child_process'
import { TranscodeError, toError } from '../errors.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface Progress {
  /** 0–100. */
  percent: number
  /** × real time. */
  speed: number
  /** Seconds left at this speed; undefined until ffmpeg reports a speed. */
  etaS?: number
}

export interface FfmpegOptions extends AbortOptions {
  /** The source's duration in seconds, for percent and ETA. */
  durationS?: number
  onProgress?: (p: Progress) => void
  /** What the run makes, for the error message ('the 360p rendition'). */
  what?: string
}

/** Lines of stderr kept for the error message. */
const STDERR_LINES = 12

/** ffmpeg's progress value of the output time in µs: out_time_us (newer), out_time_ms (older: µs despite its name) or out_time. */
export function outTimeS (block: Map<string, string>): number | undefined {
  const us = Number(block.get('out_time_us') ?? block.get('out_time_ms'))
  if (Number.isFinite(us) && us >= 0) return us / 1e6
  const m = /^(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(block.get('out_time') ?? '')
  return m != null ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : undefined
}

export function toProgress (block: Map<string, string>, durationS: number | undefined): Progress | undefined {
  const t = outTimeS(block)
  if (t == null) return undefined
  const done = block.get('progress') === 'end'
  const percent = done ? 100 : durationS != null && durationS > 0 ? Math.min(99.9, 100 * t / durationS) : 0
  const speed = Number.parseFloat(block.get('speed') ?? '')
  const etaS = Number.isFinite(speed) && speed > 0 && durationS != null ? Math.max(0, (durationS - t) / speed) : undefined
  return { percent: Math.round(percent * 10) / 10, speed: Number.isFinite(speed) ? speed : 0, ...(etaS != null ? { etaS: Math.round(etaS) } : {}) }
}

/** Run ffmpeg with `args` (progress and quiet logging added); TranscodeError with its reason when it fails. */
export async function runFfmpeg (ffmpeg: string, args: string[], options: FfmpegOptions = {}): Promise<void> {
  options.signal?.throwIfAborted()
  const child = spawn(ffmpeg, ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', '-y', ...args, '-progress', 'pipe:1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.signal != null ? { signal: options.signal } : {}),
    killSignal: 'SIGKILL'
  })
  const stderr: string[] = []
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr.push(...s.split('\n').filter(l => l.trim() !== ''))
    if (stderr.length > STDERR_LINES) stderr.splice(0, stderr.length - STDERR_LINES)
  })
  let block = new Map<string, string>()
  let pending = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    const lines = (pending + s).split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) {
      const eq = line.indexOf('=')
      if (eq < 0) continue
      const key = line.slice(0, eq).trim()
      block.set(key, line.slice(eq + 1).trim())
      if (key !== 'progress') continue
      const p = toProgress(block, options.durationS)
      block = new Map()
      if (p != null) options.onProgress?.(p)
    }
  })
  const what = options.what ?? 'the output'
  await new Promise<void>((resolve, reject) => {
    child.once('error', (err) => {
      if (options.signal?.aborted === true) reject(toError(options.signal.reason))
      else reject(new TranscodeError(`ffmpeg could not run for ${what}: ${err.message}`))
    })
    child.once('close', (code, sig) => {
      if (options.signal?.aborted === true) reject(toError(options.signal.reason))
      else if (code === 0) resolve()
      else reject(new TranscodeError(`ffmpeg failed making ${what} (${code != null ? `exit ${code}` : `signal ${sig ?? '?'}`}): ${stderr.join(' | ') || 'no reason given'}`))
    })
  })
}
