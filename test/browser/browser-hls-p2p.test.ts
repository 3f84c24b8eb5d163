/**
 * Two tabs in P2P mode share a video's HLS segments (each segment is a dsm
 * file: the tabs' engines fetch, verify and serve it like any file), on a
 * cluster of three `bin/dsm node` processes (TCP + WebSockets) in headless
 * Chromium. The first tab takes its segments from storage and offers them;
 * the second takes them from the first, verified, and reports its share per
 * rendition; neither has a media error. A hung segment response is a
 * timeout, retried. A tab whose own rendition choice stays low takes a
 * higher rendition that a connected tab holds.
 */
import { skipUnless } from '../helpers/skip.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromiumUnavailable, launchChromium, mediaUnavailable } from '../sim/browser.ts'
import { dsm, eventually, startProcNode } from '../sim/proc.ts'
import { SAMPLE_30S } from '../helpers/media.ts'
import type { ProcNode } from '../sim/proc.ts'
import type { Browser, Page, Route } from 'playwright-core'
import type { PackageStatus } from '../../src/video/package-ops.ts'

const skip = skipUnless('browser P2P tests', chromiumUnavailable() ?? mediaUnavailable()) ? 'skipped' : undefined

type Share = Record<string, { peers: number, storage: number }>
interface TabStats { fromPeers: number, fromStorage: number, servedToPeers: number, rejected: number }

