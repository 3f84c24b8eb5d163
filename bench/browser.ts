/**
 * `npm run bench -- browser [--pages=4] [--mib=32]`: N headless Chromium tabs
 * in P2P mode watch one file on a 3-node cluster (`bin/dsm node` processes,
 * TCP + WebSockets), joining one after another. Reports, per tab and overall,
 * the share of bytes that came from other tabs (WebRTC) rather than storage
 * nodes; startup time to first frame of sample-30s.mp4 (P2P vs the HTTP
 * gateway, same run); and read throughput of a larger file through the P2P
 * engine vs plain HTTP. Writes bench/results/browser.json.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MEDIA_DIR, chromiumUnavailable, launchChromium } from '../test/sim/browser.ts'
import { dsm, eventually, startProcNode } from '../test/sim/proc.ts'
import { MiB, printTable, stats, writeResults } from './lib.ts'
import type { ProcNode } from '../test/sim/proc.ts'
import type { Browser, Page } from 'playwright-core'

interface TabStats { fromStorage: number, fromPeers: number, servedToPeers: number, rejected: number, peerConnections: number }

async function firstFrameMs (page: Page, src: string): Promise<number> {
  return page.evaluate(async (src) => {
    const v = document.querySelector('video') as HTMLVideoElement
    v.muted = true
    const start = performance.now()
    v.src = src
    void v.play()
    await new Promise<void>((resolve, reject) => {
      v.addEventListener('playing', () => { resolve() }, { once: true })
      v.addEventListener('error', () => { reject(new Error(`media error ${v.error?.code ?? '?'}`)) }, { once: true })
    })
    return performance.now() - start
  }, src)
}

/** Read a whole file in the tab: through the P2P engine, or over HTTP; returns MiB/s. */
async function readMBps (page: Page, id: string, via: 'p2p' | 'http'): Promise<number> {
  return page.evaluate(async ({ id, via }) => {
    const start = performance.now()
    let n = 0
    if (via === 'p2p') {
      const e = window.dsmP2P
      if (e == null) throw new Error('no engine')
      for await (const p of e.read(id, 0, (await e.manifest(id)).size)) n += p.byteLength
    } else {
      const res = await fetch(`/files/${id}`)
      const reader = (res.body as ReadableStream<Uint8Array>).getReader()
      for (let r = await reader.read(); r.done !== true; r = await reader.read()) n += r.value.byteLength
    }
    return n / (1024 * 1024) / ((performance.now() - start) / 1000)
  }, { id, via })
}

async function tab (browser: Browser, url: string, p2p: boolean): Promise<Page> {
  const page = await (await browser.newContext()).newPage()
  await page.goto(`${url}/${p2p ? '?p2p=1' : ''}`)
  if (p2p) await page.waitForFunction(() => window.dsmP2P != null, undefined, { timeout: 30_000 })
  return page
}

