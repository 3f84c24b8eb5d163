/**
 * Browser nodes in headless Chromium against a 3-node cluster of `bin/dsm node`
 * processes (TCP + WebSockets): playback through the P2P engine and the
 * service worker, tab-to-tab delivery over WebRTC, failover when a storage
 * node dies, and a lying peer caught by verification.
 */
import { skipUnless } from '../helpers/skip.ts'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { MEDIA_DIR, chromiumUnavailable, launchChromium, mediaUnavailable } from '../sim/browser.ts'
import { dsm, eventually, startProcNode } from '../sim/proc.ts'
import type { ProcNode } from '../sim/proc.ts'
import type { Browser, Page } from 'playwright-core'

const skip = skipUnless('browser P2P tests', chromiumUnavailable() ?? mediaUnavailable()) ? 'skipped' : undefined

const SAMPLE = join(MEDIA_DIR, 'sample-30s.mp4')
const sampleSha = (): string => createHash('sha256').update(readFileSync(SAMPLE)).digest('hex')

interface Stats { fromStorage: number, fromPeers: number, servedToPeers: number, rejected: number, peerConnections: number, bySource: Record<string, number> }

async function cluster (root: string, env: Record<string, string> = {}): Promise<ProcNode[]> {
  const args = ['--listen', '/ip4/127.0.0.1/tcp/0/ws']
  const e = { DSM_LOG_LEVEL: 'warn', ...env }
  const n1 = await startProcNode({ dataDir: join(root, 'n1'), args, env: e })
  const rest = await Promise.all(['n2', 'n3'].map(async n => startProcNode({ dataDir: join(root, n), args, env: e, bootstrap: [n1.addr] })))
  const nodes = [n1, ...rest]
  await eventually(async () => JSON.parse((await dsm(['groups', '--json', '--node', n1.url])).stdout) as Array<{ members: Array<{ state: string }> }>,
    g => g[0]?.members.length === 3 && g[0].members.every(m => m.state === 'ACTIVE'), 30_000, 'cluster ready')
  return nodes
}

async function p2pPage (browser: Browser, url: string, query = ''): Promise<Page> {
  const page = await (await browser.newContext()).newPage()
  await page.goto(`${url}/?p2p=1${query}`)
  await page.waitForFunction(() => window.dsmP2P != null, undefined, { timeout: 30_000 })
  await page.evaluate(() => {
    const v = document.querySelector('video') as HTMLVideoElement & { mediaErrors?: number }
    v.mediaErrors = 0
    v.muted = true
    v.addEventListener('error', () => { v.mediaErrors = (v.mediaErrors ?? 0) + 1 })
  })
  return page
}

async function play (page: Page, name: string, pastSeconds: number): Promise<void> {
  await page.locator('#files-body tr', { hasText: name }).locator('button.play').click()
  await page.waitForFunction((t) => (document.querySelector('video') as HTMLVideoElement).currentTime > t, pastSeconds, { timeout: 30_000 })
}

async function seek (page: Page, to: number): Promise<void> {
  await page.evaluate((t) => { (document.querySelector('video') as HTMLVideoElement).currentTime = t }, to)
  await page.waitForFunction((t) => {
    const v = document.querySelector('video') as HTMLVideoElement
    return !v.seeking && v.currentTime > t + 1
  }, to, { timeout: 30_000 })
}

/**
 * Join the file's swarm and wait until this tab is connected to another tab that the tracker
 * says holds every chunk — only then do its reads have a peer to choose.
 */
async function joinSwarm (page: Page, id: string): Promise<void> {
  await page.evaluate(async (id) => { await window.dsmP2P?.manifest(id) }, id)
  // (Polled from here: waitForFunction takes a promise for a truthy answer.)
  await eventually(async () => page.evaluate(async (id) => {
    const engine = window.dsmP2P
    if (engine == null) return false
    const total = (await engine.manifest(id)).chunks.length
    return (await engine.swarmPeers(id)).some(p => p.connected && p.chunks === total)
  }, id), ready => ready, 30_000, 'connected to a tab that holds the whole file')
}

const stats = async (page: Page): Promise<Stats> => page.evaluate(() => JSON.parse(JSON.stringify(window.dsmP2P?.stats)) as Stats)

/** The sha256 of the whole file as this tab's engine reads it (every chunk verified on the way). */
async function shaThroughEngine (page: Page, id: string): Promise<string> {
  return page.evaluate(async (id) => {
    const engine = window.dsmP2P
    if (engine == null) throw new Error('no engine')
    const parts: Uint8Array[] = []
    for await (const p of engine.read(id, 0, (await engine.manifest(id)).size)) parts.push(p)
    const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
    let at = 0
    for (const p of parts) { all.set(p, at); at += p.byteLength }
    return [...new Uint8Array(await crypto.subtle.digest('SHA-256', all))].map(b => b.toString(16).padStart(2, '0')).join('')
  }, id)
}

async function playerState (page: Page): Promise<{ src: string, error: number | null, mediaErrors: number }> {
  return page.evaluate(() => {
    const v = document.querySelector('video') as HTMLVideoElement & { mediaErrors?: number }
    return { src: v.src, error: v.error?.code ?? null, mediaErrors: v.mediaErrors ?? -1 }
  })
}

