/**
 * `npm run bench -- upload`: uploads on a local cluster of `bin/dsm node`
 * processes over TCP. Uploads/s of 4 KiB and 1 MiB files with 2 and 3 copies
 * (a group of 2 or 3 members), MB/s of one 256 MiB file, peak RSS of each
 * node. Baseline in the same run: an HTTP server that writes the body to disk
 * and fsyncs it (one durable copy, no hashing, no network hop).
 */
import { createWriteStream } from 'node:fs'
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { eventually, dsm, startProcNode } from '../test/helpers/proc.ts'
import { MiB, printTable, writeResults } from './lib.ts'
import type { ProcNode } from '../test/helpers/proc.ts'

interface Args { smallCount: number, mediumCount: number, bigMiB: number, flatMiB: number, concurrency: number }

function parseArgs (args: string[]): Args {
  const get = (name: string, def: number): number => Number(args.find(a => a.startsWith(`--${name}=`))?.split('=')[1] ?? def)
  return { smallCount: get('small', 400), mediumCount: get('medium', 100), bigMiB: get('big-mib', 256), flatMiB: get('flat-mib', 2048), concurrency: get('concurrency', 16) }
}

async function peakRssMiB (pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid ?? 0}/status`, 'utf8').catch(() => '')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024
}

/** Reset the kernel's peak-RSS mark of a process (Linux: write 5 to clear_refs). */
async function resetPeakRss (pid: number | undefined): Promise<void> {
  await writeFile(`/proc/${pid ?? 0}/clear_refs`, '5').catch(() => {})
}

async function peaks (nodes: ProcNode[]): Promise<number[]> {
  return Promise.all(nodes.map(async n => peakRssMiB(n.proc.pid)))
}

async function resetPeaks (nodes: ProcNode[]): Promise<void> {
  await Promise.all(nodes.map(async n => resetPeakRss(n.proc.pid)))
}

/** Run `count` uploads of `size` bytes, `concurrency` at a time; returns uploads/s. */
async function uploadsPerSecond (url: string, count: number, size: number, concurrency: number, query = ''): Promise<number> {
  const body = new Uint8Array(size)
  let next = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++
      new DataView(body.buffer).setUint32(0, i + Math.floor(Math.random() * 1e9))
      const res = await fetch(`${url}/files?name=b${i}.bin${query}`, { method: 'POST', body })
      if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${await res.text()}`)
      await res.arrayBuffer()
    }
  }))
  return count / ((performance.now() - start) / 1000)
}

/** One streamed upload of `mib` MiB; returns MiB/s. */
async function bigUpload (url: string, mib: number, path = '/files?name=big.bin'): Promise<number> {
  const piece = new Uint8Array(MiB).map((_, i) => i * 31)
  let sent = 0
  const body = new ReadableStream<Uint8Array>({
    pull (ctl) {
      if (sent >= mib) { ctl.close(); return }
      const p = piece.slice()
      new DataView(p.buffer).setUint32(0, sent)
      ctl.enqueue(p)
      sent++
    }
  })
  const start = performance.now()
  const res = await fetch(`${url}${path}`, { method: 'POST', body, duplex: 'half', headers: { 'content-length': String(mib * MiB) } } as RequestInit)
  if (res.status !== 201 && res.status !== 200) throw new Error(`upload failed: ${res.status} ${await res.text()}`)
  await res.arrayBuffer()
  return mib / ((performance.now() - start) / 1000)
}

