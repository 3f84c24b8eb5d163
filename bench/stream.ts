/**
 * `npm run bench -- stream`: a 256 MiB file on a local cluster of `bin/dsm node`
 * processes over TCP — n1, n2 in g1 hold it; n3 and n4 do not (n4 reads from one
 * replica at a time (the default), n3 from both in parallel; both with their cache off so
 * every byte crosses the network). Measures, in the same run:
 *   (a) GET from a node holding it       (b) GET from a node that does not
 *   (c) a bare libp2p stream (dsm's TLS on the socket + yamux; and with @libp2p/tls)
 *   (d) raw TCP     (e) nginx, if installed
 * plus time to first byte of 200 random Range requests on a holder and a
 * non-holder, the CPU ms of each node per MiB served and per Range request
 * (from /proc), and peak RSS of each node. `--profile=DIR` adds one profiled
 * pass of each cell (./inspect.ts) and prints where each node's time went.
 * Writes bench/results/stream.json.
 */
import { execFileSync, spawn } from 'node:child_process'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { dsm, eventually, startProcNode } from '../test/sim/proc.ts'
import { Inspector, INSPECT_ENV, profiled } from './inspect.ts'
import { MiB, cpuDuring, peakRssMiB, percentile, printTable, stats, writeResults } from './lib.ts'
import { measureTransport } from './transport.ts'
import type { ProcNode } from '../test/sim/proc.ts'

// One HTTP client for every server measured (dsm, nginx): undici's request, on a keep-alive connection.
const client = new Agent({ connections: 4 })

/** MiB/s of a full GET, body consumed and counted. */
async function getMBps (url: string, expected: number): Promise<number> {
  const start = performance.now()
  const res = await request(url, { dispatcher: client })
  let n = 0
  for await (const chunk of res.body) n += (chunk as Buffer).byteLength
  if (n !== expected) throw new Error(`short body from ${url}: ${n} of ${expected}`)
  return (n / MiB) / ((performance.now() - start) / 1000)
}

/** Milliseconds to the first body byte of a Range request. */
async function ttfbMs (url: string, range: string): Promise<number> {
  const start = performance.now()
  const res = await request(url, { headers: { range }, dispatcher: client })
  let ms = NaN
  // The rest of a 64 KiB answer is read too (it is small), so the connection is reused cleanly.
  for await (const _ of res.body) if (Number.isNaN(ms)) ms = performance.now() - start
  if (res.statusCode !== 206) throw new Error(`range answered ${res.statusCode}`)
  return ms
}

async function startNginx (dir: string, file: string): Promise<{ url: string, stop: () => void } | undefined> {
  try { execFileSync('nginx', ['-v'], { stdio: 'ignore' }) } catch { return undefined }
  const port = 18000 + Math.floor(Math.random() * 1000)
  // nginx workers run as an unprivileged user: let them read the file.
  await chmod(dir, 0o755)
  await chmod(join(dir, file), 0o644)
  const conf = join(dir, 'nginx.conf')
  await writeFile(conf, `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 64; }
http { access_log off; sendfile on; server { listen 127.0.0.1:${port}; root ${dir}; location / { } } }
`)
  const proc = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' })
  const url = `http://127.0.0.1:${port}/${file}`
  await eventually(async () => (await fetch(url, { method: 'HEAD' })).status, s => s === 200, 10_000, 'nginx up')
  return { url, stop: () => { proc.kill() } }
}

