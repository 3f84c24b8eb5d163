import { skipUnless } from '../helpers/skip.ts'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MEDIA_DIR, chromiumUnavailable, launchChromium, mediaUnavailable } from '../sim/browser.ts'
import { createSimCluster } from '../sim/cluster.ts'
import type { SimCluster } from '../sim/cluster.ts'
import type { Browser } from 'playwright-core'

const TOKEN = 'browser-test-token-0123456789'
const SCREENSHOTS = join(import.meta.dirname, '..', '..', 'test-results')
const skip = skipUnless('browser tests', chromiumUnavailable() ?? mediaUnavailable()) ? 'skipped' : undefined

describe.skipIf(skip != null)('the web page in headless Chromium', () => {
  let c: SimCluster
  let browser: Browser
  beforeAll(async () => {
    // A closed cluster: the page gets the token once through its URL fragment, as `npm start` prints it.
    c = await createSimCluster({ nodes: 3, http: true, configure: () => ({ open: false, token: TOKEN }) })
    await c.ready()
    browser = await launchChromium()
  }, 120_000)
  afterAll(async () => {
    await browser?.close()
    await c?.close()
  })

  it('uploads sample-30s.mp4 with progress, plays it, seeks to 20 s and keeps playing without a media error', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const errors: string[] = []
    page.on('pageerror', (err) => { errors.push(err.message) })
    await page.goto(`${c.node(1).http?.url ?? ''}/#token=${TOKEN}`)
    expect(await page.evaluate(() => location.hash), 'the page takes the token out of its address').toBe('')
    await page.locator('#file-input').setInputFiles(join(MEDIA_DIR, 'sample-30s.mp4'))
    await page.locator('.uploads li .up-status', { hasText: 'stored on 3 replicas' }).waitFor({ timeout: 30_000 })
    expect(await page.locator('.uploads progress').evaluate((p: HTMLProgressElement) => p.value)).toBe(1)
    // The file list shows it, and the page started playing it.
    await page.locator('#files-body tr', { hasText: 'sample-30s.mp4' }).waitFor()
    await page.evaluate(() => {
      const v = document.querySelector('video') as HTMLVideoElement & { mediaErrors?: number }
      v.mediaErrors = 0
      v.addEventListener('error', () => { v.mediaErrors = (v.mediaErrors ?? 0) + 1 })
      v.muted = true
      void v.play()
    })
    await page.waitForFunction(() => (document.querySelector('video') as HTMLVideoElement).currentTime > 1, undefined, { timeout: 20_000 })
    await page.evaluate(() => { (document.querySelector('video') as HTMLVideoElement).currentTime = 20 })
    await page.waitForFunction(() => {
      const v = document.querySelector('video') as HTMLVideoElement
      return !v.seeking && v.currentTime > 21
    }, undefined, { timeout: 20_000 })
    const video = await page.evaluate(() => {
      const v = document.querySelector('video') as HTMLVideoElement & { mediaErrors?: number }
      return { time: v.currentTime, duration: v.duration, error: v.error?.code ?? null, mediaErrors: v.mediaErrors, paused: v.paused }
    })
    expect(video.error).toBeNull()
    expect(video.mediaErrors).toBe(0)
    expect(video.duration).toBeGreaterThan(29)
    expect(video.time).toBeGreaterThan(21)
    // The cluster panel shows the group, live.
    await page.locator('.group', { hasText: 'g1' }).locator('.badge', { hasText: 'healthy 3/3' }).waitFor()
    mkdirSync(SCREENSHOTS, { recursive: true })
    await page.screenshot({ path: join(SCREENSHOTS, 'player.png'), fullPage: true })
    expect(errors).toEqual([])
  })
})
