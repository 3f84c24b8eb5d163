/**
 * `npm run bench -- s3`: the S3 layer's cost. A group of 2 `bin/dsm node`
 * processes over TCP; 16 clients PUT then GET 4 KiB and 1 MiB objects through
 * the S3 listener (the AWS SDK, keep-alive, SigV4 with the payload signed as
 * the SDK does over http), against the same workload on `/files` in the same
 * run (undici). Two passes per row:
 *
 *  - as fast as the clients go: operations/s, p50/p99 latency, the nodes' CPU
 *    ms per operation and the client's;
 *  - at one rate for both (80 % of the slower one's): the nodes' CPU ms per
 *    operation. This is the S3 layer's cost, S3 / files (the target: ≤ 1.2).
 *    CPU per operation falls as load rises (group commit and frame
 *    coalescing batch more; V8 collects garbage in idle gaps), and the SDK
 *    spends ~6× undici's CPU per request on the same two cores, so at full
 *    speed the S3 rows run at a lower rate and pay for it in batching, not
 *    in anything the S3 layer does.
 *
 * Writes bench/results/s3.json.
 *
 *   npm run bench -- s3 [--seconds=5] [--clients=16]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { Agent as HttpAgent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { Agent, request } from 'undici'
import { eventually, startProcNode } from '../test/sim/proc.ts'
import { cpuMsOf, percentile, printTable, writeResults } from './lib.ts'
import type { ProcNode } from '../test/sim/proc.ts'

const KEY = { accessKeyId: 'BENCHKEY000000000001', secretAccessKey: 'bench-secret-access-key-0123456789abcdef' }

interface Run { perS: number, p50: number, p99: number, cpuMsPerOp: number, clientCpuMsPerOp: number }

/** What an operation's pacing waits for: its slot of a fixed schedule (open loop), or nothing. */
async function slot (start: number, n: number, ratePerS: number | undefined): Promise<void> {
  if (ratePerS == null) return
  const wait = start + (n * 1000) / ratePerS - performance.now()
  if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
}

/**
 * `clients` workers calling `op(worker, n)` for `seconds` — as fast as they
 * go, or paced at `ratePerS` in all — and the CPU per operation of the nodes
 * (summed) and of this client process.
 */
async function measure (nodes: ProcNode[], clients: number, seconds: number, op: (worker: number, n: number) => Promise<void>, ratePerS?: number): Promise<Run> {
  const latencies: number[] = []
  const before = await Promise.all(nodes.map(async n => cpuMsOf(n.proc.pid)))
  const client = process.cpuUsage()
  const deadline = performance.now() + seconds * 1000
  const start = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: clients }, async (_, w) => {
    while (performance.now() < deadline) {
      const n = next++
      await slot(start, n, ratePerS)
      const t0 = performance.now()
      await op(w, n)
      latencies.push(performance.now() - t0)
    }
  }))
  const elapsed = (performance.now() - start) / 1000
  const after = await Promise.all(nodes.map(async n => cpuMsOf(n.proc.pid)))
  const used = process.cpuUsage(client)
  const cpu = after.reduce((a, v, i) => a + v - (before[i] ?? 0), 0)
  return { perS: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), cpuMsPerOp: cpu / latencies.length, clientCpuMsPerOp: (used.user + used.system) / 1000 / latencies.length }
}

/** Rounds of the same-rate comparison: the two sides take turns, so a drift of the machine or the store hits both alike. */
const SAME_RATE_ROUNDS = 3

/** Both sides at `ratePerS`, in alternating rounds; each side's runs summed into one. */
async function alternate (nodes: ProcNode[], clients: number, seconds: number, ratePerS: number, a: (w: number, n: number) => Promise<void>, b: (w: number, n: number) => Promise<void>): Promise<[Run, Run]> {
  const runs: [Run[], Run[]] = [[], []]
  const roundS = Math.max(1, seconds * 2 / SAME_RATE_ROUNDS)
  for (let round = 0; round < SAME_RATE_ROUNDS; round++) {
    const order = round % 2 === 0 ? [0, 1] as const : [1, 0] as const
    for (const side of order) runs[side].push(await measure(nodes, clients, roundS, side === 0 ? a : b, ratePerS))
  }
  return [combine(runs[0], roundS), combine(runs[1], roundS)]
}

