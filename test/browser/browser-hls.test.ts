/**
 * The web page plays a video's HLS ladder with hls.js in headless Chromium:
 * it uploads sample-30s.mp4 with the HLS box ticked, the cluster makes the
 * ladder (360p, 240p, audio), and the page plays it with the poster set;
 * when the network is throttled below the top rendition's bandwidth, hls.js
 * switches down; the viewer can pin a rendition; a seek to 20 s keeps
 * playing without a media error. A rendition pinned while the first
 * rendition's opening segments are still loading plays.
 */
import { skipUnless } from '../helpers/skip.ts'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MEDIA_DIR, chromiumUnavailable, launchChromium, mediaUnavailable } from '../sim/browser.ts'
import { createSimCluster } from '../sim/cluster.ts'
import type { SimCluster } from '../sim/cluster.ts'
import type { Browser, Route } from 'playwright-core'

const skip = skipUnless('browser tests', chromiumUnavailable() ?? mediaUnavailable()) ? 'skipped' : undefined

interface PlayerState { level: string, levels: string[], switches: Array<{ level: string }>, hls: boolean, poster: string, time: number, error: number | null, buffered: number }

describe.skipIf(skip != null)('HLS on the web page, in headless Chromium', () => {
  let c: SimCluster
  let browser: Browser
  beforeAll(async () => {
    c = await createSimCluster({ nodes: 3, http: true, configure: () => ({ maxRenditions: 2 }), video: { scanIntervalMs: 200, claimGraceMs: 3_000 } })
    await c.ready()
    browser = await launchChromium()
  }, 120_000)
  afterAll(async () => {
    await browser?.close()
    await c?.close()
  })

  it('plays the ladder, switches down when throttled, pins a rendition and seeks to 20 s', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const errors: string[] = []
    page.on('pageerror', (err) => { errors.push(err.message) })
    await page.goto(c.node(2).http?.url ?? '')
    expect(await page.locator('#hls-check').isChecked()).toBe(true)
    await page.locator('#file-input').setInputFiles(join(MEDIA_DIR, 'sample-30s.mp4'))
    await page.locator('.uploads li .up-status', { hasText: 'HLS ladder queued' }).waitFor({ timeout: 30_000 })
    // The file list follows the package until it is ready.
    const row = page.locator('#files-body tr', { hasText: 'sample-30s.mp4' })
    await row.locator('.badge.ready').waitFor({ timeout: 120_000 })
    const state = async (): Promise<PlayerState> => page.evaluate(() => {
      const p = (window as unknown as { dsmPlayer: { levelName: string, levels: Array<{ name: string }>, switches: Array<{ level: string }>, hls: unknown } }).dsmPlayer
      const v = document.querySelector('video') as HTMLVideoElement
      return { level: p.levelName, levels: p.levels.map(l => l.name), switches: p.switches, hls: p.hls != null, poster: v.poster, time: v.currentTime, error: v.error?.code ?? null, buffered: v.buffered.length > 0 ? v.buffered.end(v.buffered.length - 1) : 0 }
    })
    await page.evaluate(() => { (document.querySelector('video') as HTMLVideoElement).muted = true })
    // (The page started the upload playing as it was uploaded; Play now takes the ladder.)
    await row.locator('button.play').click()
    await page.waitForFunction(() => (window as unknown as { dsmPlayer: { levels: unknown[] } }).dsmPlayer.levels.length > 0, undefined, { timeout: 30_000 })
    await page.waitForFunction(() => (document.querySelector('video') as HTMLVideoElement).currentTime > 1, undefined, { timeout: 30_000 })
    let s = await state()
    expect(s.hls).toBe(true)
    expect([...s.levels].sort()).toEqual(['240p', '360p'])
    expect(s.poster).toMatch(/\/poster\.jpg$/)
    expect(await page.locator('#rendition').textContent()).toBe(s.level)

    // Fast link: the top rendition; then throttled below it (about 360p's bandwidth / 3): hls.js switches down.
    await page.waitForFunction(() => (window as unknown as { dsmPlayer: { levelName: string } }).dsmPlayer.levelName === '360p', undefined, { timeout: 30_000 })
    const cdp = await page.context().newCDPSession(page)
    await cdp.send('Network.enable')
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 40, downloadThroughput: 30_000, uploadThroughput: 1_000_000 })
    await page.waitForFunction(() => (window as unknown as { dsmPlayer: { levelName: string } }).dsmPlayer.levelName === '240p', undefined, { timeout: 60_000 }).catch(async (e: unknown) => { throw new Error(`no switch down: ${JSON.stringify(await state())} (${String(e)})`) })
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 })

    // Pinned by the viewer: it stays there whatever the link does.
    await page.locator('#rendition-select').selectOption({ label: '360p' })
    await page.waitForFunction(() => (window as unknown as { dsmPlayer: { levelName: string } }).dsmPlayer.levelName === '360p', undefined, { timeout: 30_000 })
    await page.locator('#rendition-select').selectOption({ label: 'Auto' })

    await page.evaluate(() => { (document.querySelector('video') as HTMLVideoElement).currentTime = 20 })
    await page.waitForFunction(() => {
      const v = document.querySelector('video') as HTMLVideoElement
      return !v.seeking && v.currentTime > 21
    }, undefined, { timeout: 30_000 })
    s = await state()
    expect(s.error).toBeNull()
    expect(s.switches.map(x => x.level)).toEqual(expect.arrayContaining(['360p', '240p']))
    // The storyboard is loaded for the scrub bar's previews.
    expect(await page.evaluate(() => (window as unknown as { dsmPlayer: { cues: unknown[] } }).dsmPlayer.cues.length)).toBe(15)
    expect(errors).toEqual([])
  }, 240_000)

  it('a rendition pinned while the first rendition\'s init segment is still loading plays', async () => {
    // hls.js 1.7.4 answers an aborted init segment load by aborting whatever its fragment loader loads by then —
    // after a switch before the first frame, the new rendition's first segment — and then waits for that for
    // ever. The 240p requests are held until the pin, so the switch always comes while they load.
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (err) => { errors.push(err.message) })
    const held: Route[] = []
    await page.route('**/hls/240p/*', async (route) => {
      if (route.request().url().endsWith('.m3u8')) await route.continue()
      else held.push(route)
    })
    try {
      await page.goto(c.node(1).http?.url ?? '')
      const row = page.locator('#files-body tr', { hasText: 'sample-30s.mp4' })
      await row.locator('.badge.ready').waitFor({ timeout: 30_000 })
      await page.evaluate(() => { (document.querySelector('video') as HTMLVideoElement).muted = true })
      await row.locator('button.play').click()
      // 240p (the start rendition): its init segment and first segment asked for, and held.
      await expect.poll(() => held.length, { timeout: 30_000 }).toBeGreaterThanOrEqual(2)
      await page.locator('#rendition-select').selectOption({ label: '360p' })
      await page.waitForFunction(() => (document.querySelector('video') as HTMLVideoElement).currentTime > 1, undefined, { timeout: 30_000 }).catch(async (e: unknown) => {
        const hls = await page.evaluate(() => {
          const p = (window as unknown as { dsmPlayer: { hls?: { streamController?: { state?: string }, loadLevel: number } } }).dsmPlayer
          return { state: p.hls?.streamController?.state, loadLevel: p.hls?.loadLevel, readyState: (document.querySelector('video') as HTMLVideoElement).readyState }
        })
        throw new Error(`not playing after the pin: ${JSON.stringify(hls)} (${String(e)})`)
      })
      expect(await page.evaluate(() => (window as unknown as { dsmPlayer: { levelName: string } }).dsmPlayer.levelName)).toBe('360p')
      expect(errors).toEqual([])
    } finally {
      await Promise.all(held.map(async r => r.abort().catch(() => {})))
      await page.close()
    }
  }, 90_000)
})
