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
 *
 * `npm run bench -- load --soak [--soak-gib=3] [--clients=32]`: a soak across
 * volume boundaries at the default (1 GiB) volume size — see `soak` below.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { runMixedLoad, serverErrors } from '../test/sim/load.ts'
import { dsm, eventually, startProcNode } from '../test/sim/proc.ts'
import { MiB, percentile, printTable, writeResults } from './lib.ts'
import type { LoadAnswer, LoadResult } from '../test/sim/load.ts'
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

interface Node {
  name: string
  init: ProcNodeInit
  proc?: ProcNode
  /** Output of its processes that were killed (checked for leak warnings with the live one's). */
  past?: string
}

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

async function verify (nodes: Node[], result: LoadResult): Promise<{ checked: number, wrong: number, examples: string[] }> {
  // Every member caught up first (a restarted one fetches what it missed): then every node must serve every file.
  const url = nodes[0]?.proc?.url ?? ''
  await eventually(async () => JSON.parse((await dsm(['groups', '--json', '--node', url])).stdout) as Array<{ members: Array<{ state: string, sync: { filesToGo: number } }> }>,
    g => g.flatMap(x => x.members).every(m => m.state === 'ACTIVE' && m.sync.filesToGo === 0), 120_000, 'every member ACTIVE and caught up')
  let checked = 0
  let wrong = 0
  const examples: string[] = []
  for (const [id, file] of result.files) {
    for (const n of nodes) {
      const res = await fetch(`${n.proc?.url ?? ''}/files/${id}`)
      const body = new Uint8Array(await res.arrayBuffer())
      const hash = createHash('sha256').update(body).digest('hex')
      checked++
      if (res.status !== 200 || hash !== file.sha256) {
        wrong++
        if (examples.length < 10) examples.push(`${n.name} ${id} ${res.status} ${res.status === 200 ? 'wrong bytes' : new TextDecoder().decode(body).slice(0, 200)}`)
      }
    }
  }
  // A delete that failed with a 5xx: deleted or kept, but the same everywhere.
  for (const [id, file] of result.uncertain) {
    const answers = await Promise.all(nodes.map(async n => {
      const res = await fetch(`${n.proc?.url ?? ''}/files/${id}`)
      const body = new Uint8Array(await res.arrayBuffer())
      return res.status === 200 && createHash('sha256').update(body).digest('hex') === file.sha256 ? 'kept' : res.status === 404 ? 'deleted' : `${res.status}`
    }))
    checked += nodes.length
    if (new Set(answers).size !== 1 || (answers[0] !== 'kept' && answers[0] !== 'deleted')) {
      wrong++
      if (examples.length < 10) examples.push(`${id} after a failed delete: ${answers.join(' ')}`)
    }
  }
  return { checked, wrong, examples }
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
  verified: { checked: number, wrong: number, examples: string[] }
  exited: string[]
  /** File handles left to the garbage collector, from every node process's output. */
  leaks: string[]
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
  const leaks = nodes.flatMap(n => `${n.past ?? ''}\n${n.proc?.output() ?? ''}`.split('\n').filter(l => LEAK.test(l)).map(l => `${n.name}: ${l.trim()}`))
  return { name, result, rss: await rss, idleBefore, after, afterQuiet, breakdown, verified, exited, leaks }
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
    victim.past = (victim.past ?? '') + (victim.proc?.output() ?? '')
    victim.proc = undefined
    await sleep(args.seconds * 1000 / 3)
    victim.proc = await startProcNode({ ...victim.init, tcpPort, httpPort })
  }
}

export async function run (argv: string[]): Promise<void> {
  if (argv.includes('--soak')) return soak(argv)
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
      `verified afterwards ${p.verified.checked} reads, ${p.verified.wrong} wrong; nodes exited: ${p.exited.length === 0 ? 'none' : p.exited.join(', ')}; ` +
      `file handles left to the garbage collector: ${p.leaks.length}\n` + p.leaks.slice(0, 5).map(l => `  ${l}\n`).join('') + p.verified.examples.map(e => `  wrong: ${e}\n`).join(''))
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
      leak_warnings: p.leaks.length,
      memory_mib_after_quiet: p.breakdown,
      rss_mib: { idle_before: p.idleBefore, peak: [0, 1, 2, 3].map(i => Math.max(...p.rss.map(s => s.rss[i] ?? 0))), after: p.after, after_quiet: p.afterQuiet, over_time: p.rss }
    }))
  })
  process.stdout.write(`\nwrote ${path}\n`)
}

