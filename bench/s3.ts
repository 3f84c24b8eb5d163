/**
 * `npm run bench -- s3`: the S3 layer's cost. A group of 2 `bin/dsm node`
 * processes over TCP; 16 clients PUT then GET 4 KiB and 1 MiB objects through
 * the S3 listener (the AWS SDK, keep-alive, SigV4 with the payload signed as
 * the SDK does over http), against the same workload on `/files` in the same
 * run (undici). For each: operations/s, p50/p99 latency and the nodes' CPU ms
 * per operation; the ratios S3 / files are the S3 layer's overhead (the
 * target: ≤ 1.2). Writes bench/results/s3.json.
 *
 *   npm run bench -- s3 [--seconds=5] [--clients=16]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { Agent as HttpAgent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { Agent, request } from 'undici'
import { eventually, startProcNode } from '../test/sim/proc.ts'
import { percentile, printTable, writeResults } from './lib.ts'
import type { ProcNode } from '../test/sim/proc.ts'

const KEY = { accessKeyId: 'BENCHKEY000000000001', secretAccessKey: 'bench-secret-access-key-0123456789abcdef' }

interface Run { perS: number, p50: number, p99: number, cpuMsPerOp: number }

async function cpuMs (pid: number | undefined): Promise<number> {
  const stat = await readFile(`/proc/${pid ?? 0}/stat`, 'utf8').catch(() => '')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11] ?? NaN) + Number(fields[12] ?? NaN)) * 10
}

/** `clients` workers calling `op(worker, n)` for `seconds`; the nodes' CPU per operation. */
async function measure (nodes: ProcNode[], clients: number, seconds: number, op: (worker: number, n: number) => Promise<void>): Promise<Run> {
  const latencies: number[] = []
  const before = await Promise.all(nodes.map(async n => cpuMs(n.proc.pid)))
  const deadline = performance.now() + seconds * 1000
  const start = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: clients }, async (_, w) => {
    while (performance.now() < deadline) {
      const t0 = performance.now()
      await op(w, next++)
      latencies.push(performance.now() - t0)
    }
  }))
  const elapsed = (performance.now() - start) / 1000
  const after = await Promise.all(nodes.map(async n => cpuMs(n.proc.pid)))
  const cpu = after.reduce((a, v, i) => a + v - (before[i] ?? 0), 0)
  return { perS: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), cpuMsPerOp: cpu / latencies.length }
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
    const results: Record<string, unknown> = {}
    for (const size of [4096, 1024 * 1024]) {
      const label = size === 4096 ? '4 KiB' : '1 MiB'
      const body = (n: number): Uint8Array => { const d = new Uint8Array(size); new DataView(d.buffer).setUint32(0, n); new DataView(d.buffer).setUint32(4, size); return d }
      const ids: string[] = []
      const filesPut = await measure(nodes, clients, seconds, async (_w, n) => {
        const res = await request(`${a.url}/files?name=f${n}.bin`, { method: 'POST', body: body(n), dispatcher })
        const json = await res.body.json() as { id?: string }
        if (res.statusCode !== 201 || json.id == null) throw new Error(`upload failed: ${res.statusCode}`)
        ids.push(json.id)
      })
      const keys: string[] = []
      const s3Put = await measure(nodes, clients, seconds, async (_w, n) => {
        const key = `o${size}-${n}`
        await s3.send(new PutObjectCommand({ Bucket: 'bench', Key: key, Body: body(n + 1_000_000) }))
        keys.push(key)
      })
      const filesGet = await measure(nodes, clients, seconds, async (_w, n) => {
        const res = await request(`${a.url}/files/${ids[n % ids.length] ?? ''}`, { dispatcher })
        await res.body.arrayBuffer()
        if (res.statusCode !== 200) throw new Error(`read failed: ${res.statusCode}`)
      })
      const s3Get = await measure(nodes, clients, seconds, async (_w, n) => {
        const got = await s3.send(new GetObjectCommand({ Bucket: 'bench', Key: keys[n % keys.length] }))
        await got.Body?.transformToByteArray()
      })
      for (const [name, r] of [['PUT /files', filesPut], ['PUT S3', s3Put], ['GET /files', filesGet], ['GET S3', s3Get]] as const) {
        rows.push([label, name, r.perS.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2), r.cpuMsPerOp.toFixed(2)])
      }
      results[label] = {
        files: { put: filesPut, get: filesGet },
        s3: { put: s3Put, get: s3Get },
        s3_vs_files: {
          put_cpu_per_op: s3Put.cpuMsPerOp / filesPut.cpuMsPerOp,
          get_cpu_per_op: s3Get.cpuMsPerOp / filesGet.cpuMsPerOp,
          put_throughput: filesPut.perS / s3Put.perS,
          get_throughput: filesGet.perS / s3Get.perS
        }
      }
    }
    await dispatcher.close()
    s3.destroy()
    printTable(`S3 vs /files, ${clients} clients, ${seconds} s each, 2 members (node CPU summed)`, ['size', 'op', 'ops/s', 'p50 ms', 'p99 ms', 'node CPU ms/op'], rows)
    const path = writeResults('s3', { clients, seconds, results })
    process.stdout.write(`ratios are S3 / files (node CPU per op; throughput as files/S3: above 1 means S3 is slower)\nwrote ${path}\n`)
  } finally {
    await Promise.all(nodes.map(async n => n.stop()))
    await rm(root, { recursive: true, force: true })
  }
}
