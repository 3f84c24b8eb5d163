/**
 * `npm run bench -- load [--seconds=60] [--clients=64]`: the mixed load of
 * test/sim/load.ts (uploads 4 KiB–2 MiB, GETs, Ranges, a few deletes
 * through every node) on 4 `bin/dsm node` processes (ga: 3 members, gb: 1),
 * twice: on a healthy cluster, and with one ga member killed (SIGKILL) a
 * third of the way in and restarted at two thirds. Reports throughput,
 * p50/p99 per operation, status counts, and each node's RSS over time: idle
 * before, peak during, right after, and after a quiet period (memory must come
 * back near idle plus the configured cache, --cache-size=…, default 256MiB).
 * Then every acknowledged file is
 * read from every node and compared (sha256).
 */
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { runMixedLoad, serverErrors } from '../test/sim/load.ts'
import { dsm, eventually, startProcNode } from '../test/sim/proc.ts'
import { percentile, printTable, writeResults } from './lib.ts'
import type { LoadResult } from '../test/sim/load.ts'
import type { ProcNode, ProcNodeInit } from '../test/sim/proc.ts'

interface Args { seconds: number, clients: number, quietSeconds: number, cacheSize: string }

function parseArgs (args: string[]): Args {
  const raw = (name: string): string | undefined => args.find(a => a.startsWith(`--${name}=`))?.split('=')[1]
  const get = (name: string, def: number): number => Number(raw(name) ?? def)
  return { seconds: get('seconds', 60), clients: get('clients', 64), quietSeconds: get('quiet-seconds', 20), cacheSize: raw('cache-size') ?? '256MiB' }
}

/** The node's own account of its memory (MiB by kind), from /metrics. */
async function memoryOf (url: string | undefined): Promise<Record<string, number>> {
  const text = await (await fetch(`${url ?? ''}/metrics`).catch(() => undefined))?.text() ?? ''
  return Object.fromEntries([...text.matchAll(/^dsm_process_memory_bytes\{kind="(\w+)"\} (\S+)$/gm)].map(m => [m[1] as string, Number(m[2]) / 1024 / 1024]))
}

