/**
 * An uploaded video gets an HLS ladder made by its group (src/video), on
 * four real nodes in two groups: the jobs run on both members of the
 * source's group at once; every rendition, playlist and segment is a dsm
 * file of that group; ffprobe reads every rendition (resolution, codec,
 * duration) through a node of the other group; the playlists parse
 * (hls-parser) with the attributes players need; renditions cut their
 * segments at the same instants; the poster and storyboard are there; a
 * segment the playlist does not name is refused; a corrupt source is a
 * failed package with ffprobe's reason; deleting the source deletes its
 * package.
 */
import HLS from 'hls-parser'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimCluster } from '../sim/cluster.ts'
import { randomBytes, upload } from '../helpers/data.ts'
import { ffprobe, sample30s } from '../helpers/media.ts'
import type { MasterPlaylist, MediaPlaylist } from 'hls-parser/types.js'
import type { SimCluster } from '../sim/cluster.ts'
import type { PackageStatus } from '../../src/video/package-ops.ts'

/** Check `condition` until it holds (each check is a request: no fixed sleep stands in for it). */
async function until (condition: () => Promise<boolean>, message: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${message}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

describe('HLS ladders made by the cluster', () => {
  let c: SimCluster
  let source = ''
  let home: number[] = []
  let away: number[] = []
  const url = (i: number): string => c.node(i).http?.url ?? ''
  const status = async (i: number, id: string): Promise<PackageStatus> => (await (await fetch(`${url(i)}/api/files/${id}/hls`)).json()) as PackageStatus

  beforeAll(async () => {
    c = await createSimCluster({
      nodes: 4,
      groupSize: 2,
      sequential: true,
      http: true,
      joinSettleMs: 300,
      configure: () => ({ maxRenditions: 2 }),
      video: { scanIntervalMs: 200, claimGraceMs: 3_000 }
    })
    await c.ready()
    const groupOf = (i: number): string | null => c.node(i).status.group
    await c.waitFor(() => new Set([0, 1, 2, 3].map(groupOf)).size === 2 && [0, 1, 2, 3].every(i => c.node(i).status.state === 'ACTIVE'), { message: 'two groups of two ACTIVE' })
    home = [0, 1, 2, 3].filter(i => groupOf(i) === groupOf(0))
    away = [0, 1, 2, 3].filter(i => groupOf(i) !== groupOf(0))
    // Uploaded through a node of the other group, into the first group.
    const res = await upload(url(away[0] ?? 0), await sample30s(), 'sample-30s.mp4', { hls: '1', group: groupOf(0) ?? '' })
    expect(res.status).toBe(201)
    source = res.body.id as string
    expect((res.body.hls as PackageStatus).state).toBe('queued')
    await c.waitFor(() => c.node(home[0] ?? 0).video.records.heldPackage(source)?.record.state === 'ready', { timeoutMs: 40_000, pollMs: 100, message: 'the package is ready' })
  }, 180_000)
  afterAll(async () => { await c?.close() })

  it('runs each rendition as its own job, on both members of the group', async () => {
    const st = await status(away[1] ?? 0, source)
    expect(st.state).toBe('ready')
    expect(st.percent).toBe(100)
    expect(st.tasks.map(t => t.task).sort()).toEqual(['240p', '360p', 'audio', 'preview'])
    expect(st.tasks.every(t => t.state === 'done')).toBe(true)
    const owners = new Set(st.tasks.map(t => t.owner))
    expect(owners.size).toBe(2)
    for (const o of owners) expect(home.map(i => c.peerId(i))).toContain(o)
    // dsm stat's view: the file's status carries its package.
    const stat = await (await fetch(`${url(away[0] ?? 0)}/api/files/${source}`)).json() as { hls?: PackageStatus }
    expect(stat.hls?.master).toBe(`/files/${source}/hls/master.m3u8`)
  })

  it('serves a master playlist players can choose from, through every node', async () => {
    for (const i of [0, 1, 2, 3]) {
      const res = await fetch(`${url(i)}/files/${source}/hls/master.m3u8`)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe('application/vnd.apple.mpegurl')
      expect(res.headers.get('access-control-allow-origin')).toBe('*')
      const master = HLS.parse(await res.text()) as MasterPlaylist
      expect(master.isMasterPlaylist).toBe(true)
      const video = master.variants.filter(v => v.resolution != null)
      expect(video.map(v => v.resolution)).toEqual([{ width: 640, height: 360 }, { width: 426, height: 240 }])
      for (const v of video) {
        expect(v.bandwidth).toBeGreaterThan(v.averageBandwidth ?? Infinity)
        expect(v.codecs).toMatch(/^avc1\.[0-9a-f]{6},mp4a\.40\.2$/)
        expect(v.frameRate).toBe(25)
      }
      const audio = master.variants.filter(v => v.resolution == null)
      expect(audio.map(v => v.codecs)).toEqual(['mp4a.40.2'])
    }
  })

  it('has renditions ffprobe reads, with ~4 s segments cut at the same instants', async () => {
    const base = `${url(away[1] ?? 0)}/files/${source}/hls`
    const expected: Record<string, [number, number] | undefined> = { '360p': [640, 360], '240p': [426, 240], audio: undefined }
    const cuts: number[][] = []
    for (const [name, size] of Object.entries(expected)) {
      const probed = await ffprobe(`${base}/${name}/index.m3u8`)
      const v = probed.streams.find(s => s.codec_type === 'video')
      const a = probed.streams.find(s => s.codec_type === 'audio')
      expect(a?.codec_name).toBe('aac')
      if (size == null) expect(v).toBeUndefined()
      else expect([v?.codec_name, v?.width, v?.height]).toEqual(['h264', ...size])
      expect(Number(probed.format.duration)).toBeCloseTo(30, 0)
      const media = HLS.parse(await (await fetch(`${base}/${name}/index.m3u8`)).text()) as MediaPlaylist
      expect(media.playlistType).toBe('VOD')
      expect(media.endlist).toBe(true)
      const durations = media.segments.map(s => s.duration)
      expect(durations.slice(0, -1).every(d => Math.abs(d - 4) < 0.1)).toBe(true)
      expect(durations.reduce((x, y) => x + y, 0)).toBeCloseTo(30, 0)
      if (size != null) cuts.push(durations)
      // Every segment a dsm file of the source's group, served with a long cache life.
      const seg = await fetch(`${base}/${name}/${media.segments[1]?.uri ?? ''}`)
      expect(seg.status).toBe(200)
      expect(seg.headers.get('cache-control')).toContain('immutable')
      expect(seg.headers.get('x-dsm-group')).toBe(c.node(home[0] ?? 0).status.group)
    }
    expect(cuts[0]).toEqual(cuts[1])
  })

  it('serves the poster and the storyboard', async () => {
    const poster = await fetch(`${url(away[0] ?? 0)}/files/${source}/poster.jpg`)
    expect(poster.status).toBe(200)
    expect(poster.headers.get('content-type')).toBe('image/jpeg')
    const vtt = await (await fetch(`${url(away[0] ?? 0)}/files/${source}/storyboard.vtt`)).text()
    const cues = vtt.split('\n').filter(l => l.startsWith('storyboard.jpg#xywh='))
    expect(cues.length).toBe(15)
    expect(cues[11]).toBe('storyboard.jpg#xywh=160,90,160,90')
    const sprite = await ffprobe(`${url(away[0] ?? 0)}/files/${source}/storyboard.jpg`)
    expect([sprite.streams[0]?.width, sprite.streams[0]?.height]).toEqual([1600, 180])
  })

  it('refuses what the package does not name', async () => {
    const other = await upload(url(0), randomBytes(1000, 7), 'other.bin')
    const res = await fetch(`${url(0)}/files/${source}/hls/360p/${other.body.id as string}.m4s`)
    expect(res.status).toBe(404)
    expect(((await res.json()) as { code: string }).code).toBe('ERR_NO_SUCH_PACKAGE')
    expect((await fetch(`${url(0)}/files/${source}/hls/1080p/index.m3u8`)).status).toBe(404)
    expect((await fetch(`${url(0)}/files/${other.body.id as string}/hls/master.m3u8`)).status).toBe(404)
  })

  it('fails a corrupt source clearly, with ffprobe\'s reason', async () => {
    const res = await upload(url(0), randomBytes(200_000, 3), 'broken.mp4', { hls: '1' })
    const id = res.body.id as string
    const group = res.body.group as string
    const member = [0, 1, 2, 3].find(i => c.node(i).status.group === group) ?? 0
    await c.waitFor(() => c.node(member).video.records.heldPackage(id)?.record.state === 'failed', { timeoutMs: 60_000, pollMs: 100, message: 'the corrupt source fails' })
    const st = await status(0, id)
    expect(st.state).toBe('failed')
    expect(st.error).toMatch(/ffprobe could not read|Invalid data/)
    const master = await fetch(`${url(0)}/files/${id}/hls/master.m3u8`)
    expect(master.status).toBe(404)
    expect(((await master.json()) as { message: string }).message).toMatch(/failed/)
  })

  it('deletes the package with its source', async () => {
    const master = HLS.parse(await (await fetch(`${url(0)}/files/${source}/hls/master.m3u8`)).text()) as MasterPlaylist
    expect(master.variants.length).toBe(3)
    const media = HLS.parse(await (await fetch(`${url(0)}/files/${source}/hls/360p/index.m3u8`)).text()) as MediaPlaylist
    const segment = media.segments[0]?.uri.replace(/\.m4s$/, '') ?? ''
    expect((await fetch(`${url(0)}/files/${segment}`)).status).toBe(200)
    const del = await fetch(`${url(away[0] ?? 0)}/files/${source}`, { method: 'DELETE' })
    expect(del.status).toBe(200)
    // Every node stops serving it (within its package cache's life, PACKAGE_CACHE_MS); the group's members remove its files.
    for (const i of [0, 1, 2, 3]) await until(async () => (await fetch(`${url(i)}/files/${source}/hls/master.m3u8`)).status === 404, `node ${i} stops serving the package`)
    await until(async () => (await fetch(`${url(0)}/files/${segment}`)).status === 404, 'the segment file is deleted')
    await c.waitFor(() => home.every(i => c.node(i).video.records.heldPackage(source) == null), { message: 'the package record is gone' })
    expect((await fetch(`${url(0)}/api/files/${source}/hls`)).status).toBe(404)
  })
})
