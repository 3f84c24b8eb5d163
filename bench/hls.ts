/**
 * `npm run bench -- hls [--seconds=60] [--tabs=4] [--rate=1]`: adaptive
 * streaming made and watched on clusters of three `bin/dsm node` processes
 * (TCP + WebSockets), with a 720p source of `--seconds` made from
 * sample-30s.mp4 (ladder: 720p, 480p, 360p, 240p, audio, preview).
 *
 * 1. Transcoding speed (× real time): one node making every job (the other
 *    two with --transcode-jobs 0), then the three sharing them; and the time
 *    from the start of the upload to the first playable rendition.
 * 2. Playback in headless Chromium, `--tabs` tabs joining a few seconds
 *    apart, through the web page's player (hls.js): P2P mode and plain HTTP
 *    in the same run, `--rounds` of each in ABBA order (P2P, HTTP, HTTP,
 *    P2P, ...) so that neither always goes first. Per tab: time from "play" to the first frame,
 *    stalls (count and seconds), where the segment bytes came from; overall:
 *    the share of segment bytes served tab to tab, per rendition.
 *    `--trace`: where each P2P segment came from and why, and each tab's path to its
 *    first frame (its requests and media events); `--tab-profile`: each tab's main
 *    thread sampled from "play" to its first frame; `--tab-trace`: what Chromium's
 *    threads ran in that window (./chrome-trace.ts); `--think-ms`: time on the page
 *    before "play".
 * Writes bench/results/hls.json.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findMediaTools, run as runTool } from '../src/media/tools.ts'
import { MEDIA_DIR, chromiumUnavailable, launchChromium } from '../test/sim/browser.ts'
import { dsm, eventually, startProcNode } from '../test/sim/proc.ts'
import { TRACE_CATEGORIES, foldTrace } from './chrome-trace.ts'
import { MiB, printTable, quiet, stats, writeResults } from './lib.ts'
import { categorize } from './profile.ts'
import type { ProcNode } from '../test/sim/proc.ts'
import type { PackageStatus } from '../src/video/package-ops.ts'
import type { Browser, Page } from 'playwright-core'

type Share = Record<string, { peers: number, storage: number }>
interface Trace { rendition: string, sn: number, from: string, why: string, slackS: number, ms: number, at: number }
/** A step on a tab's path to its first frame: ms after "play" when a request started and ended (resource timing), or a media event fired. */
interface Mark { what: string, startMs: number, endMs: number }
interface TabRun { chrome?: ReturnType<typeof foldTrace>, tab: number, round?: number, firstFrameMs: number, firstPeerMs: number, stalls: number, stallS: number, share: Share, levels: string[], trace: Trace[], marks: Mark[], mainThread?: Record<string, number>, heapMiB?: { atPlay: number, atFirstFrame: number } }

/** --tab-profile: each tab's main thread sampled (CDP Profiler) from "play" to its first frame, folded by script. */
let profileTabs = false
/** --tab-trace: Chromium's trace from "play" to each tab's first frame, folded by thread and task (./chrome-trace.ts). */
let traceTabs = false
/** --think-ms: how long a viewer looks at the page before pressing "play" (default 0: at once). */
let thinkMs = 0

type Profile = Parameters<typeof categorize>[0]

/** The profile's first `ms` (its samples after that cut off). */
function firstOf (profile: Profile, ms: number): Profile {
  let t = 0
  let n = 0
  while (n < profile.samples.length && t + (profile.timeDeltas[n] ?? 0) <= ms * 1000) t += profile.timeDeltas[n++] ?? 0
  return { ...profile, samples: profile.samples.slice(0, n), timeDeltas: profile.timeDeltas.slice(0, n) }
}

/** A renderer profile's busy time (ms) by script file (idle left out); the bundle's own by function. */
function byScript (profile: Profile): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [frame, ms] of categorize(profile).byFrame) {
    const file = /\S+:\d+$/.exec(frame)?.[0].replace(/^https?:\/\/[^/]+/, '').replace(/:\d+$/, '') ?? frame.replace(/ · .*/, '')
    let key = file === '' || file.startsWith(':') ? frame.split(' · ')[0] ?? frame : file
    if (key === '/ui/dsm-p2p.js') key += ` · ${/ · (\S+)/.exec(frame)?.[1] ?? '?'}`
    out[key] = (out[key] ?? 0) + ms
  }
  return out
}