/** Runs of equal length as one: rates and CPU per operation weighted by their operations. */
function combine (runs: Run[], seconds: number): Run {
  const ops = runs.map(r => r.perS * seconds)
  const total = ops.reduce((x, y) => x + y, 0)
  const weighted = (f: (r: Run) => number): number => runs.reduce((acc, r, i) => acc + f(r) * (ops[i] ?? 0), 0) / total
  return { perS: total / (seconds * runs.length), p50: weighted(r => r.p50), p99: Math.max(...runs.map(r => r.p99)), cpuMsPerOp: weighted(r => r.cpuMsPerOp), clientCpuMsPerOp: weighted(r => r.clientCpuMsPerOp) }
}

/** The rate both sides of a comparison run at: 80 % of the slower one's full speed. */
function commonRate (a: Run, b: Run): number {
  return Math.floor(0.8 * Math.min(a.perS, b.perS))
}

export async function run (args: string[]): Promise<void> {
  const raw = (name: string): string | undefined => args.find(a => a.startsWith(`--${name}=`))?.split('=')[1]
  const seconds = Number(raw('seconds') ?? 5)
  const clients = Number(raw('clients') ?? 16)
  const root = await mkdtemp(join(tmpdir(), 'dsm-bench-s3-'))
  const env = { DSM_S3: '127.0.0.1:0', DSM_S3_ACCESS_KEY_ID: KEY.accessKeyId, DSM_S3_SECRET_ACCESS_KEY: KEY.secretAccessKey, DSM_LOG_LEVEL: 'error' }
  const a = await startProcNode({ dataDir: join(root, 'a'), args: ['--group', 'g1'], env })
  const b = await startProcNode({ dataDir: join(root, 'b'), args: ['--group', 'g1'], bootstrap: [a.addr], env })
  const nodes = [a, b]
  try {
    await eventually(async () => (await fetch(`${a.url}/api/groups`)).json() as Promise<Array<{ members: Array<{ state: string }> }>>,
      g => g[0]?.members.filter(m => m.state === 'ACTIVE').length === 2, 30_000, 'both members ACTIVE')
    const s3url = /s3\s+(http:\/\/\S+)/.exec(a.output())?.[1]
    if (s3url == null) throw new Error(`no S3 address printed:\n${a.output()}`)
    const s3 = new S3Client({ endpoint: s3url, region: 'us-east-1', forcePathStyle: true, credentials: KEY, requestHandler: new NodeHttpHandler({ httpAgent: new HttpAgent({ keepAlive: true, maxSockets: clients }) }) })
    await s3.send(new CreateBucketCommand({ Bucket: 'bench' }))
    const dispatcher = new Agent({ connections: clients })
    const rows: Array<Array<string | number>> = []
    const paced: Array<Array<string | number>> = []
    const results: Record<string, unknown> = {}
    for (const size of [4096, 1024 * 1024]) {
      const label = size === 4096 ? '4 KiB' : '1 MiB'
      const body = (n: number): Uint8Array => { const d = new Uint8Array(size); new DataView(d.buffer).setUint32(0, n); new DataView(d.buffer).setUint32(4, size); return d }
      const ids: string[] = []
      const keys: string[] = []
      let filesN = 0
      const filesPutOp = async (): Promise<void> => {
        const n = filesN++
        const res = await request(`${a.url}/files?name=f${n}.bin`, { method: 'POST', body: body(n), dispatcher })
        const json = await res.body.json() as { id?: string }
        if (res.statusCode !== 201 || json.id == null) throw new Error(`upload failed: ${res.statusCode}`)
        ids.push(json.id)
      }
      // Every PUT a key of its own (an overwrite would queue the old file's reclaim: not the workload /files runs).
      let s3n = 0
      const s3PutOp = async (): Promise<void> => {
        const n = s3n++
        const key = `o${size}-${n}`
        await s3.send(new PutObjectCommand({ Bucket: 'bench', Key: key, Body: body(n + 1_000_000) }))
        keys.push(key)
      }
      const filesGetOp = async (_w: number, n: number): Promise<void> => {
        const res = await request(`${a.url}/files/${ids[n % ids.length] ?? ''}`, { dispatcher })
        await res.body.arrayBuffer()
        if (res.statusCode !== 200) throw new Error(`read failed: ${res.statusCode}`)
      }
      const s3GetOp = async (_w: number, n: number): Promise<void> => {
        const got = await s3.send(new GetObjectCommand({ Bucket: 'bench', Key: keys[n % keys.length] }))
        await got.Body?.transformToByteArray()
      }
      const filesPut = await measure(nodes, clients, seconds, filesPutOp)
      const s3Put = await measure(nodes, clients, seconds, s3PutOp)
      const filesGet = await measure(nodes, clients, seconds, filesGetOp)
      const s3Get = await measure(nodes, clients, seconds, s3GetOp)
      const putRate = commonRate(filesPut, s3Put)
      const getRate = commonRate(filesGet, s3Get)
      const [filesPutPaced, s3PutPaced] = await alternate(nodes, clients, seconds, putRate, filesPutOp, s3PutOp)
      const [filesGetPaced, s3GetPaced] = await alternate(nodes, clients, seconds, getRate, filesGetOp, s3GetOp)
      for (const [name, r] of [['PUT /files', filesPut], ['PUT S3', s3Put], ['GET /files', filesGet], ['GET S3', s3Get]] as const) {
        rows.push([label, name, r.perS.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2), r.cpuMsPerOp.toFixed(2), r.clientCpuMsPerOp.toFixed(2)])
      }
      const ratio = (s3r: Run, files: Run): string => (s3r.cpuMsPerOp / files.cpuMsPerOp).toFixed(2)
      paced.push([label, 'PUT', putRate, filesPutPaced.perS.toFixed(0), filesPutPaced.cpuMsPerOp.toFixed(2), s3PutPaced.perS.toFixed(0), s3PutPaced.cpuMsPerOp.toFixed(2), ratio(s3PutPaced, filesPutPaced)])
      paced.push([label, 'GET', getRate, filesGetPaced.perS.toFixed(0), filesGetPaced.cpuMsPerOp.toFixed(2), s3GetPaced.perS.toFixed(0), s3GetPaced.cpuMsPerOp.toFixed(2), ratio(s3GetPaced, filesGetPaced)])
      results[label] = {
        full_speed: { files: { put: filesPut, get: filesGet }, s3: { put: s3Put, get: s3Get } },
        same_rate: { put_rate_per_s: putRate, get_rate_per_s: getRate, files: { put: filesPutPaced, get: filesGetPaced }, s3: { put: s3PutPaced, get: s3GetPaced } },
        s3_vs_files: {
          put_cpu_per_op_same_rate: s3PutPaced.cpuMsPerOp / filesPutPaced.cpuMsPerOp,
          get_cpu_per_op_same_rate: s3GetPaced.cpuMsPerOp / filesGetPaced.cpuMsPerOp,
          put_cpu_per_op_full_speed: s3Put.cpuMsPerOp / filesPut.cpuMsPerOp,
          get_cpu_per_op_full_speed: s3Get.cpuMsPerOp / filesGet.cpuMsPerOp,
          put_throughput: filesPut.perS / s3Put.perS,
          get_throughput: filesGet.perS / s3Get.perS
        }
      }
    }
    await dispatcher.close()
    s3.destroy()
    printTable(`S3 vs /files as fast as ${clients} clients go, ${seconds} s each, 2 members (node CPU summed)`, ['size', 'op', 'ops/s', 'p50 ms', 'p99 ms', 'node CPU ms/op', 'client CPU ms/op'], rows)
    printTable(`The S3 layer's cost: both at one rate (80 % of the slower's full speed), ${clients} clients`, ['size', 'op', 'rate /s', '/files ops/s', '/files node CPU ms/op', 'S3 ops/s', 'S3 node CPU ms/op', 'S3 / files'], paced)
    const path = writeResults('s3', { clients, seconds, results })
    process.stdout.write(`S3 / files is node CPU per operation at the same rate (target ≤ 1.2)\nwrote ${path}\n`)
  } finally {
    await Promise.all(nodes.map(async n => n.stop()))
    await rm(root, { recursive: true, force: true })
  }
}