export async function run (argv: string[]): Promise<void> {
  const mib = Number(argv.find(a => a.startsWith('--mib='))?.split('=')[1] ?? 256)
  const rounds = Number(argv.find(a => a.startsWith('--rounds='))?.split('=')[1] ?? 3)
  const seeks = Number(argv.find(a => a.startsWith('--seeks='))?.split('=')[1] ?? 200)
  const profileDir = argv.find(a => a.startsWith('--profile='))?.split('=')[1]
  const root = await mkdtemp(join(tmpdir(), 'dsm-bench-stream-'))
  const nodes: ProcNode[] = []
  const env = { DSM_LOG_LEVEL: 'error', ...(profileDir != null ? INSPECT_ENV : {}) }
  try {
    nodes.push(await startProcNode({ dataDir: join(root, 'n1'), args: ['--group', 'g1'], env }))
    const boot = [nodes[0]?.addr ?? '']
    nodes.push(await startProcNode({ dataDir: join(root, 'n2'), args: ['--group', 'g1'], bootstrap: boot, env }))
    nodes.push(await startProcNode({ dataDir: join(root, 'n3'), args: ['--spare', '--cache-size', '0'], bootstrap: boot, env: { ...env, DSM_READ_SOURCES: '3' } }))
    nodes.push(await startProcNode({ dataDir: join(root, 'n4'), args: ['--spare', '--cache-size', '0'], bootstrap: boot, env: { ...env, DSM_READ_SOURCES: '1' } }))
    const [n1, , n3, n4] = nodes as [ProcNode, ProcNode, ProcNode, ProcNode]
    await eventually(async () => JSON.parse((await dsm(['peers', '--json', '--node', n3.url])).stdout) as Array<{ state: string }>,
      p => p.length === 4 && p.every(m => m.state === 'ACTIVE'), 30_000, 'cluster ready')

    const data = new Uint8Array(mib * MiB)
    for (let i = 0; i < data.byteLength; i += 4096) new DataView(data.buffer).setUint32(i, (i * 2654435761) >>> 0)
    const fileName = 'media.bin'
    await writeFile(join(root, fileName), data)
    const up = await fetch(`${n1.url}/files?name=${fileName}&group=g1`, { method: 'POST', body: data })
    const { id } = await up.json() as { id: string }
    if (up.status !== 201) throw new Error(`upload failed: ${up.status}`)

    const pids = nodes.map(n => n.proc.pid)
    const url = (n: ProcNode): string => `${n.url}/files/${id}`
    const local = []; const remote = []; const remote1 = []
    // CPU ms of n1..n4 per cell, summed over its rounds.
    const cpu = { local: [] as number[], remote: [] as number[], remote1: [] as number[], rangeRemote: [] as number[], rangeLocal: [] as number[] }
    for (let r = 0; r < rounds; r++) {
      local.push(await cpuDuring(pids, cpu.local, async () => getMBps(url(n1), data.byteLength)))
      remote.push(await cpuDuring(pids, cpu.remote, async () => getMBps(url(n3), data.byteLength)))
      remote1.push(await cpuDuring(pids, cpu.remote1, async () => getMBps(url(n4), data.byteLength)))
    }
    const ttfbRemote: number[] = []
    const ttfbLocal: number[] = []
    const ranges = Array.from({ length: seeks }, () => Math.floor(Math.random() * (data.byteLength - 65_536)))
    // (CPU over the whole series: /proc counts in 10 ms steps.)
    await cpuDuring(pids, cpu.rangeRemote, async () => { for (const at of ranges) ttfbRemote.push(await ttfbMs(url(n3), `bytes=${at}-${at + 65_535}`)) })
    await cpuDuring(pids, cpu.rangeLocal, async () => { for (const at of ranges) ttfbLocal.push(await ttfbMs(url(n1), `bytes=${at}-${at + 65_535}`)) })
    if (profileDir != null) {
      process.stderr.write('profiling each cell once more\n')
      await mkdir(profileDir, { recursive: true })
      const inspectors = await Promise.all(nodes.map(async n => Inspector.of(n)))
      const names = ['n1 (holder)', 'n2 (holder)', 'n3 (reader, 3 sources)', 'n4 (reader, 1 source)']
      const whole = async (n: ProcNode): Promise<{ count: number }> => { await getMBps(url(n), data.byteLength); return { count: mib } }
      const seek = async (n: ProcNode): Promise<{ count: number }> => { for (const at of ranges) await ttfbMs(url(n), `bytes=${at}-${at + 65_535}`); return { count: ranges.length } }
      try {
        await profiled(profileDir, inspectors, names, 'get-holder', async () => whole(n1))
        await profiled(profileDir, inspectors, names, 'get-nonholder-1-source', async () => whole(n4))
        await profiled(profileDir, inspectors, names, 'range-holder', async () => seek(n1))
        await profiled(profileDir, inspectors, names, 'range-nonholder', async () => seek(n3))
      } finally {
        for (const i of inspectors) i.close()
      }
    }
    const rss = await Promise.all(nodes.map(async n => peakRssMiB(n.proc.pid)))
    await Promise.all(nodes.map(async n => n.stop()))
    nodes.length = 0

    // The bare stream with dsm's own stack (TLS on the socket: src/net/socket-tls.ts), and with @libp2p/tls.
    const libp2p = await measureTransport('tls-socket', mib, rounds)
    const libp2pTls = await measureTransport('tls', mib, rounds)
    const tcp = await measureTransport('tcp', mib, rounds)
    const nginx = await startNginx(root, fileName)
    const nginxMBps: number[] = []
    // nginx is the baseline of the Range rows too: the same 64 KiB ranges, from its page cache.
    const ttfbNginx: number[] = []
    if (nginx != null) {
      for (let r = 0; r < rounds; r++) nginxMBps.push(await getMBps(nginx.url, data.byteLength))
      for (const at of ranges) ttfbNginx.push(await ttfbMs(nginx.url, `bytes=${at}-${at + 65_535}`))
      nginx.stop()
    }

    const med = (v: number[]): number => stats(v).median
    const perOp = (ms: number[], ops: number): number[] => ms.map(v => Math.round(1000 * v / ops) / 1000)
    const cpuCell = (ms: number[]): string => ms.map(v => v.toFixed(2)).join(' / ')
    const result = {
      local_MBps: med(local),
      remote_MBps: med(remote),
      remote_one_source_MBps: med(remote1),
      libp2p_MBps: med(libp2p),
      libp2p_tls_duplex_MBps: med(libp2pTls),
      tcp_MBps: med(tcp),
      nginx_MBps: nginx != null ? med(nginxMBps) : null,
      ttfb_p50_ms: percentile(ttfbRemote, 50),
      ttfb_p99_ms: percentile(ttfbRemote, 99),
      ttfb_local_p50_ms: percentile(ttfbLocal, 50),
      ttfb_local_p99_ms: percentile(ttfbLocal, 99),
      peak_rss_mb: { n1_holder: rss[0], n2_holder: rss[1], n3_reader: rss[2], n4_reader_one_source: rss[3] },
      local_vs_nginx: nginx != null ? med(local) / med(nginxMBps) : null,
      remote_vs_libp2p: med(remote1) / med(libp2p),
      ttfb_holder_p50_ms: percentile(ttfbLocal, 50),
      ttfb_holder_p99_ms: percentile(ttfbLocal, 99),
      ttfb_remote_p50_ms: percentile(ttfbRemote, 50),
      ttfb_remote_p99_ms: percentile(ttfbRemote, 99),
      ttfb_nginx_p50_ms: nginx != null ? percentile(ttfbNginx, 50) : null,
      ttfb_nginx_p99_ms: nginx != null ? percentile(ttfbNginx, 99) : null,
      // CPU ms of each node (n1, n2 hold the file; n3, n4 read it from them) per MiB served, per Range request.
      cpu_ms_per_MiB: { local: perOp(cpu.local, rounds * mib), remote: perOp(cpu.remote, rounds * mib), remote_one_source: perOp(cpu.remote1, rounds * mib) },
      cpu_ms_per_range: { holder: perOp(cpu.rangeLocal, seeks), nonholder: perOp(cpu.rangeRemote, seeks) }
    }
    const ratio = (a: number, b: number | null): string => b == null ? 'n/a' : `${(a / b).toFixed(2)}`
    printTable(`streaming a ${mib} MiB file (MiB/s, median of ${rounds}; TCP loopback, 2 cores)`, ['path', 'MiB/s'], [
      ['(a) GET from a node holding it', result.local_MBps],
      ['(b) GET from a node that does not (2 replicas in parallel)', result.remote_MBps],
      ['(b1) the same, one replica at a time', result.remote_one_source_MBps],
      ['(c) bare libp2p stream, TLS on the socket + yamux (dsm\'s stack)', result.libp2p_MBps],
      ['(c2) the same with @libp2p/tls (TLS through a JS Duplex)', result.libp2p_tls_duplex_MBps],
      ['(d) raw TCP', result.tcp_MBps],
      ['(e) nginx, sendfile from disk', result.nginx_MBps ?? (nginx == null ? 'skipped: nginx not installed' : NaN)]
    ])
    printTable('CPU ms per MiB served, per Range request (n1 / n2 hold the file; n3 / n4 read it from them)', ['cell', 'n1 / n2 / n3 / n4'], [
      ['(a) GET from n1, per MiB', cpuCell(result.cpu_ms_per_MiB.local)],
      ['(b) GET from n3, per MiB', cpuCell(result.cpu_ms_per_MiB.remote)],
      ['(b1) GET from n4, per MiB', cpuCell(result.cpu_ms_per_MiB.remote_one_source)],
      ['64 KiB Range on n1, per request', cpuCell(result.cpu_ms_per_range.holder)],
      ['64 KiB Range on n3, per request', cpuCell(result.cpu_ms_per_range.nonholder)]
    ])
    printTable('ratios', ['ratio', 'value'], [['b1/c (remote GET, one replica, vs bare libp2p stream)', ratio(result.remote_one_source_MBps, result.libp2p_MBps)], ['a/e (local GET vs nginx)', ratio(result.local_MBps, result.nginx_MBps)]])
    printTable(`time to first byte of ${seeks} random 64 KiB Range requests (ms)`, ['node', 'p50', 'p99'], [
      ['n3, not holding the file', result.ttfb_p50_ms, result.ttfb_p99_ms],
      ['n1, holding it', result.ttfb_local_p50_ms, result.ttfb_local_p99_ms],
      ['nginx, the same ranges (baseline)', result.ttfb_nginx_p50_ms ?? 'skipped', result.ttfb_nginx_p99_ms ?? 'skipped']
    ])
    printTable('peak RSS (MiB)', ['n1 (holder)', 'n2 (holder)', 'n3 (reader)', 'n4 (reader, 1 source)'], [rss.map(r => r ?? NaN)])
    process.stdout.write(`\nwrote ${writeResults('stream', { mib, rounds, seeks, ...result, samples: { local, remote, remote1, libp2p, libp2pTls, tcp, nginx: nginxMBps } })}\n`)
  } finally {
    await Promise.all(nodes.map(async n => n.stop()))
    await rm(root, { recursive: true, force: true })
  }
}
