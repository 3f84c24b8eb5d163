/**
 * ffmpeg and ffprobe as a node finds them (src/media/tools.ts) — the
 * system's when new enough, else the binaries `npm install` brought — and
 * what ffprobe says of the real sample media (src/media/probe.ts): duration,
 * codecs, size and frame rate; a corrupt file and a file that is not there
 * are a ProbeError with ffprobe's reason.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findMediaTools, parseVersion, run } from '../../src/media/tools.ts'
import { parseRate, probe } from '../../src/media/probe.ts'
import type { MediaTools } from '../../src/media/tools.ts'

const MEDIA_DIR = join(import.meta.dirname, '..', '..', '..', 'shared', 'media')

describe('media tools', () => {
  let tools: MediaTools
  let dir: string
  beforeAll(async () => {
    tools = await findMediaTools()
    dir = await mkdtemp(join(tmpdir(), 'dsm-media-'))
  })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('finds an ffmpeg that runs and can encode the ladder (libx264, aac, the HLS muxer)', async () => {
    expect(['system', 'npm']).toContain(tools.source)
    expect(tools.version).toMatch(/^ffmpeg version /)
    const encoders = await run(tools.ffmpeg, ['-hide_banner', '-encoders'])
    expect(encoders).toMatch(/libx264/)
    expect(encoders).toMatch(/\baac\b/)
    expect(await run(tools.ffmpeg, ['-hide_banner', '-muxers'])).toMatch(/\bhls\b/)
  })

  it('reads versions as ffmpeg prints them', () => {
    expect(parseVersion('ffmpeg version 5.1.6-0+deb12u1 Copyright (c) 2000-2024')).toEqual([5, 1])
    expect(parseVersion('ffmpeg version n4.4.2 Copyright')).toEqual([4, 4])
    expect(parseVersion('ffmpeg version N-47683-g0e8eb07980-static')).toBeUndefined()
    expect(parseRate('30000/1001')).toBeCloseTo(29.97, 2)
    expect(parseRate('0/0')).toBeUndefined()
  })

  it('probes the sample MP4 and WebM: duration, codecs, size, frame rate', async () => {
    const mp4 = await probe(tools, join(MEDIA_DIR, 'sample-30s.mp4'))
    expect(mp4.durationS).toBeGreaterThan(29)
    expect(mp4.durationS).toBeLessThan(31)
    expect(mp4.video).toMatchObject({ codec: 'h264', width: 640, height: 360 })
    expect(mp4.video?.fps).toBeCloseTo(25, 0)
    expect(mp4.audio).toMatchObject({ codec: 'aac' })
    const webm = await probe(tools, join(MEDIA_DIR, 'sample-10s.webm'))
    expect(webm.durationS).toBeGreaterThan(9)
    expect(webm.video?.codec).toMatch(/^vp[89]$/)
  })

  it('a corrupt file and a missing one are a ProbeError with ffprobe\'s reason', async () => {
    const bytes = await readFile(join(MEDIA_DIR, 'sample-30s.mp4'))
    const corrupt = join(dir, 'corrupt.mp4')
    await writeFile(corrupt, Buffer.concat([Buffer.from('not a video at all'), bytes.subarray(bytes.byteLength - 4096)]))
    await expect(probe(tools, corrupt)).rejects.toMatchObject({ name: 'ProbeError', message: expect.stringContaining('corrupt.mp4') })
    await expect(probe(tools, join(dir, 'missing.mp4'))).rejects.toMatchObject({ name: 'ProbeError', message: expect.stringMatching(/No such file/) })
  })
})