async function rssMiB (pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid ?? 0}/status`, 'utf8').catch(() => '')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024
}

interface Node { name: string, init: ProcNodeInit, proc?: ProcNode }

async function startCluster (root: string, args: Args): Promise<Node[]> {
  const env = { DSM_LOG_LEVEL: 'error', DSM_CACHE_SIZE: args.cacheSize }
  const nodes: Node[] = [['n1', 'ga'], ['n2', 'ga'], ['n3', 'ga'], ['n4', 'gb']].map(([name, group]) => ({
    name: name as string,
    init: { dataDir: join(root, name as string), args: ['--group', group as string], env }
  }))
  const first = nodes[0] as Node
  first.proc = await startProcNode(first.init)
  for (const n of nodes.slice(1)) {
    n.init = { ...n.init, bootstrap: [first.proc.addr] }
    n.proc = await startProcNode(n.init)
  }
  await eventually(async () => JSON.parse((await dsm(['groups', '--json', '--node', first.proc?.url ?? ''])).stdout) as Array<{ members: Array<{ state: string }> }>,
    g => g.flatMap(x => x.members).filter(m => m.state === 'ACTIVE').length === 4, 30_000, 'cluster ACTIVE')
  return nodes
}

/** Sample every node's RSS each second until `stop` resolves. */
function sampleRss (nodes: Node[], until: Promise<unknown>): Promise<Array<{ t: number, rss: number[] }>> {
  const samples: Array<{ t: number, rss: number[] }> = []
  const started = performance.now()
  let done = false
  void until.finally(() => { done = true })
  return (async () => {
    while (!done) {
      samples.push({ t: Math.round((performance.now() - started) / 1000), rss: await Promise.all(nodes.map(async n => rssMiB(n.proc?.proc.pid))) })
      await sleep(1000)
    }
    return samples
  })()
}

async function verify (nodes: Node[], result: LoadResult): Promise<{ checked: number, wrong: number }> {
  let checked = 0
  let wrong = 0
  for (const [id, file] of result.files) {
    for (const n of nodes) {
      const res = await fetch(`${n.proc?.url ?? ''}/files/${id}`)
      const hash = createHash('sha256').update(new Uint8Array(await res.arrayBuffer())).digest('hex')
      checked++
      if (res.status !== 200 || hash !== file.sha256) wrong++
    }
  }
  return { checked, wrong }
}

interface Phase {
  name: string
  result: LoadResult
  rss: Array<{ t: number, rss: number[] }>
  idleBefore: number[]
  after: number[]
  afterQuiet: number[]
  /** Each node's breakdown after the quiet period (MiB by kind: rss, heap_used, external, …). */
  breakdown: Array<Record<string, number>>
  verified: { checked: number, wrong: number }
  exited: string[]
}

async function phase (name: string, nodes: Node[], args: Args, fault?: (nodes: Node[]) => Promise<void>): Promise<Phase> {
  const idleBefore = await Promise.all(nodes.map(async n => rssMiB(n.proc?.proc.pid)))
  const load = runMixedLoad({ urls: () => nodes.flatMap(n => n.proc != null && n.proc.proc.exitCode == null ? [n.proc.url] : []), clients: args.clients, durationMs: args.seconds * 1000, seed: 11 })
  const rss = sampleRss(nodes, load)
  const faulted = fault?.(nodes)
  const result = await load
  await faulted
  const after = await Promise.all(nodes.map(async n => rssMiB(n.proc?.proc.pid)))
  await sleep(args.quietSeconds * 1000)
  const afterQuiet = await Promise.all(nodes.map(async n => rssMiB(n.proc?.proc.pid)))
  const breakdown = await Promise.all(nodes.map(async n => memoryOf(n.proc?.url)))
  const exited = nodes.filter(n => n.proc?.proc.exitCode != null || n.proc?.proc.signalCode != null).map(n => n.name)
  const verified = await verify(nodes, result)
  return { name, result, rss: await rss, idleBefore, after, afterQuiet, breakdown, verified, exited }
}

/** Kill ga's second member a third of the way in, restart it at two thirds (same data dir and ports). */
function killAndRestart (args: Args): (nodes: Node[]) => Promise<void> {
  return async (nodes) => {
    const victim = nodes[1] as Node
    await sleep(args.seconds * 1000 / 3)
    const port = (u: string): number => Number(new URL(u).port)
    const tcpPort = Number(/\/tcp\/(\d+)/.exec(victim.proc?.addr ?? '')?.[1])
    const httpPort = port(victim.proc?.url ?? '')
    await victim.proc?.stop('SIGKILL')
    victim.proc = undefined
    await sleep(args.seconds * 1000 / 3)
    victim.proc = await startProcNode({ ...victim.init, tcpPort, httpPort })
  }
}

export async function run (argv: string[]): Promise<void> {
  const args = parseArgs(argv)
  const root = await mkdtemp(join(tmpdir(), 'dsm-bench-load-'))
  const phases: Phase[] = []
  try {
    for (const [name, fault] of [['healthy', undefined], ['member killed and restarted', killAndRestart(args)]] as const) {
      const nodes = await startCluster(join(root, name.replaceAll(' ', '-')), args)
      try {
        phases.push(await phase(name, nodes, args, fault))
      } finally {
        await Promise.all(nodes.map(async n => n.proc?.stop()))
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true })
  }
  const rows: Array<Array<string | number>> = []
  for (const p of phases) {
    const secs = p.result.elapsedMs / 1000
    for (const [op, s] of Object.entries(p.result.ops)) {
      rows.push([p.name, op, s.count, s.count / secs, percentile(s.latenciesMs, 50), percentile(s.latenciesMs, 99), Object.entries(s.statuses).map(([k, v]) => `${k}:${v}`).join(' ')])
    }
  }
  printTable(`mixed load, ${args.clients} clients for ${args.seconds} s on 4 node processes (ga: 3, gb: 1)`,
    ['phase', 'op', 'count', 'per s', 'p50 ms', 'p99 ms', 'statuses'], rows)
  printTable('RSS per node (MiB): idle before / peak during / right after / after a quiet period',
    ['phase', 'n1', 'n2', 'n3', 'n4'],
    phases.map(p => [p.name, ...[0, 1, 2, 3].map(i => `${(p.idleBefore[i] ?? NaN).toFixed(0)} / ${Math.max(...p.rss.map(s => s.rss[i] ?? 0)).toFixed(0)} / ${(p.after[i] ?? NaN).toFixed(0)} / ${(p.afterQuiet[i] ?? NaN).toFixed(0)}`)]))
  printTable('memory after the quiet period, by kind (MiB; the node\'s own process.memoryUsage)', ['phase', 'node', 'rss', 'heap used', 'heap total', 'external', 'array buffers'],
    phases.flatMap(p => p.breakdown.map((b, i) => [p.name, `n${i + 1}`, b.rss ?? NaN, b.heap_used ?? NaN, b.heap_total ?? NaN, b.external ?? NaN, b.array_buffers ?? NaN])))
  for (const p of phases) {
    process.stdout.write(`\n${p.name}: ${p.result.files.size} files acknowledged and kept, ${p.result.deleted.size} deleted; ` +
      `5xx ${serverErrors(p.result)}, broken ${Object.values(p.result.broken).reduce((a, b) => a + b, 0)}, wrong bytes during load ${p.result.mismatches}; ` +
      `verified afterwards ${p.verified.checked} reads, ${p.verified.wrong} wrong; nodes exited: ${p.exited.length === 0 ? 'none' : p.exited.join(', ')}\n`)
  }
  const path = writeResults('load', {
    args,
    phases: phases.map(p => ({
      name: p.name,
      elapsed_s: p.result.elapsedMs / 1000,
      ops: Object.fromEntries(Object.entries(p.result.ops).map(([op, s]) => [op, { count: s.count, per_s: s.count / (p.result.elapsedMs / 1000), p50_ms: percentile(s.latenciesMs, 50), p99_ms: percentile(s.latenciesMs, 99), statuses: s.statuses }])),
      server_errors: serverErrors(p.result),
      broken: p.result.broken,
      mismatches: p.result.mismatches,
      verified: p.verified,
      exited: p.exited,
      memory_mib_after_quiet: p.breakdown,
      rss_mib: { idle_before: p.idleBefore, peak: [0, 1, 2, 3].map(i => Math.max(...p.rss.map(s => s.rss[i] ?? 0))), after: p.after, after_quiet: p.afterQuiet, over_time: p.rss }
    }))
  })
  process.stdout.write(`\nwrote ${path}\n`)
}