describe.skipIf(skip != null)('HLS segments shared between tabs (P2P mode)', () => {
  let root: string
  let nodes: ProcNode[] = []
  let browser: Browser
  let id = ''
  const errors: string[] = []

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-hls-p2p-'))
    const args = ['--listen', '/ip4/127.0.0.1/tcp/0/ws']
    const env = { DSM_LOG_LEVEL: 'warn', DSM_MAX_RENDITIONS: '2' }
    const n1 = await startProcNode({ dataDir: join(root, 'n1'), args, env })
    nodes = [n1, ...await Promise.all(['n2', 'n3'].map(async n => startProcNode({ dataDir: join(root, n), args, env, bootstrap: [n1.addr] })))]
    await eventually(async () => JSON.parse((await dsm(['groups', '--json', '--node', n1.url])).stdout) as Array<{ members: Array<{ state: string }> }>,
      g => g[0]?.members.length === 3 && g[0].members.every(m => m.state === 'ACTIVE'), 30_000, 'cluster ready')
    const up = await dsm(['upload', SAMPLE_30S, '--hls', '--node', n1.url])
    id = up.stdout.trim()
    await eventually(async () => (await (await fetch(`${n1.url}/api/files/${id}/hls`)).json()) as PackageStatus, p => p.state === 'ready', 120_000, 'the ladder ready')
    browser = await launchChromium()
  }, 240_000)

  afterAll(async () => {
    await browser?.close()
    await Promise.all(nodes.map(async n => n.stop()))
    await rm(root, { recursive: true, force: true })
  })

  /** A P2P tab playing the video in `rendition`; `linkedFor`: first linked to another tab holding that file; `beforePlay`: run just before "play". */
  async function tab (node: ProcNode, rendition = '360p', before?: (page: Page) => Promise<void>, linkedFor?: string, beforePlay?: (page: Page) => Promise<void>): Promise<Page> {
    const page = await (await browser.newContext()).newPage()
    await before?.(page)
    page.on('pageerror', (err) => { errors.push(err.stack ?? err.message) })
    await page.goto(`${node.url}/?p2p=1`)
    await page.waitForFunction(() => window.dsmP2P != null, undefined, { timeout: 30_000 })
    if (linkedFor != null) {
      await page.evaluate(async (id) => { await window.dsmP2P?.prepare(id) }, linkedFor)
      await page.waitForFunction(() => (window.dsmP2P?.stats.peerConnections ?? 0) > 0, undefined, { timeout: 60_000 })
    }
    await page.evaluate(() => { (document.querySelector('video') as HTMLVideoElement).muted = true })
    await page.locator('#files-body tr', { hasText: 'sample-30s.mp4' }).locator('.badge.ready').waitFor({ timeout: 30_000 })
    await beforePlay?.(page)
    await page.locator('#files-body tr', { hasText: 'sample-30s.mp4' }).locator('button.play').click()
    await page.waitForFunction(() => (window as unknown as { dsmPlayer: { levels: unknown[] } }).dsmPlayer.levels.length > 0, undefined, { timeout: 30_000 })
    // One rendition for both tabs: what one tab holds is what the other wants.
    await page.locator('#rendition-select').selectOption({ label: rendition })
    return page
  }
  const share = async (page: Page): Promise<Share> => page.evaluate(() => JSON.parse(JSON.stringify((window as unknown as { dsmHlsShare: Share }).dsmHlsShare)) as Share)
  const stats = async (page: Page): Promise<TabStats> => page.evaluate(() => JSON.parse(JSON.stringify(window.dsmP2P?.stats)) as TabStats)
  const playedPast = async (page: Page, t: number): Promise<void> => {
    await page.waitForFunction((t) => (document.querySelector('video') as HTMLVideoElement).currentTime > t, t, { timeout: 60_000 }).catch(async (err: unknown) => {
      const seen = await page.evaluate(() => {
        const v = document.querySelector('video') as HTMLVideoElement
        const p = (window as unknown as { dsmPlayer: { levelName: string, switches: unknown[] } }).dsmPlayer
        const trace = (window as unknown as { dsmHlsTrace: Array<{ from: string }> }).dsmHlsTrace.filter(t => t.from !== 'loading').slice(-12)
        // hls.js's own state, and every segment request the page made (ms from navigation; -1: no response yet).
        const hls = (p as unknown as { hls?: { streamController?: { state?: string }, loadLevel: number, currentLevel: number } }).hls
        const requests = (performance.getEntriesByType('resource') as PerformanceResourceTiming[]).filter(r => r.name.includes('/hls/'))
          .map(r => `${r.name.replace(/^.*\/hls\//, '').slice(0, 24)} ${Math.round(r.startTime)}→${r.responseEnd > 0 ? Math.round(r.responseEnd) : -1} ${r.transferSize}B`)
        const hlsState = { state: hls?.streamController?.state, loadLevel: hls?.loadLevel, currentLevel: hls?.currentLevel, readyState: v.readyState, now: Math.round(performance.now()) }
        return { time: v.currentTime, paused: v.paused, error: v.error?.code, level: p.levelName, switches: p.switches, buffered: v.buffered.length > 0 ? v.buffered.end(v.buffered.length - 1) : 0, share: (window as unknown as { dsmHlsShare: unknown }).dsmHlsShare, trace, hlsState, requests }
      })
      throw new Error(`not played past ${t} s: ${JSON.stringify(seen)} (${String(err)})`)
    })
  }

  /** The file id of the last segment of `rendition` (a tab that played the video holds it). */
  async function heldSegment (rendition: string): Promise<string> {
    const playlist = await (await fetch(`${nodes[1]?.url ?? ''}/files/${id}/hls/${rendition}/index.m3u8`)).text()
    const last = playlist.split('\n').filter(l => l.endsWith('.m4s')).at(-1) ?? ''
    const held = /([a-z0-9]+)\.m4s$/.exec(last)?.[1] ?? ''
    expect(held).not.toBe('')
    return held
  }

  it('the second tab takes its segments from the first, verified', async () => {
    const first = await tab(nodes[0] as ProcNode)
    // The whole video played: every 360p segment is in its cache and announced.
    await first.evaluate(() => { (document.querySelector('video') as HTMLVideoElement).playbackRate = 4 })
    await playedPast(first, 29)
    const a = await share(first)
    expect(a['360p']?.storage ?? 0).toBeGreaterThan(2_000_000)

    // The second tab plays once it is linked to the first (it looks up the swarm of a segment the first
    // holds): at 4× the whole video is asked for within seconds, and a segment needed before a link
    // exists rightly comes from storage — a WebRTC link can take seconds on a busy machine.
    const second = await tab(nodes[1] as ProcNode, '360p', undefined, await heldSegment('360p'))
    await second.evaluate(() => { (document.querySelector('video') as HTMLVideoElement).playbackRate = 4 })
    await playedPast(second, 29)
    const b = await share(second)
    const got = b['360p'] ?? { peers: 0, storage: 0 }
    // Most of it from the first tab: only what was needed before the swarm was known came from storage.
    // (On failure, where each of its segments came from and why.)
    const trace = async (page: Page): Promise<unknown[]> => page.evaluate(() => (window as unknown as { dsmHlsTrace: unknown[] }).dsmHlsTrace.filter(t => (t as { from: string }).from !== 'loading'))
    expect(got.peers / (got.peers + got.storage), JSON.stringify({ second: await trace(second), stats: await stats(second) })).toBeGreaterThan(0.5)
    expect((await stats(first)).servedToPeers).toBeGreaterThanOrEqual(got.peers)
    expect((await stats(second)).rejected).toBe(0)
    for (const page of [first, second]) expect(await page.evaluate(() => (document.querySelector('video') as HTMLVideoElement).error)).toBeNull()
    // The page says it, per rendition.
    expect(await second.locator('#hls-share').textContent()).toMatch(/from other tabs: .*360p \d+ %/)
    // hls.js's bandwidth estimate comes from these loads (segments on one host: far above its 0.5 Mbit/s
    // default). It used to read a stats object the loader never filled, and stayed at the bottom.
    expect(await second.evaluate(() => (window as unknown as { dsmPlayer: { hls: { bandwidthEstimate: number } } }).dsmPlayer.hls.bandwidthEstimate)).toBeGreaterThan(5_000_000)
    expect(errors).toEqual([])
  }, 180_000)

  it('a segment whose response never starts is a timeout, retried: playback goes on', async () => {
    // 240p after its first segments is held by no tab: over HTTP. The first request for the fifth one hangs.
    const hits = new Map<string, number>()
    let held: Route | undefined
    const third = await tab(nodes[2] as ProcNode, '240p', async (page) => {
      await page.route('**/hls/240p/*.m4s', async (route) => {
        const url = route.request().url()
        hits.set(url, (hits.get(url) ?? 0) + 1)
        if (held == null && hits.size === 5) held = route
        else await route.continue()
      })
    })
    try {
      await third.evaluate(() => { (document.querySelector('video') as HTMLVideoElement).playbackRate = 4 })
      await playedPast(third, 29)
      // The hung segment was asked for again (hls.js retries a timeout) and came.
      expect(held).toBeDefined()
      const hung = /([a-z0-9]+)\.m4s$/.exec(held?.request().url() ?? '')?.[1] ?? ''
      const loads = (await third.evaluate(() => (window as unknown as { dsmHlsTrace: Array<{ id: string, from: string }> }).dsmHlsTrace)).filter(t => t.id === hung)
      // (Whichever way each attempt went: through the engine's wait for other tabs, or straight to storage by hls.js's loader.)
      expect(hits.get(held?.request().url() ?? '') ?? 0, JSON.stringify({ hits: [...hits], loads })).toBeGreaterThanOrEqual(2)
      expect(loads.at(-1)?.from).toMatch(/^(storage|peers)$/)
      expect(await third.evaluate(() => (document.querySelector('video') as HTMLVideoElement).error)).toBeNull()
    } finally {
      await held?.abort().catch(() => {})
    }
    expect(errors).toEqual([])
  }, 120_000)

  it('a tab whose bandwidth estimate holds it on 240p takes 360p from the tabs that hold it', async () => {
    // The first two tabs hold every 360p segment. This one plays on Auto with hls.js's own choice held
    // on 240p — as when its estimate of the link to storage stays low, which a busy machine did in a
    // bench run — while a level set from outside (hls.nextAutoLevel) still holds for its one segment.
    // So 360p can only come from the choice that knows what other tabs hold.
    const fourth = await tab(nodes[2] as ProcNode, 'Auto', undefined, await heldSegment('360p'), async (page) => {
      // (A string: the test runner would rewrite a dynamic import in a function.)
      await page.evaluate(`(async () => {
        const Hls = (await import('/ui/hls.min.mjs')).default
        Hls.DefaultConfig.abrController = class extends Hls.DefaultConfig.abrController {
          get nextAutoLevel () { const level = super.nextAutoLevel; return this.forcedAutoLevel !== -1 ? level : 0 }
          set nextAutoLevel (level) { super.nextAutoLevel = level }
        }
      })()`)
    })
    await fourth.evaluate(() => { (document.querySelector('video') as HTMLVideoElement).playbackRate = 2 })
    await playedPast(fourth, 29)
    const got = await share(fourth)
    const trace = await fourth.evaluate(() => (window as unknown as { dsmHlsTrace: Array<{ from: string, rendition: string, sn: number }> }).dsmHlsTrace.filter(t => t.from !== 'loading'))
    const detail = JSON.stringify({ got, trace })
    // It went up for a 360p segment a connected tab held, and took 360p media segments (not only the init
    // segment) from the tabs. How many depends on when the link to them formed: under a loaded CI host it
    // formed 14 s in and one segment came that way (350 KB; a byte count of 500 KB failed there).
    expect(trace.some(t => t.from === 'switch'), detail).toBe(true)
    expect(trace.some(t => t.rendition === '360p' && t.sn >= 0 && t.from === 'peers'), detail).toBe(true)
    expect(got['360p']?.peers ?? 0, detail).toBeGreaterThan(100_000)
    expect(await fourth.evaluate(() => (document.querySelector('video') as HTMLVideoElement).error)).toBeNull()
    expect(errors).toEqual([])
  }, 150_000)
})