/*
 * --soak: 32 clients upload 64 KiB–4 MiB files through both members of a
 * 2-member group while 8 readers check acknowledged files (whole and Range),
 * until each member holds --soak-gib GiB of files (dsm_store_bytes); when B
 * holds half, it is killed (SIGKILL) and restarted from its data at the same
 * address. Then every acknowledged file is read from both members and
 * compared (sha256), and every node process's output is searched for the
 * garbage-collected file handle warning that the volume-rotation race left.
 * It fails (exit 1) on a lost or wrong file or a leak warning.
 * test/node/soak.test.ts is the short version, with 4 MiB volumes.
 */

const GiB = 1024 * MiB
const LEAK = /Closing file descriptor \d+ on garbage collection|DEP0137/

interface Member { peerId: string, state: string, sync: { filesToGo: number } }

async function members (url: string): Promise<Member[]> {
  const groups = await (await fetch(`${url}/api/groups`)).json() as Array<{ name: string, members: Member[] }>
  return groups.find(g => g.name === 'g1')?.members ?? []
}

async function metric (url: string, name: string): Promise<number> {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await fetch(`${url}/metrics`)).text())
  if (m == null) throw new Error(`${url}/metrics has no ${name}`)
  return Number(m[1])
}

/** Bytes of the volume files on disk (garbage of refused uploads included, until compaction). */
async function volumeBytes (dataDir: string): Promise<number> {
  const dir = join(dataDir, 'volumes')
  const sizes = await Promise.all((await readdir(dir).catch(() => [])).map(async n => (await stat(join(dir, n))).size))
  return sizes.reduce((a, b) => a + b, 0)
}

/** Run `fn` over `items`, `n` at a time (each read or stat also costs the nodes; the bench should not swamp them). */
async function eachLimited<T> (items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items]
  await Promise.all(Array.from({ length: n }, async () => { for (let x = queue.pop(); x !== undefined; x = queue.pop()) await fn(x) }))
}

/** Of these files, those not committed whole on both members, as `url` finds out: id → what it said. */
async function notOnBoth (url: string, ids: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  await eachLimited(ids, 8, async id => {
    const st = await (await fetch(`${url}/api/files/${id}`)).json() as { replicas?: Array<{ copy: string }> }
    if (st.replicas?.length !== 2 || st.replicas.some(r => r.copy !== 'present')) out.set(id, `${id}: ${JSON.stringify(st.replicas ?? st)}`)
  })
  return out
}

/** The files a member holds committed: an ACTIVE member lists its own group from its own index (replica/list.ts). */
async function heldBy (url: string): Promise<Set<string>> {
  return new Set((await (await fetch(`${url}/api/files`)).json() as Array<{ id: string }>).map(f => f.id))
}

/** Every acknowledged file from every node: those missing or different. */
async function readBack (urls: string[], files: LoadResult['files']): Promise<string[]> {
  const lost: string[] = []
  await eachLimited([...files].flatMap(([id, f]) => urls.map(url => ({ id, f, url }))), 4, async ({ id, f, url }) => {
    const res = await fetch(`${url}/files/${id}`)
    const hash = createHash('sha256')
    for await (const chunk of res.body ?? []) hash.update(chunk)
    if (res.status !== 200 || hash.digest('hex') !== f.sha256) lost.push(`${id} from ${url}: ${res.status}`)
  })
  return lost
}

