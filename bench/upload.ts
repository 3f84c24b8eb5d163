/**
 * `npm run bench -- upload`: uploads on local clusters of `bin/dsm node`
 * processes over TCP (a group of 2 members, then of 3), against baselines
 * measured in the same run:
 *   - the raw disk: a loop of 4 KiB write + fdatasync, and a sequential
 *     256 MiB write + fdatasync;
 *   - a bare HTTP server that writes each body to a file and fsyncs it (one
 *     durable copy, no hashing, no network hop) — the ratios are against it.
 * For 4 KiB and 1 MiB files with 1, 4 and 16 clients: uploads/s, p50/p99
 * latency, CPU ms per upload of each node; MB/s of one 256 MiB upload; peak
 * RSS. `--profile=DIR` writes a CPU profile of every node per cell and
 * prints where its time went (./profile.ts); `--clients=`, `--sizes=4k,1m`,
 * `--copies=2,3`, `--big-mib=0`, `--flat-mib=0` pick the cells; `--syscalls`
 * counts each node's system calls per upload (./syscalls.ts).
 * Writes bench/results/upload.json with the ratios
 * small_2copies_vs_baseline (4 KiB, 16 clients), medium_2copies_vs_baseline
 * (1 MiB, 4 clients) and big_2copies_vs_baseline (256 MiB).
 */
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Agent, request } from 'undici'
import { eventually, dsm, startProcNode } from '../test/sim/proc.ts'
import { Inspector, INSPECT_ENV, profiled as profiledOn } from './inspect.ts'
import { MiB, cpuMsOf, peakRssMiB, percentile, printTable, writeResults } from './lib.ts'
import { SYSCALLS, countSyscalls } from './syscalls.ts'
import type { ProcNode } from '../test/sim/proc.ts'

interface Args { seconds: number, bigMiB: number, flatMiB: number, clients: number[], copies: number[], sizes: string[], profile?: string, syscalls: boolean }

function parseArgs (args: string[]): Args {
  const raw = (name: string): string | undefined => args.find(a => a.startsWith(`--${name}=`))?.split('=')[1]
  return {
    seconds: Number(raw('seconds') ?? 5),
    bigMiB: Number(raw('big-mib') ?? 256),
    flatMiB: Number(raw('flat-mib') ?? 2048),
    clients: (raw('clients') ?? '1,4,16').split(',').map(Number),
    copies: (raw('copies') ?? '2,3').split(',').map(Number),
    sizes: (raw('sizes') ?? '4k,1m').split(','),
    ...(raw('profile') != null ? { profile: raw('profile') } : {}),
    syscalls: args.includes('--syscalls')
  }
}

const procStat = async (pid: number | undefined): Promise<{ cpuMs: number, peakMiB: number }> => ({ cpuMs: await cpuMsOf(pid), peakMiB: await peakRssMiB(pid) })

/** Reset the kernel's peak-RSS mark of a process (Linux: write 5 to clear_refs). */
async function resetPeakRss (pid: number | undefined): Promise<void> {
  await writeFile(`/proc/${pid ?? 0}/clear_refs`, '5').catch(() => {})
}

interface Run { perS: number, p50: number, p99: number, count: number, cpuMsPerUpload: number[], syscallsPerUpload?: Array<Record<string, number> | undefined> }

/** `clients` uploaders of `size`-byte files for `seconds` (each on its own keep-alive connection). */
async function uploads (url: string, size: number, clients: number, seconds: number, pids: Array<number | undefined> = [], query = ''): Promise<Run> {
  const latencies: number[] = []
  const deadline = performance.now() + seconds * 1000
  const before = await Promise.all(pids.map(procStat))
  let n = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: clients }, async (_, k) => {
    const dispatcher = new Agent({ connections: 1 })
    const body = new Uint8Array(size)
    try {
      while (performance.now() < deadline) {
        const i = n++
        new DataView(body.buffer).setUint32(0, i)
        new DataView(body.buffer).setUint32(4, k + Math.floor(Math.random() * 1e9))
        const t0 = performance.now()
        const res = await request(`${url}/files?name=b${i}.bin${query}`, { method: 'POST', body, dispatcher })
        const text = await res.body.text()
        if (res.statusCode !== 201) throw new Error(`upload failed: ${res.statusCode} ${text}`)
        latencies.push(performance.now() - t0)
      }
    } finally {
      await dispatcher.close()
    }
  }))
  const elapsed = (performance.now() - start) / 1000
  const after = await Promise.all(pids.map(procStat))
  return {
    perS: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    count: latencies.length,
    cpuMsPerUpload: pids.map((_, i) => ((after[i]?.cpuMs ?? NaN) - (before[i]?.cpuMs ?? NaN)) / latencies.length)
  }
}