/** Start three nodes; `jobs[i]` is node i's --transcode-jobs. */
async function cluster (root: string, jobs: number[]): Promise<ProcNode[]> {
  const args = ['--listen', '/ip4/127.0.0.1/tcp/0/ws']
  const env = (i: number): Record<string, string> => ({ DSM_LOG_LEVEL: 'error', DSM_TRANSCODE_JOBS: String(jobs[i] ?? 1) })
  const first = await startProcNode({ dataDir: join(root, 'n0'), args, env: env(0) })
  const nodes = [first, ...await Promise.all([1, 2].map(async i => startProcNode({ dataDir: join(root, `n${i}`), args, env: env(i), bootstrap: [first.addr] })))]
  await eventually(async () => JSON.parse((await dsm(['groups', '--json', '--node', first.url])).stdout) as Array<{ members: Array<{ state: string }> }>,
    g => g[0]?.members.length === 3 && g[0].members.every(m => m.state === 'ACTIVE'), 30_000, 'cluster ready')
  return nodes
}

async function status (node: ProcNode, id: string): Promise<PackageStatus> {
  return (await (await fetch(`${node.url}/api/files/${id}/hls`)).json()) as PackageStatus
}

/** Upload with ?hls=1; the times (ms from the upload's start) until the first rendition plays and until the package is ready. */
async function transcode (nodes: ProcNode[], source: string): Promise<{ id: string, firstPlayableMs: number, readyMs: number, owners: number }> {
  const start = performance.now()
  const up = await dsm(['upload', source, '--hls', '--node', nodes[0]?.url ?? ''])
  const id = up.stdout.trim()
  let firstPlayableMs = NaN
  const done = await eventually(async () => {
    const s = await status(nodes[0] as ProcNode, id)
    if (Number.isNaN(firstPlayableMs) && (await fetch(`${nodes[1]?.url ?? ''}/files/${id}/hls/master.m3u8`)).status === 200) firstPlayableMs = performance.now() - start
    return s
  }, s => s.state === 'ready' || s.state === 'failed', 900_000, 'the package ready')
  if (done.state !== 'ready') throw new Error(`the package failed: ${done.error ?? '?'}`)
  return { id, firstPlayableMs, readyMs: performance.now() - start, owners: new Set(done.tasks.map(t => t.owner)).size }
}

/**
 * Ask every node once for the package's playlists and the first segments of
 * each rendition, so that the first measured tab does not pay for the nodes'
 * cold caches (package records, compiled code) — the mode measured first
 * would pay it alone.
 */
async function warm (nodes: ProcNode[], id: string): Promise<void> {
  const get = async (url: string): Promise<string> => {
    const res = await fetch(url)
    if (!res.ok) throw new Error(`warm-up: ${url} answered ${res.status}`)
    return res.text()
  }
  for (const node of nodes) {
    const base = `${node.url}/files/${id}/hls/`
    const master = await get(`${base}master.m3u8`)
    for (const index of master.split('\n').filter(l => l !== '' && !l.startsWith('#'))) {
      const url = new URL(index, base)
      const playlist = await get(url.href)
      const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist)?.[1]
      const first = playlist.split('\n').find(l => l !== '' && !l.startsWith('#'))
      for (const u of [init, first]) if (u != null) await get(new URL(u, url).href)
    }
  }
}

