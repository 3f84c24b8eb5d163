/**
 * A package follows its source's download rules, on two real nodes run with
 * --signed-urls and --auto-hls: a video uploaded without ?hls=1 gets its
 * ladder; its playlists, segments, poster and storyboard are refused
 * without a signature, served with the source's signature (which every URI
 * of a served playlist then carries), and refused with another file's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimCluster } from '../sim/cluster.ts'
import { randomBytes } from '../helpers/data.ts'
import { sample30s } from '../helpers/media.ts'
import { playlistUris } from '../../src/media/playlist.ts'
import type { SimCluster } from '../sim/cluster.ts'
import type { PackageStatus } from '../../src/video/package-ops.ts'

const TOKEN = 'hls-signed-test-token-0123456789'
const auth = { authorization: `Bearer ${TOKEN}` }

describe('signed URLs cover a video package', () => {
  let c: SimCluster
  let id = ''
  const url = (i: number): string => c.node(i).http?.url ?? ''
  const sign = async (file: string): Promise<string> => {
    const res = await fetch(`${url(0)}/api/sign`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ id: file }) })
    return new URL(((await res.json()) as { path: string }).path, url(0)).search
  }
  const upload = async (body: Uint8Array<ArrayBuffer>, name: string): Promise<Record<string, unknown>> => {
    const res = await fetch(`${url(0)}/files?name=${name}`, { method: 'POST', body, headers: { ...auth, 'content-type': 'video/mp4' } })
    expect(res.status).toBe(201)
    return await res.json() as Record<string, unknown>
  }

  beforeAll(async () => {
    c = await createSimCluster({
      nodes: 2,
      groupSize: 2,
      http: true,
      configure: (i) => ({ open: false, token: TOKEN, signedUrls: true, maxRenditions: 1, autoHls: i === 0 }),
      video: { scanIntervalMs: 200 }
    })
    await c.ready()
    const body = await upload(await sample30s(), 'auto.mp4')
    id = body.id as string
    expect((body.hls as PackageStatus | undefined)?.state).toBe('queued')
    await c.waitFor(() => c.node(0).video.records.heldPackage(id)?.record.state === 'ready', { timeoutMs: 120_000, pollMs: 100, message: 'the package is ready' })
  }, 180_000)
  afterAll(async () => { await c?.close() })

  it('refuses the package unsigned, serves it signed for the source, refuses another file\'s signature', async () => {
    const base = `${url(1)}/files/${id}`
    for (const path of ['/hls/master.m3u8', '/hls/360p/index.m3u8', '/poster.jpg', '/storyboard.vtt']) {
      const res = await fetch(`${base}${path}`)
      expect(res.status, path).toBe(403)
      expect(((await res.json()) as { code: string }).code).toBe('ERR_BAD_SIGNATURE')
    }
    const query = await sign(id)
    const master = await fetch(`${base}/hls/master.m3u8${query}`)
    expect(master.status).toBe(200)
    const variants = playlistUris(await master.text())
    expect(variants.length).toBeGreaterThan(0)
    for (const v of variants) expect(v.endsWith(query.replace(/^\?/, '?'))).toBe(true)
    // Every URI a served playlist names is signed, and opens.
    const media = await (await fetch(`${base}/hls/${variants[0] ?? ''}`)).text()
    const segments = playlistUris(media)
    expect(segments.length).toBeGreaterThan(2)
    for (const s of segments.slice(0, 3)) expect((await fetch(`${base}/hls/360p/${s}`)).status).toBe(200)
    expect((await fetch(`${base}/poster.jpg${query}`)).status).toBe(200)
    // A signature for another file opens nothing of this package.
    const other = (await upload(randomBytes(2000, 5), 'other.bin')).id as string
    const wrong = await sign(other)
    expect((await fetch(`${base}/hls/master.m3u8${wrong}`)).status).toBe(403)
    expect((await fetch(`${base}/hls/360p/${(segments[1] ?? '').split('?')[0] ?? ''}${wrong}`)).status).toBe(403)
    // The token opens it too (an operator's tools).
    expect((await fetch(`${base}/hls/master.m3u8`, { headers: auth })).status).toBe(200)
  })
})