export async function run (argv: string[]): Promise<void> {
  const pages = Number(argv.find(a => a.startsWith('--pages='))?.split('=')[1] ?? 4)
  const mib = Number(argv.find(a => a.startsWith('--mib='))?.split('=')[1] ?? 32)
  const why = chromiumUnavailable()
  if (why != null) { process.stdout.write(`skipped: ${why}\n`); return }
  const root = await mkdtemp(join(tmpdir(), 'dsm-bench-browser-'))
  const nodes: ProcNode[] = []
  let browser: Browser | undefined
  try {
    const args = ['--listen', '/ip4/127.0.0.1/tcp/0/ws']
    const env = { DSM_LOG_LEVEL: 'error' }
    nodes.push(await startProcNode({ dataDir: join(root, 'n1'), args, env }))
    for (const n of ['n2', 'n3']) nodes.push(await startProcNode({ dataDir: join(root, n), args, env, bootstrap: [nodes[0]?.addr ?? ''] }))
    const url = (i: number): string => nodes[i % nodes.length]?.url ?? ''
    await eventually(async () => JSON.parse((await dsm(['groups', '--json', '--node', url(0)])).stdout) as Array<{ members: Array<{ state: string }> }>,
      g => g[0]?.members.length === 3 && g[0].members.every(m => m.state === 'ACTIVE'), 30_000, 'cluster ready')
    const video = (await dsm(['upload', join(MEDIA_DIR, 'sample-30s.mp4'), '--node', url(0)])).stdout.trim()
    const bigFile = join(root, 'big.bin')
    await writeFile(bigFile, new Uint8Array(mib * MiB).map((_, i) => (i * 2654435761) >>> 24))
    const big = (await dsm(['upload', bigFile, '--node', url(0)])).stdout.trim()
    browser = await launchChromium()

    // Tabs join one by one; each starts the video, then reads the big file through its engine.
    const rows: Array<{ tab: number, firstFrameMs: number, readMBps: number, stats: TabStats }> = []
    const tabs: Page[] = []
    for (let i = 0; i < pages; i++) {
      const page = await tab(browser, url(i), true)
      tabs.push(page)
      await page.evaluate(async (ids) => { for (const id of ids) await window.dsmP2P?.manifest(id) }, [video, big])
      if (i > 0) await page.waitForFunction(() => (window.dsmP2P?.stats.peerConnections ?? 0) > 0, undefined, { timeout: 30_000 }).catch(() => {})
      const frame = await firstFrameMs(page, `/p2p/${video}`)
      const speed = await readMBps(page, big, 'p2p')
      rows.push({ tab: i + 1, firstFrameMs: frame, readMBps: speed, stats: await page.evaluate(() => JSON.parse(JSON.stringify(window.dsmP2P?.stats)) as TabStats) })
    }
    // Baseline, same run: a fresh tab over the HTTP gateway.
    const http = await tab(browser, url(0), false)
    const httpFrame = await firstFrameMs(http, `/files/${video}`)
    const httpFrames = [httpFrame, await firstFrameMs(http, `/files/${video}?again=1`)]
    const httpSpeed = await readMBps(http, big, 'http')
    // Served counts settle after the readers finish.
    for (const [i, page] of tabs.entries()) {
      const s = await page.evaluate(() => JSON.parse(JSON.stringify(window.dsmP2P?.stats)) as TabStats)
      const row = rows[i]
      if (row != null) row.stats.servedToPeers = s.servedToPeers
    }

    const total = rows.reduce((a, r) => ({ storage: a.storage + r.stats.fromStorage, peers: a.peers + r.stats.fromPeers }), { storage: 0, peers: 0 })
    const share = total.peers / Math.max(1, total.storage + total.peers)
    printTable(`${pages} tabs in P2P mode, one after another (sample-30s.mp4 + a ${mib} MiB file)`,
      ['tab', 'first frame (ms)', 'read MiB/s', 'from storage (MiB)', 'from tabs (MiB)', 'served to tabs (MiB)', 'rejected'],
      rows.map(r => [r.tab, r.firstFrameMs, r.readMBps, r.stats.fromStorage / MiB, r.stats.fromPeers / MiB, r.stats.servedToPeers / MiB, r.stats.rejected]))
    printTable('overall', ['figure', 'value'], [
      ['share of bytes served tab-to-tab', `${(share * 100).toFixed(1)}%`],
      ['storage bytes saved vs every tab reading from storage', `${((total.peers / MiB)).toFixed(1)} MiB`],
      ['first frame, P2P (median of tabs)', `${stats(rows.map(r => r.firstFrameMs)).median.toFixed(0)} ms`],
      ['first frame, HTTP gateway (same run)', `${stats(httpFrames).median.toFixed(0)} ms`],
      ['read throughput, P2P (median of tabs)', `${stats(rows.map(r => r.readMBps)).median.toFixed(1)} MiB/s`],
      ['read throughput, HTTP gateway (same run)', `${httpSpeed.toFixed(1)} MiB/s`]
    ])
    process.stdout.write(`\nwrote ${writeResults('browser', {
      pages,
mib,
tabs: rows,
share_tab_to_tab: share,
first_frame_p2p_ms: stats(rows.map(r => r.firstFrameMs)).median,
      first_frame_http_ms: stats(httpFrames).median,
read_p2p_MBps: stats(rows.map(r => r.readMBps)).median,
read_http_MBps: httpSpeed
    })}\n`)
  } finally {
    await browser?.close()
    await Promise.all(nodes.map(async n => n.stop()))
    await rm(root, { recursive: true, force: true })
  }
}