describe.skipIf(skip != null)('browser nodes', () => {
  let root: string
  let nodes: ProcNode[] = []
  let browser: Browser
  let id = ''

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-p2p-'))
    nodes = await cluster(join(root, 'a'))
    id = (await dsm(['upload', SAMPLE, '--node', nodes[0]?.url ?? ''])).stdout.trim()
    browser = await launchChromium()
  }, 120_000)

  // Tabs of a test that failed halfway must not stay in the swarm: the next test counts where its bytes came from.
  afterEach(async () => {
    await Promise.all(browser?.contexts().map(async c => c.close()) ?? [])
  })

  afterAll(async () => {
    await browser?.close()
    await Promise.all(nodes.map(async n => n.stop()))
    await rm(root, { recursive: true, force: true })
  })

  it('a browser node plays a video stored on the cluster through P2P, and seeks', async () => {
    const page = await p2pPage(browser, nodes[1]?.url ?? '')
    await play(page, 'sample-30s.mp4', 1)
    await seek(page, 20)
    expect(await playerState(page)).toEqual({ src: expect.stringContaining(`/p2p/${id}`), error: null, mediaErrors: 0 })
    const s = await stats(page)
    expect(s.fromStorage).toBeGreaterThan(0)
    expect(s.rejected).toBe(0)
    expect(await shaThroughEngine(page, id)).toBe(sampleSha())
    await page.context().close()
  })

  it('two tabs watch the same file: the second gets its bytes from the first over WebRTC, all verified', async () => {
    const first = await p2pPage(browser, nodes[1]?.url ?? '')
    await play(first, 'sample-30s.mp4', 1)
    expect(await shaThroughEngine(first, id)).toBe(sampleSha()) // it now holds every chunk
    const second = await p2pPage(browser, nodes[2]?.url ?? '')
    // Joining the file's swarm connects the tabs (WebRTC, signalled through a storage node's relay).
    await joinSwarm(second, id)
    expect((await stats(second)).peerConnections).toBeGreaterThan(0)
    await play(second, 'sample-30s.mp4', 2)
    await seek(second, 15)
    expect(await playerState(second)).toMatchObject({ error: null, mediaErrors: 0 })
    expect(await shaThroughEngine(second, id)).toBe(sampleSha())
    const got = await stats(second)
    const gave = await stats(first)
    expect(got.rejected).toBe(0)
    // The measured share: every byte of the file came from the first tab, none from storage.
    expect(got.fromPeers).toBe(readFileSync(SAMPLE).byteLength)
    expect(got.fromStorage).toBe(0)
    expect(gave.servedToPeers).toBeGreaterThanOrEqual(got.fromPeers)
    await first.context().close()
    await second.context().close()
  })

  it('a peer that sends corrupted chunks is caught by verification and avoided; playback is unharmed', async () => {
    const liar = await p2pPage(browser, nodes[1]?.url ?? '')
    await play(liar, 'sample-30s.mp4', 1)
    expect(await shaThroughEngine(liar, id)).toBe(sampleSha())
    await liar.evaluate(() => { if (window.dsmP2P != null) window.dsmP2P.corruptServes = true })
    const victim = await p2pPage(browser, nodes[2]?.url ?? '')
    await joinSwarm(victim, id)
    await play(victim, 'sample-30s.mp4', 2)
    const s = await stats(victim)
    expect(s.rejected).toBeGreaterThanOrEqual(1)
    expect(s.fromPeers).toBe(0)
    expect(s.fromStorage).toBe(readFileSync(SAMPLE).byteLength)
    expect(await shaThroughEngine(victim, id)).toBe(sampleSha())
    expect(await playerState(victim)).toMatchObject({ error: null, mediaErrors: 0 })
    await liar.context().close()
    await victim.context().close()
  })

  it('the storage node serving a tab is killed mid-play: playback continues, and reads go to another replica', async () => {
    // A cluster of its own with small chunks (a file of many chunks), and a tab that keeps only
    // 4 of them in memory: after the kill, its reads cannot come from what it already holds.
    const own = await cluster(join(root, 'b'), { DSM_CHUNK_SIZE: '65536' })
    try {
      const fileId = (await dsm(['upload', SAMPLE, '--node', own[0]?.url ?? ''])).stdout.trim()
      const page = await p2pPage(browser, own[1]?.url ?? '', '&cache=262144')
      await play(page, 'sample-30s.mp4', 1)
      const before = await stats(page)
      const [serving] = Object.entries(before.bySource).sort(([, a], [, b]) => b - a)[0] ?? []
      const victim = own.find(n => n.peerId === serving)
      expect(victim).toBeDefined()
      const at = await page.evaluate(() => (document.querySelector('video') as HTMLVideoElement).currentTime)
      await victim?.stop('SIGKILL')
      const fromVictim = (await stats(page)).bySource[serving ?? ''] ?? 0
      // Still playing: time advances well past the kill, and a seek lands.
      await page.waitForFunction((t) => (document.querySelector('video') as HTMLVideoElement).currentTime > t + 2, at, { timeout: 30_000 })
      await seek(page, 22)
      expect(await playerState(page)).toMatchObject({ src: expect.stringContaining(`/p2p/${fileId}`), error: null, mediaErrors: 0 })
      // The whole file again, through the engine: verified, from the replicas still alive.
      expect(await shaThroughEngine(page, fileId)).toBe(sampleSha())
      const after = await stats(page)
      const others = Object.entries(after.bySource).filter(([peer]) => peer !== serving).reduce((n, [, b]) => n + b, 0)
      expect(others).toBeGreaterThan(0)
      expect(after.bySource[serving ?? '']).toBe(fromVictim)
      await page.context().close()
    } finally {
      await Promise.all(own.map(async n => n.stop()))
    }
  })
})