/** Open the page (P2P or not), wait for its engine, play the video through the page's player to the end. */
async function watch (browser: Browser, url: string, p2p: boolean, name: string, rate: number, pages: Page[]): Promise<Omit<TabRun, 'tab'>> {
  const page: Page = await (await browser.newContext()).newPage()
  pages.push(page)
  await page.goto(`${url}/${p2p ? '?p2p=1' : ''}`)
  if (p2p) await page.waitForFunction(() => window.dsmP2P != null, undefined, { timeout: 30_000 })
  const row = page.locator('#files-body tr', { hasText: name })
  await row.locator('.badge.ready').waitFor({ timeout: 30_000 })
  // A page at rest in both modes (the player's library loaded on idle), as a viewer finds it.
  await page.waitForFunction(() => (window as unknown as { dsmPlayer: { libraryLoaded: boolean } }).dsmPlayer.libraryLoaded, undefined, { timeout: 30_000 })
  if (thinkMs > 0) await page.waitForTimeout(thinkMs)
  await page.evaluate((rate) => {
    const v = document.querySelector('video') as HTMLVideoElement
    v.muted = true
    // Chromium's JS heap of the tab (its non-standard performance.memory), at "play" and at the first frame.
    const heap = (): number => ((performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? NaN) / 2 ** 20
    const m = { start: 0, first: -1, stalls: 0, stallMs: 0, waitingAt: -1, heapAtPlay: heap(), heapAtFirst: NaN }
    v.addEventListener('playing', () => {
      v.playbackRate = rate
      if (m.first < 0) { m.first = performance.now() - m.start; m.heapAtFirst = heap() } else if (m.waitingAt >= 0) { m.stallMs += performance.now() - m.waitingAt; m.waitingAt = -1 }
    })
    v.addEventListener('waiting', () => { if (m.first >= 0 && !v.seeking && m.waitingAt < 0) { m.stalls++; m.waitingAt = performance.now() } })
    const events: Array<{ what: string, at: number }> = []
    for (const e of ['loadedmetadata', 'loadeddata', 'canplay']) v.addEventListener(e, () => { events.push({ what: e, at: performance.now() - m.start }) }, { once: true })
    document.addEventListener('click', () => { events.push({ what: 'click', at: performance.now() - m.start }) }, { once: true, capture: true })
    ;(window as unknown as { dsmBenchEvents: typeof events }).dsmBenchEvents = events
    ;(window as unknown as { dsmBench: typeof m }).dsmBench = m
    performance.setResourceTimingBufferSize(2_000)
    m.start = performance.now()
    const e = (window as unknown as { dsmP2P?: { stats: { peerConnections: number } } }).dsmP2P
    const t = setInterval(() => { if ((e?.stats.peerConnections ?? 0) > 0) { (m as { peerAt?: number }).peerAt = performance.now() - m.start; clearInterval(t) } }, 50)
  }, rate)
  const cdp = profileTabs ? await page.context().newCDPSession(page) : undefined
  if (cdp != null) {
    await cdp.send('Profiler.enable')
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 })
    await cdp.send('Profiler.start')
  }
  // ms after the bench's start mark at which the profiler started (its samples are cut at the first frame).
  const profiledFrom = cdp != null ? await page.evaluate(() => performance.now() - (window as unknown as { dsmBench: { start: number } }).dsmBench.start) : 0
  if (traceTabs) await browser.startTracing(page, { categories: TRACE_CATEGORIES })
  await row.locator('button.play').click()
  let chrome: ReturnType<typeof foldTrace> | undefined
  if (traceTabs) {
    await page.waitForFunction(() => (window as unknown as { dsmBench: { first: number } }).dsmBench.first >= 0, undefined, { timeout: 30_000, polling: 'raf' })
    chrome = foldTrace((await browser.stopTracing()).toString())
  }
  let mainThread: Record<string, number> | undefined
  if (cdp != null) {
    const first = await (await page.waitForFunction(() => {
      const f = (window as unknown as { dsmBench: { first: number } }).dsmBench.first
      return f >= 0 ? f : undefined
    }, undefined, { timeout: 30_000, polling: 'raf' })).jsonValue() as number
    mainThread = byScript(firstOf((await cdp.send('Profiler.stop')).profile as unknown as Profile, first - profiledFrom))
    await cdp.detach()
  }
  await page.waitForFunction(() => {
    const v = document.querySelector('video') as HTMLVideoElement
    return v.ended || (v.duration > 0 && v.currentTime >= v.duration - 0.5)
  }, undefined, { timeout: 180_000, polling: 500 }).catch(async (err: unknown) => {
    const seen = await page.evaluate(() => {
      const v = document.querySelector('video') as HTMLVideoElement
      const p = (window as unknown as { dsmPlayer: { levelName: string, switches: unknown[] } }).dsmPlayer
      return { time: v.currentTime, duration: v.duration, paused: v.paused, ended: v.ended, error: v.error?.code, level: p.levelName, buffered: [...Array(v.buffered.length).keys()].map(i => [v.buffered.start(i), v.buffered.end(i)]), share: (window as unknown as { dsmHlsShare: unknown }).dsmHlsShare, trace: (window as unknown as { dsmHlsTrace?: unknown[] }).dsmHlsTrace?.slice(-10), p2p: (window as unknown as { dsmP2P?: { stats: unknown } }).dsmP2P?.stats }
    })
    throw new Error(`a ${p2p ? 'P2P' : 'HTTP'} tab did not play to the end: ${JSON.stringify(seen)} (${String(err)})`)
  })
  const out = await page.evaluate(() => {
    const m = (window as unknown as { dsmBench: { first: number, stalls: number, stallMs: number, peerAt?: number } }).dsmBench
    const p = (window as unknown as { dsmPlayer: { switches: Array<{ level: string }> } }).dsmPlayer
    const start = (m as unknown as { start: number }).start
    // The path to the first frame: requests (fetch and XHR alike) and media events until "playing".
    const requests = performance.getEntriesByType('resource') as PerformanceResourceTiming[]
    const marks = [
      ...requests.filter(r => r.startTime >= start && r.startTime - start <= m.first).map(r => ({ what: new URL(r.name).pathname.replace(/^\/files\/[^/]+\/hls\//, '').replace(/[a-z0-9]{20,}/, '…'), startMs: r.startTime - start, endMs: r.responseEnd - start })),
      ...(window as unknown as { dsmBenchEvents: Array<{ what: string, at: number }> }).dsmBenchEvents.map(e => ({ what: e.what, startMs: e.at, endMs: e.at }))
    ].sort((a, b) => a.startMs - b.startMs)
    const h = m as unknown as { heapAtPlay: number, heapAtFirst: number }
    return { firstFrameMs: m.first, firstPeerMs: m.peerAt ?? NaN, stalls: m.stalls, stallS: m.stallMs / 1000, share: JSON.parse(JSON.stringify((window as unknown as { dsmHlsShare: Share }).dsmHlsShare)) as Share, levels: [...new Set(p.switches.map(s => s.level))], trace: (window as unknown as { dsmHlsTrace?: Trace[] }).dsmHlsTrace ?? [], marks, heapMiB: { atPlay: h.heapAtPlay, atFirstFrame: h.heapAtFirst } }
  })
  return { ...out, ...(mainThread != null ? { mainThread } : {}), ...(chrome != null ? { chrome } : {}) }
}

/** `tabs` tabs, each starting `gapMs` after the previous, all watching to the end. */
async function viewers (browser: Browser, nodes: ProcNode[], p2p: boolean, name: string, tabs: number, gapMs: number, rate: number): Promise<TabRun[]> {
  const runs: Array<Promise<TabRun>> = []
  const pages: Page[] = []
  for (let i = 0; i < tabs; i++) {
    runs.push(watch(browser, nodes[i % nodes.length]?.url ?? '', p2p, name, rate, pages).then(r => ({ tab: i + 1, ...r })))
    await new Promise(resolve => setTimeout(resolve, gapMs))
  }
  try {
    return await Promise.all(runs)
  } finally {
    // The next mode starts without these tabs (and their engines) on the machine.
    await Promise.all(pages.map(async p => p.context().close()))
  }
}

/**
 * P2P's first frame less HTTP's, tab by tab at the same place (round, tab): the tabs of one place
 * start into the same state of the cluster, so the pairs take out what the place itself costs.
 */
function pairedFirstFrames (p2p: TabRun[], http: TabRun[]): { median: number, min: number, max: number, n: number } {
  const diffs = p2p.flatMap(a => {
    const b = http.find(h => h.round === a.round && h.tab === a.tab)
    return b == null ? [] : [a.firstFrameMs - b.firstFrameMs]
  })
  const s = stats(diffs)
  return { median: s.median, min: s.min, max: s.max, n: diffs.length }
}

function shareOf (runs: TabRun[]): { total: number, byRendition: Record<string, number>, bytes: number } {
  const by: Record<string, { peers: number, storage: number }> = {}
  for (const r of runs) {
    for (const [name, s] of Object.entries(r.share)) {
      const b = (by[name] ??= { peers: 0, storage: 0 })
      b.peers += s.peers
      b.storage += s.storage
    }
  }
  const peers = Object.values(by).reduce((a, b) => a + b.peers, 0)
  const all = Object.values(by).reduce((a, b) => a + b.peers + b.storage, 0)
  return { total: peers / Math.max(1, all), bytes: all, byRendition: Object.fromEntries(Object.entries(by).map(([k, v]) => [k, v.peers / Math.max(1, v.peers + v.storage)])) }
}

export async function run (argv: string[]): Promise<void> {
  const arg = (k: string, d: number): number => Number(argv.find(a => a.startsWith(`--${k}=`))?.split('=')[1] ?? d)
  const seconds = arg('seconds', 60)
  const tabs = arg('tabs', 4)
  const rate = arg('rate', 1)
  /** Rounds of both modes (ABBA order); first frames and stalls are over every tab of every round. */
  const rounds = arg('rounds', 2)
  /** --single=0 skips the one-node transcoding run (playback only, faster); --trace lists each P2P segment taken from storage and why. */
  const withSingle = arg('single', 1) !== 0
  profileTabs = argv.includes('--tab-profile')
  traceTabs = argv.includes('--tab-trace')
  thinkMs = arg('think-ms', 0)
  const why = chromiumUnavailable()
  const root = await mkdtemp(join(tmpdir(), 'dsm-bench-hls-'))
  let browser: Browser | undefined
  const all: ProcNode[] = []
  try {
    // A 720p source of `seconds`: the sample, looped and scaled (made once, not measured).
    const tools = await findMediaTools()
    const source = join(root, 'source-720p.mp4')
    await runTool(tools.ffmpeg, ['-v', 'error', '-stream_loop', String(Math.ceil(seconds / 30) - 1), '-i', join(MEDIA_DIR, 'sample-30s.mp4'), '-t', String(seconds),
      '-vf', 'scale=1280:720', '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '3000k', '-c:a', 'copy', source])

    // 1. One node makes every job; then three share them.
    let single = { id: '', firstPlayableMs: NaN, readyMs: NaN, owners: 0 }
    if (withSingle) {
      const alone = await cluster(join(root, 'alone'), [1, 0, 0])
      all.push(...alone)
      single = await transcode(alone, source)
      await Promise.all(alone.map(async n => n.stop()))
    }
    const nodes = await cluster(join(root, 'group'), [1, 1, 1])
    all.push(...nodes)
    const group = await transcode(nodes, source)
    printTable(`transcoding a ${seconds} s 720p source (ladder 720p/480p/360p/240p + audio + poster/storyboard)`, ['cluster', 'nodes making jobs', 'upload → first playable rendition (s)', 'upload → ready (s)', 'speed (× real time)'], [
      withSingle
        ? ['one node makes every job', single.owners, single.firstPlayableMs / 1000, single.readyMs / 1000, seconds / (single.readyMs / 1000)]
        : ['one node makes every job', 'not run (--single=0)', '', '', ''],
      ['three nodes share the jobs', group.owners, group.firstPlayableMs / 1000, group.readyMs / 1000, seconds / (group.readyMs / 1000)]
    ])

    // 2. Viewers: P2P mode, then HTTP, on the same package.
    const p2p: TabRun[] = []
    const http: TabRun[] = []
    if (why == null) {
      browser = await launchChromium()
      const gapMs = Math.min(8_000, seconds * 1000 / rate / (tabs + 1))
      await warm(nodes, group.id)
      // ... and the browser's (its first page starts its network and GPU processes).
      for (const mode of ['/', '/?p2p=1']) {
        const page = await (await browser.newContext()).newPage()
        await page.goto(`${nodes[0]?.url ?? ''}${mode}`)
        await page.locator('#files-body tr .badge.ready').first().waitFor({ timeout: 30_000 })
        await page.context().close()
      }
      // Each mode starts on a cluster at rest (the package's replication and checkpoints, the last mode's tabs, done).
      const pids = nodes.map(n => n.proc.pid)
      // Rounds in ABBA order (P2P then HTTP, then HTTP then P2P, ...): neither mode always goes first.
      for (let round = 1; round <= rounds; round++) {
        for (const mode of round % 2 === 1 ? [true, false] : [false, true]) {
          await quiet(pids)
          const runs = await viewers(browser, nodes, mode, 'source-720p.mp4', tabs, gapMs, rate)
          ;(mode ? p2p : http).push(...runs.map(r => ({ ...r, round })))
        }
      }
      const rows = [...p2p.map(r => ['P2P', r]), ...http.map(r => ['HTTP', r])] as Array<[string, TabRun]>
      printTable(`${tabs} tabs watching (${gapMs / 1000} s apart, playback rate ${rate}), ${rounds} rounds`, ['mode', 'round', 'tab', 'first frame (ms)', 'first tab link (ms)', 'stalls', 'stalled (s)', 'segments from tabs (MiB)', 'from storage (MiB)', 'renditions played', 'up to a tab-held rendition', 'JS heap at play → first frame (MiB)'], rows.map(([mode, r]) => {
        const peers = Object.values(r.share).reduce((a, s) => a + s.peers, 0)
        const storage = Object.values(r.share).reduce((a, s) => a + s.storage, 0)
        return [mode, r.round ?? 1, r.tab, r.firstFrameMs, mode === 'P2P' ? r.firstPeerMs.toFixed(0) : '', r.stalls, r.stallS, peers / MiB, mode === 'HTTP' ? '(all, over HTTP)' : (storage / MiB).toFixed(1), r.levels.join(' '), mode === 'P2P' ? r.trace.filter(t => t.from === 'switch').length : '', r.heapMiB != null ? `${r.heapMiB.atPlay.toFixed(1)} → ${r.heapMiB.atFirstFrame.toFixed(1)}` : '']
      }))
      if (argv.includes('--trace')) {
        printTable('P2P segments that came from storage, and why', ['round', 'tab', 'rendition', 'segment', 'playhead (s)', 'slack (s)', 'spent on peers (ms)', 'why'],
          p2p.flatMap(r => r.trace.filter(t => t.from === 'storage').map(t => [r.round ?? 1, r.tab, t.rendition, t.sn, t.at.toFixed(1), t.slackS.toFixed(1), t.ms.toFixed(0), t.why])))
        // With --tab-profile: the tab's main thread busy in that window, and where most of it went.
        const busy = (r: TabRun): string => {
          if (r.mainThread == null) return ''
          const top = Object.entries(r.mainThread).sort((x, y) => y[1] - x[1]).slice(0, 3).map(([k, v]) => `${k.replace(/^.*\//, '')} ${v.toFixed(0)}`)
          return `${Object.values(r.mainThread).reduce((x, y) => x + y, 0).toFixed(0)} (${top.join(', ')})`
        }
        printTable('each tab\'s path to its first frame (ms after "play": a request\'s start → end, or a media event)', ['mode', 'round', 'tab', 'first frame (ms)', 'main thread busy (ms)', 'steps'],
          rows.map(([mode, r]) => [mode, r.round ?? 1, r.tab, r.firstFrameMs.toFixed(0), busy(r), r.marks.map(k => k.startMs === k.endMs ? `${k.what}@${k.startMs.toFixed(0)}` : `${k.what} ${k.startMs.toFixed(0)}→${k.endMs.toFixed(0)}`).join(', ')]))
      }
      if (traceTabs) {
        printTable('what Chromium was busy with from "play" to each tab\'s first frame (top-level tasks, ms; --tab-trace)', ['mode', 'round', 'tab', 'first frame (ms)', 'threads', 'tasks'],
          rows.map(([mode, r]) => [mode, r.round ?? 1, r.tab, r.firstFrameMs.toFixed(0), (r.chrome?.threads ?? []).map(([k, v]) => `${k} ${v.toFixed(0)}`).join('; '), (r.chrome?.tasks ?? []).slice(0, 4).map(([k, v]) => `${k} ${v.toFixed(0)}`).join('; ')]))
      }
      if (profileTabs) {
        // Summed over each mode's tabs: where the main threads went between "play" and the first frames.
        const sum = (runs: TabRun[]): Record<string, number> => {
          const out: Record<string, number> = {}
          for (const r of runs) for (const [k, v] of Object.entries(r.mainThread ?? {})) out[k] = (out[k] ?? 0) + v / runs.length
          return out
        }
        const a = sum(p2p)
        const b = sum(http)
        const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort((x, y) => Math.max(a[y] ?? 0, b[y] ?? 0) - Math.max(a[x] ?? 0, b[x] ?? 0))
        printTable('a tab\'s main thread from "play" to its first frame, mean ms per tab (CDP sampling profiler)', ['script', 'P2P', 'HTTP'],
          [...keys.slice(0, 25).map(k => [k, (a[k] ?? 0).toFixed(1), (b[k] ?? 0).toFixed(1)]), ['total', Object.values(a).reduce((x, y) => x + y, 0).toFixed(1), Object.values(b).reduce((x, y) => x + y, 0).toFixed(1)]])
      }
      const share = shareOf(p2p)
      const paired = pairedFirstFrames(p2p, http)
      printTable('overall', ['figure', 'P2P', 'HTTP (same run)'], [
        ['first frame, median of tabs (ms)', stats(p2p.map(r => r.firstFrameMs)).median.toFixed(0), stats(http.map(r => r.firstFrameMs)).median.toFixed(0)],
        ['first frame, P2P − HTTP for the same round and tab: median (min … max) ms', `${paired.median.toFixed(0)} (${paired.min.toFixed(0)} … ${paired.max.toFixed(0)})`, ''],
        ['first frame, worst tab (ms)', stats(p2p.map(r => r.firstFrameMs)).max.toFixed(0), stats(http.map(r => r.firstFrameMs)).max.toFixed(0)],
        ['stalls, all tabs (count / s)', `${p2p.reduce((a, r) => a + r.stalls, 0)} / ${p2p.reduce((a, r) => a + r.stallS, 0).toFixed(1)}`, `${http.reduce((a, r) => a + r.stalls, 0)} / ${http.reduce((a, r) => a + r.stallS, 0).toFixed(1)}`],
        ['segment bytes served tab to tab', `${(share.total * 100).toFixed(1)} % of ${(share.bytes / MiB).toFixed(1)} MiB`, '0 %'],
        ...Object.entries(share.byRendition).map(([r, s]) => [`  ${r}`, `${(s * 100).toFixed(1)} %`, ''])
      ])
    } else {
      process.stdout.write(`\nplayback skipped: ${why}\n`)
    }
    process.stdout.write(`\nwrote ${writeResults('hls', {
      seconds,
      tabs,
      rate,
      rounds,
      think_ms: thinkMs,
      transcode: { single, group, speed_single_x: seconds / (single.readyMs / 1000), speed_group_x: seconds / (group.readyMs / 1000) },
      p2p,
      http,
      share: shareOf(p2p),
      first_frame_p2p_ms: stats(p2p.map(r => r.firstFrameMs)).median,
      first_frame_http_ms: stats(http.map(r => r.firstFrameMs)).median,
      first_frame_paired_diff_ms: pairedFirstFrames(p2p, http),
      stalls_p2p: p2p.reduce((a, r) => a + r.stalls, 0),
      stalls_http: http.reduce((a, r) => a + r.stalls, 0)
    })}\n`)
  } finally {
    await browser?.close()
    await Promise.all(all.map(async n => n.stop()))
    await rm(root, { recursive: true, force: true })
  }
}