/** One streamed upload of `mib` MiB; returns MB/s (10^6 bytes). */
async function bigUpload (url: string, mib: number, path = '/files?name=big.bin'): Promise<number> {
  const piece = new Uint8Array(MiB).map((_, i) => i * 31)
  let sent = 0
  const body = Readable.from((async function * () {
    for (; sent < mib; sent++) {
      const p = piece.slice()
      new DataView(p.buffer).setUint32(0, sent)
      yield p
    }
  })(), { objectMode: false })
  const start = performance.now()
  const res = await request(`${url}${path}`, { method: 'POST', body, headers: { 'content-length': String(mib * MiB) } })
  const text = await res.body.text()
  if (res.statusCode !== 201 && res.statusCode !== 200) throw new Error(`upload failed: ${res.statusCode} ${text}`)
  return mib * MiB / 1e6 / ((performance.now() - start) / 1000)
}

/** The baseline: HTTP POST → write + fsync one file, nothing else. */
async function baselineServer (dir: string): Promise<{ url: string, close: () => void }> {
  let n = 0
  const server = createServer((req, res) => {
    const path = join(dir, `b${n++}`)
    pipeline(req, createWriteStream(path)).then(async () => {
      const fh = await open(path, 'r+')
      await fh.sync()
      await fh.close()
      res.writeHead(201).end('{}')
    }).catch(() => { res.writeHead(500).end() })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => server.close() }
}

/** The disk itself: 4 KiB write+fdatasync in a loop (ms per op), and one sequential write+fdatasync (MB/s). */
async function rawDisk (dir: string, mib: number): Promise<{ small_p50_ms: number, small_p99_ms: number, small_per_s: number, seq_MBps: number }> {
  const fh = await open(join(dir, 'raw-small'), 'w')
  const block = new Uint8Array(4096).fill(1)
  const lat: number[] = []
  const start = performance.now()
  for (let i = 0; i < 2000; i++) {
    const t0 = performance.now()
    await fh.write(block, 0, block.byteLength, i * 4096)
    await fh.datasync()
    lat.push(performance.now() - t0)
  }
  const perS = lat.length / ((performance.now() - start) / 1000)
  await fh.close()
  const seq = await open(join(dir, 'raw-seq'), 'w')
  const piece = new Uint8Array(MiB).fill(2)
  const t0 = performance.now()
  for (let i = 0; i < mib; i++) await seq.write(piece, 0, piece.byteLength, i * MiB)
  await seq.datasync()
  const MBps = mib * MiB / 1e6 / ((performance.now() - t0) / 1000)
  await seq.close()
  return { small_p50_ms: percentile(lat, 50), small_p99_ms: percentile(lat, 99), small_per_s: perS, seq_MBps: MBps }
}

async function cluster (root: string, members: number, profiled: boolean): Promise<ProcNode[]> {
  const env = { DSM_LOG_LEVEL: 'error', ...(profiled ? INSPECT_ENV : {}) }
  const nodes: ProcNode[] = []
  nodes.push(await startProcNode({ dataDir: join(root, 'n1'), args: ['--group', 'g1'], env }))
  for (let i = 2; i <= members; i++) {
    nodes.push(await startProcNode({ dataDir: join(root, `n${i}`), args: ['--group', 'g1'], bootstrap: [nodes[0]?.addr ?? ''], env }))
  }
  await eventually(async () => JSON.parse((await dsm(['groups', '--json', '--node', nodes[0]?.url ?? ''])).stdout) as Array<{ members: Array<{ state: string }> }>,
    g => g[0]?.members.length === members && g[0].members.every(m => m.state === 'ACTIVE'), 30_000, 'group ready')
  return nodes
}

const NAMES = ['n1 (coordinator)', 'n2 (member)', 'n3 (member)']
async function profiled<T extends { count: number }> (dir: string | undefined, inspectors: Inspector[], name: string, work: () => Promise<T>): Promise<T> {
  return profiledOn(dir, inspectors, NAMES, name, work)
}

export async function run (argv: string[]): Promise<void> {
  const args = parseArgs(argv)
  const root = await mkdtemp(join(tmpdir(), 'dsm-bench-upload-'))
  if (args.profile != null) await mkdir(args.profile, { recursive: true })
  const runs: Record<string, Run> = {}
  const big: Record<string, number> = {}
  const rss: Record<string, number[]> = {}
  let disk: Awaited<ReturnType<typeof rawDisk>> | undefined
  const sizes = { '4k': 4096, '1m': MiB } as Record<string, number>
  try {
    disk = await rawDisk(root, args.bigMiB)
    const base = await baselineServer(await mkdtemp(join(root, 'baseline-')))
    for (const clients of args.clients) {
      for (const size of args.sizes) runs[`baseline_${size}_${clients}`] = await uploads(base.url, sizes[size] ?? 0, clients, args.seconds)
    }
    if (args.bigMiB > 0) big.baseline = await bigUpload(base.url, args.bigMiB, '/')
    base.close()
    for (const copies of args.copies) {
      const nodes = await cluster(join(root, `c${copies}`), copies, args.profile != null)
      const inspectors = args.profile != null ? await Promise.all(nodes.map(async n => Inspector.of(n))) : []
      const url = nodes[0]?.url ?? ''
      const pids = nodes.map(n => n.proc.pid)
      rss[`copies${copies}_idle`] = (await Promise.all(pids.map(procStat))).map(s => s.peakMiB)
      await Promise.all(pids.map(resetPeakRss))
      for (const clients of args.clients) {
        for (const size of args.sizes) {
          const name = `copies${copies}_${size}_${clients}`
          const cell = async (): Promise<Run> => uploads(url, sizes[size] ?? 0, clients, args.seconds, pids, '&group=g1')
          if (args.syscalls) {
            const { result, counts } = await countSyscalls(pids, cell)
            runs[name] = { ...result, syscallsPerUpload: counts.map(c => c == null ? undefined : Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v / result.count]))) }
          } else {
            runs[name] = await profiled(args.profile, inspectors, name, cell)
          }
        }
      }
      rss[`copies${copies}_uploads`] = (await Promise.all(pids.map(procStat))).map(s => s.peakMiB)
      await Promise.all(pids.map(resetPeakRss))
      if (args.bigMiB > 0) {
        big[`copies${copies}`] = (await profiled(args.profile, inspectors, `copies${copies}_${args.bigMiB}MiB`, async () => ({ count: 1, MBps: await bigUpload(url, args.bigMiB, '/files?name=big.bin&group=g1') }))).MBps
        rss[`copies${copies}_${args.bigMiB}MiB_file`] = (await Promise.all(pids.map(procStat))).map(s => s.peakMiB)
      }
      if (copies === 2 && args.flatMiB > 0) {
        // Memory stays flat with file size: an 8x larger file must not raise the peak.
        await Promise.all(pids.map(resetPeakRss))
        big.flat = await bigUpload(url, args.flatMiB, '/files?name=flat.bin&group=g1')
        rss[`copies2_${args.flatMiB}MiB_file`] = (await Promise.all(pids.map(procStat))).map(s => s.peakMiB)
      }
      for (const i of inspectors) i.close()
      await Promise.all(nodes.map(async n => n.stop()))
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
  const ratio = (a: number | undefined, b: number | undefined): number => (a ?? NaN) / (b ?? NaN)
  const rows: Array<Array<string | number>> = []
  for (const size of ['4k', '1m']) {
    for (const clients of args.clients) {
      for (const who of ['baseline', 'copies2', 'copies3']) {
        const r = runs[`${who}_${size}_${clients}`]
        if (r == null) continue
        rows.push([`${size === '4k' ? '4 KiB' : '1 MiB'}, ${clients} client${clients > 1 ? 's' : ''}`, who, r.perS, r.p50, r.p99,
          who === 'baseline' ? '' : r.cpuMsPerUpload.map(c => c.toFixed(2)).join(' / '),
          who === 'baseline' ? '' : `${ratio(r.perS, runs[`baseline_${size}_${clients}`]?.perS).toFixed(2)}×`])
      }
    }
  }
  printTable(`uploads, ${args.seconds} s per cell (bin/dsm node processes, TCP loopback, 2 cores)`,
    ['workload', 'who', 'uploads/s', 'p50 ms', 'p99 ms', 'CPU ms/upload per node', 'vs baseline'], rows)
  if (args.syscalls) {
    const counted = Object.entries(runs).filter(([, r]) => r.syscallsPerUpload != null)
    printTable('system calls per upload, each node (perf stat; coordinator / member[s])', ['cell', ...SYSCALLS],
      counted.map(([name, r]) => [name, ...SYSCALLS.map(s => (r.syscallsPerUpload ?? []).map(c => (c?.[s] ?? NaN).toFixed(2)).join(' / '))]))
  }
  printTable(`one ${args.bigMiB} MiB upload (MB/s)`, ['baseline (write+fsync)', '2 copies', '3 copies', '2 copies / baseline'],
    [[big.baseline ?? NaN, big.copies2 ?? NaN, big.copies3 ?? NaN, `${ratio(big.copies2, big.baseline).toFixed(2)}×`]])
  if (disk != null) {
    printTable('the disk itself', ['4 KiB write+fdatasync p50 ms', 'p99 ms', 'ops/s', `sequential ${args.bigMiB} MiB write+fdatasync MB/s`],
      [[disk.small_p50_ms, disk.small_p99_ms, disk.small_per_s, disk.seq_MBps]])
  }
  if (big.flat != null) process.stdout.write(`\none ${args.flatMiB} MiB file, 2 copies: ${big.flat.toFixed(1)} MB/s\n`)
  printTable('peak RSS per node during each phase (MiB)', ['phase', 'n1 (coordinator)', 'n2', 'n3'],
    Object.entries(rss).map(([k, v]) => [k, v[0] ?? NaN, v[1] ?? NaN, v[2] ?? NaN]))
  const results = {
    small_2copies_vs_baseline: ratio(runs.copies2_4k_16?.perS, runs.baseline_4k_16?.perS),
    medium_2copies_vs_baseline: ratio(runs.copies2_1m_4?.perS, runs.baseline_1m_4?.perS),
    big_2copies_vs_baseline: ratio(big.copies2, big.baseline)
  }
  process.stdout.write(`\nratios: ${JSON.stringify(results)}\n`)
  const path = writeResults('upload', { args, ...results, disk, runs, big_MBps: big, peak_rss_mb: rss })
  process.stdout.write(`wrote ${path}\n`)
}