async function soak (argv: string[]): Promise<void> {
  const raw = (name: string): string | undefined => argv.find(a => a.startsWith(`--${name}=`))?.split('=')[1]
  const args = { soakGib: Number(raw('soak-gib') ?? 3), clients: Number(raw('clients') ?? 32), readers: 8 }
  const target = args.soakGib * GiB
  const root = await mkdtemp(join(tmpdir(), 'dsm-bench-soak-'))
  const common = { args: ['--group', 'g1'], env: { DSM_LOG_LEVEL: 'error' } }
  const procs: Array<{ name: string, proc: ProcNode }> = []
  const t0 = performance.now()
  const secs = (t = performance.now()): number => (t - t0) / 1000
  // The kill window: from the kill until b is ACTIVE again and every upload acknowledged until then is committed
  // on both (one b coordinated just before it died stays invisible — 404 — on a until b answers a's resolver);
  // requests overlapping it may fail. Outside it, every answer must be a 2xx with the right bytes.
  const window = { from: Infinity, to: Infinity }
  const inside: Record<string, number> = {}
  const outside: LoadAnswer[] = []
  const acked: string[] = []
  let uploadsToA = 0
  let bUp = true
  let a: ProcNode | undefined
  let b: ProcNode | undefined
  let bBefore = 0
  const rotations = { a: 0, b: 0 }
  const held = { a: 0, b: 0 }
  const onDisk = { a: 0, b: 0 }
  let result: LoadResult | undefined
  let lost: string[] = []
  try {
    a = await startProcNode({ ...common, dataDir: join(root, 'a') })
    procs.push({ name: 'a', proc: a })
    const bInit = { ...common, dataDir: join(root, 'b'), bootstrap: [a.addr] }
    b = await startProcNode(bInit)
    procs.push({ name: 'b', proc: b })
    const A = a
    await eventually(async () => members(A.url), m => m.length === 2 && m.every(x => x.state === 'ACTIVE'), 30_000, 'g1 ACTIVE')

    const ac = new AbortController()
    let loadDone = false
    const load = runMixedLoad({
      urls: () => bUp && b != null ? [A.url, b.url] : [A.url],
      clients: args.clients,
      readers: args.readers,
      mix: { upload: 1, get: 0, range: 0, delete: 0 },
      minBytes: 64 * 1024,
      maxBytes: 4 * MiB,
      seed: 29,
      keepBodies: false,
      // What always stops it: four times the target, refused uploads included (they back off).
      uploadBytes: 4 * target + GiB,
      backoffMs: 1000,
      signal: ac.signal,
      onResponse: (x) => {
        const now = performance.now()
        const inWindow = now >= window.from && now - x.ms <= window.to
        const key = `${x.op} ${x.base === A.url ? 'a' : 'b'} ${x.status}`
        if (x.op === 'upload' && x.status === 201 && x.id != null) acked.push(x.id)
        if (inWindow && x.op === 'upload' && x.base === A.url) uploadsToA++
        const ok = x.status === 200 || x.status === 201 || x.status === 206
        if (inWindow && !ok) inside[key] = (inside[key] ?? 0) + 1
        if (!inWindow && (!ok || x.wrong)) outside.push(x)
      }
    }).finally(() => { loadDone = true })

    const poll = async (): Promise<void> => {
      held.a = await metric(A.url, 'dsm_store_bytes')
      rotations.a = await metric(A.url, 'dsm_volume_rotations_total')
      if (bUp && b != null) {
        held.b = await metric(b.url, 'dsm_store_bytes')
        rotations.b = bBefore + await metric(b.url, 'dsm_volume_rotations_total')
      }
    }
    let waitingFor = ''
    const progress = setInterval(() => {
      void poll().catch(() => {}).then(() => process.stdout.write(`${secs().toFixed(0)} s: ${acked.length} files acknowledged; held a ` +
        `${(held.a / GiB).toFixed(2)} GiB, b ${(held.b / GiB).toFixed(2)} GiB; rotations a ${rotations.a}, b ${rotations.b}; waiting for ${waitingFor}\n`))
    }, 10_000)
    const whileLoading = async (what: string, cond: () => Promise<boolean>): Promise<void> => {
      waitingFor = what
      process.stdout.write(`${secs().toFixed(1)} s: waiting for ${what}\n`)
      while (!await cond().catch(() => false)) {
        if (loadDone) throw new Error(`the load's budget ran out before ${what}`)
        await sleep(500)
      }
    }
    try {
      await whileLoading('b to hold half', async () => await metric(b?.url ?? '', 'dsm_store_bytes') >= target / 2)
      const victim = b
      const tcpPort = Number(/\/tcp\/(\d+)/.exec(victim.addr)?.[1])
      const httpPort = Number(new URL(victim.url).port)
      // Read just before the kill: rotations in between are missed, which only undercounts.
      bBefore = await metric(victim.url, 'dsm_volume_rotations_total')
      window.from = performance.now()
      bUp = false
      await victim.stop('SIGKILL')
      process.stdout.write(`${secs().toFixed(1)} s: b killed (SIGKILL)\n`)
      await whileLoading('a to see b OFFLINE', async () => (await members(A.url)).some(m => m.peerId === victim.peerId && m.state === 'OFFLINE'))
      const seen = uploadsToA
      await whileLoading('uploads through a while b is away', async () => uploadsToA >= seen + 8)
      b = await startProcNode({ ...bInit, tcpPort, httpPort })
      procs.push({ name: 'b', proc: b })
      bUp = true
      const B = b
      await whileLoading('b ACTIVE again', async () =>
        (await Promise.all([members(A.url), members(B.url)])).every(v => v.length === 2 && v.every(m => m.state === 'ACTIVE')))
      // From the members' listings, not a stat per file: under the load a stat (a locate at b) takes seconds. A
      // listing stops at 10,000 files a group, so what it leaves out is asked about one by one.
      const before = [...acked]
      await whileLoading('the uploads acknowledged until now committed on both', async () => {
        const [onA, onB] = await Promise.all([heldBy(A.url), heldBy(B.url)])
        return (await notOnBoth(A.url, before.filter(id => !onA.has(id) || !onB.has(id)))).size === 0
      })
      window.to = performance.now()
      process.stdout.write(`${secs().toFixed(0)} s: b back, kill window ${((window.to - window.from) / 1000).toFixed(1)} s\n`)
      await whileLoading(`both to hold ${args.soakGib} GiB`, async () =>
        await metric(A.url, 'dsm_store_bytes') >= target && await metric(B.url, 'dsm_store_bytes') >= target)
    } finally {
      ac.abort()
      await load.catch(() => {})
      clearInterval(progress)
    }
    result = await load
    const B = b
    await eventually(async () => Promise.all([members(A.url), members(B.url)]),
      v => v.every(m => m.length === 2 && m.every(x => x.state === 'ACTIVE' && x.sync.filesToGo === 0)), 120_000, 'b ACTIVE and caught up')
    const ids = [...result.files.keys()]
    await eventually(async () => [...(await notOnBoth(A.url, ids)).values()], m => m.length === 0, 300_000, 'every acknowledged file committed on both')
    await poll()
    onDisk.a = await volumeBytes(join(root, 'a'))
    onDisk.b = await volumeBytes(join(root, 'b'))
    process.stdout.write(`${secs().toFixed(0)} s: reading ${ids.length} files back from both members\n`)
    lost = await readBack([A.url, B.url], result.files)
  } finally {
    await Promise.all(procs.map(async p => p.proc.stop()))
    await rm(root, { recursive: true, force: true })
  }
  const leaks = procs.flatMap(p => p.proc.output().split('\n').filter(l => LEAK.test(l)).map(l => `${p.name}: ${l.trim()}`))
  const leaksOf = (name: string): number => leaks.filter(l => l.startsWith(`${name}:`)).length
  const bytes = [...result.files.values()].reduce((n, f) => n + f.size, 0)
  const duration = secs()
  printTable(`soak: ${args.clients} uploaders + ${args.readers} readers, 2-member group, 1 GiB volumes, b killed at half`,
    ['node', 'files held GiB', 'volumes on disk GiB', 'rotations', 'leak warnings'],
    (['a', 'b'] as const).map(n => [n, (held[n] / GiB).toFixed(2), (onDisk[n] / GiB).toFixed(2), rotations[n], leaksOf(n)]))
  printTable('soak: outcome', ['acknowledged files', 'GiB', 'MiB/s acknowledged', 'lost', 'wrong reads', 'failed outside the kill window', 'kill window s', 'duration s', 'leak warnings'],
    [[result.files.size, (bytes / GiB).toFixed(2), bytes / MiB / (result.elapsedMs / 1000), lost.length, result.mismatches, outside.length, (window.to - window.from) / 1000, duration, leaks.length]])
  process.stdout.write(`\nin the kill window (${bBefore} rotations on b before the kill): ${JSON.stringify(inside)}\n`)
  for (const x of outside.slice(0, 10)) process.stdout.write(`outside the kill window: ${x.op} ${x.base} ${x.id ?? ''} ${x.status} ${x.detail}\n`)
  for (const line of [...lost.slice(0, 10), ...leaks.slice(0, 10)]) process.stdout.write(`${line}\n`)
  const path = writeResults('load-soak', {
    args,
    duration_s: duration,
    acknowledged_files: result.files.size,
    acknowledged_bytes: bytes,
    acknowledged_mib_per_s: bytes / MiB / (result.elapsedMs / 1000),
    nodes: (['a', 'b'] as const).map(n => ({ name: n, held_bytes: held[n], volume_bytes: onDisk[n], rotations: rotations[n], leak_warnings: leaksOf(n) })),
    rotations_b_before_kill: bBefore,
    lost: lost.length,
    lost_examples: lost.slice(0, 20),
    wrong_reads: result.mismatches,
    kill_window_s: (window.to - window.from) / 1000,
    kill_window_failures: inside,
    failures_outside_kill_window: outside.slice(0, 50).map(x => ({ op: x.op, node: x.base, id: x.id, status: x.status, detail: x.detail })),
    leak_warnings: leaks.length,
    statuses: Object.fromEntries(Object.entries(result.ops).map(([op, st]) => [op, st.statuses]))
  })
  process.stdout.write(`\nwrote ${path}\n`)
  if (lost.length > 0 || result.mismatches > 0 || leaks.length > 0) {
    throw new Error(`soak failed: ${lost.length} acknowledged files lost or different, ${result.mismatches} wrong reads, ${leaks.length} leak warnings`)
  }
}