/** The baseline: HTTP POST → write + fsync one file, nothing else. */
async function baselineServer (dir: string): Promise<{ url: string, close: () => void }> {
  let n = 0
  const server = createServer((req, res) => {
    const path = join(dir, `b${n++}`)
    void pipeline(req, createWriteStream(path)).then(async () => {
      const fh = await open(path, 'r+')
      await fh.sync()
      await fh.close()
      res.writeHead(201).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => server.close() }
}

async function cluster (root: string, members: number): Promise<ProcNode[]> {
  const nodes: ProcNode[] = []
  nodes.push(await startProcNode({ dataDir: join(root, 'n1'), args: ['--group', 'g1'], env: { DSM_LOG_LEVEL: 'error' } }))
  for (let i = 2; i <= 3; i++) {
    const args = i <= members ? ['--group', 'g1'] : ['--spare']
    nodes.push(await startProcNode({ dataDir: join(root, `n${i}`), args, bootstrap: [nodes[0]?.addr ?? ''], env: { DSM_LOG_LEVEL: 'error' } }))
  }
  await eventually(async () => JSON.parse((await dsm(['groups', '--json', '--node', nodes[0]?.url ?? ''])).stdout) as Array<{ members: Array<{ state: string }> }>,
    g => g[0]?.members.length === members && g[0].members.every(m => m.state === 'ACTIVE'), 30_000, 'group ready')
  return nodes
}

export async function run (argv: string[]): Promise<void> {
  const args = parseArgs(argv)
  const root = await mkdtemp(join(tmpdir(), 'dsm-bench-upload-'))
  const results: Record<string, number> = {}
  const rss: Record<string, number[]> = {}
  try {
    const base = await baselineServer(await mkdtemp(join(root, 'baseline-')))
    results.baseline_4k_per_s = await uploadsPerSecond(base.url, args.smallCount, 4096, args.concurrency)
    results.baseline_1m_per_s = await uploadsPerSecond(base.url, args.mediumCount, MiB, args.concurrency)
    results.baseline_big_MBps = await bigUpload(base.url, args.bigMiB, '/')
    base.close()
    for (const copies of [3, 2]) {
      const nodes = await cluster(join(root, `c${copies}`), copies)
      const url = nodes[0]?.url ?? ''
      rss[`copies${copies}_idle`] = await peaks(nodes)
      await resetPeaks(nodes)
      results[`copies${copies}_4k_per_s`] = await uploadsPerSecond(url, args.smallCount, 4096, args.concurrency, '&group=g1')
      results[`copies${copies}_1m_per_s`] = await uploadsPerSecond(url, args.mediumCount, MiB, args.concurrency, '&group=g1')
      rss[`copies${copies}_${args.concurrency}_concurrent`] = await peaks(nodes)
      await resetPeaks(nodes)
      results[`copies${copies}_big_MBps`] = await bigUpload(url, args.bigMiB, '/files?name=big.bin&group=g1')
      rss[`copies${copies}_${args.bigMiB}MiB_file`] = await peaks(nodes)
      if (copies === 3 && args.flatMiB > 0) {
        // Memory stays flat: a file 8x larger must not raise the peak.
        await resetPeaks(nodes)
        results.flat_MBps = await bigUpload(url, args.flatMiB, '/files?name=flat.bin&group=g1')
        rss[`copies3_${args.flatMiB}MiB_file`] = await peaks(nodes)
      }
      await Promise.all(nodes.map(async n => n.stop()))
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
  const ratio = (v: number | undefined, b: number | undefined): string => `${((v ?? NaN) / (b ?? NaN)).toFixed(2)}×`
  printTable(`uploads to a 3-node cluster (bin/dsm node processes, TCP loopback), ${args.concurrency} concurrent`,
    ['workload', 'baseline (write+fsync)', '3 copies', '2 copies', '3 copies / baseline'],
    [
      [`4 KiB files (uploads/s, ${args.smallCount})`, results.baseline_4k_per_s ?? NaN, results.copies3_4k_per_s ?? NaN, results.copies2_4k_per_s ?? NaN, ratio(results.copies3_4k_per_s, results.baseline_4k_per_s)],
      [`1 MiB files (uploads/s, ${args.mediumCount})`, results.baseline_1m_per_s ?? NaN, results.copies3_1m_per_s ?? NaN, results.copies2_1m_per_s ?? NaN, ratio(results.copies3_1m_per_s, results.baseline_1m_per_s)],
      [`one ${args.bigMiB} MiB file (MiB/s)`, results.baseline_big_MBps ?? NaN, results.copies3_big_MBps ?? NaN, results.copies2_big_MBps ?? NaN, ratio(results.copies3_big_MBps, results.baseline_big_MBps)]
    ])
  if (results.flat_MBps != null) process.stdout.write(`\none ${args.flatMiB} MiB file, 3 copies: ${results.flat_MBps.toFixed(1)} MiB/s\n`)
  printTable('peak RSS per node during each phase (MiB)', ['phase', 'n1 (coordinator)', 'n2', 'n3'],
    Object.entries(rss).map(([k, v]) => [k, v[0] ?? NaN, v[1] ?? NaN, v[2] ?? NaN]))
  const path = writeResults('upload', { args, results, peak_rss_mb: rss })
  process.stdout.write(`\nwrote ${path}\n`)
}
