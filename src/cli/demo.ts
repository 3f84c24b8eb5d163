/**
 * `npm start`: a local 3-node dsm cluster on 127.0.0.1, one OS process per
 * node (exactly what `dsm node` runs on a host), data under ./.dsm-data.
 * Node logs go to .dsm-data/nodeN/node.log; Ctrl-C stops the cluster cleanly.
 */
import { spawn } from 'node:child_process'
import { createWriteStream, mkdirSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadOrCreateClusterKeys } from '../net/cluster-secret.ts'
import { loadOrCreateToken } from '../net/token.ts'
import { DsmClient } from './client.ts'
import type { ChildProcess } from 'node:child_process'

const NODES = 3
const FIRST_TCP_PORT = 4101
const FIRST_WS_PORT = 4111
const FIRST_HTTP_PORT = 8080
const FIRST_S3_PORT = 9000
const READY_TIMEOUT_MS = 60_000
/** The launcher every host runs (same Node, same memory settings). */
const DSM_BIN = join(import.meta.dirname, '..', '..', 'bin', 'dsm')

interface DemoNode { name: string, dataDir: string, http: string, proc: ChildProcess, stdout: string }

async function startNode (root: string, i: number, bootstrap: string[], token: string, secret: string): Promise<DemoNode> {
  const name = `node${i + 1}`
  const dataDir = join(root, name)
  mkdirSync(dataDir, { recursive: true })
  const http = `127.0.0.1:${FIRST_HTTP_PORT + i}`
  const args = ['node', '--data', dataDir,
    '--listen', `/ip4/127.0.0.1/tcp/${FIRST_TCP_PORT + i}`, `/ip4/127.0.0.1/tcp/${FIRST_WS_PORT + i}/ws`, '--http', http,
    '--s3', `127.0.0.1:${FIRST_S3_PORT + i}`,
    ...(bootstrap.length > 0 ? ['--bootstrap', ...bootstrap] : [])]
  // One token and one secret for the whole cluster, passed in the environment (arguments show in ps).
  const proc = spawn(DSM_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DSM_TOKEN: token, DSM_SECRET: secret } })
  const node: DemoNode = { name, dataDir, http: `http://${http}`, proc, stdout: '' }
  proc.stdout?.on('data', (d: Buffer) => { node.stdout += d.toString() })
  proc.stderr?.pipe(createWriteStream(join(dataDir, 'node.log'), { flags: 'a' }))
  await new Promise<void>((resolve, reject) => {
    const onData = (): void => { if (/http\s+http/.test(node.stdout)) { proc.stdout?.off('data', onData); resolve() } }
    proc.stdout?.on('data', onData)
    proc.once('exit', (code) => {
      void readFile(join(dataDir, 'node.log'), 'utf8').catch(() => '').then(log => {
        reject(new Error(`${name} exited with code ${code}:\n${node.stdout}${log.split('\n').slice(-5).join('\n')}`))
      })
    })
  })
  return node
}

async function waitActive (node: DemoNode, deadline: number): Promise<{ peerId: string, group: string | null, state: string }> {
  const client = new DsmClient(node.http)
  for (;;) {
    const id = await client.json<{ peerId: string, group: string | null, state: string }>('/api/id').catch(() => undefined)
    if (id?.state === 'ACTIVE') return id
    if (Date.now() > deadline) throw new Error(`${node.name} did not become ACTIVE within ${READY_TIMEOUT_MS / 1000} s (see ${join(node.dataDir, 'node.log')})`)
    // Another process: there is no event to wait on, so poll its API.
    await sleep(250)
  }
}

async function main (): Promise<void> {
  const root = resolve('.dsm-data')
  const nodes: DemoNode[] = []
  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map(async n => {
      if (n.proc.exitCode != null) return
      const exited = new Promise(resolve => n.proc.once('exit', resolve))
      n.proc.kill('SIGTERM')
      await exited
    }))
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => { process.stdout.write('\nstopping the cluster…\n'); void stopAll().then(() => process.exit(0)) })
  }
  try {
    const { token, path: tokenPath } = await loadOrCreateToken(root, null)
    const keys = await loadOrCreateClusterKeys(root, { secret: null, secretFile: null, previousSecrets: [] })
    const first = await startNode(root, 0, [], token, keys.secret)
    nodes.push(first)
    const bootstrap = /libp2p\s+(\S+)/.exec(first.stdout)?.[1]
    if (bootstrap == null) throw new Error(`node1 printed no libp2p address:\n${first.stdout}`)
    for (let i = 1; i < NODES; i++) nodes.push(await startNode(root, i, [bootstrap], token, keys.secret))
    const deadline = Date.now() + READY_TIMEOUT_MS
    const ids = await Promise.all(nodes.map(async n => waitActive(n, deadline)))
    // An S3 key for the tour (kept replicated, sealed with the cluster secret).
    const s3Key = await fetch(`${first.http}/api/keys`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'npm start' }) })
      .then(async r => r.ok ? await r.json() as { accessKeyId: string, secretAccessKey: string } : undefined, () => undefined)
    const out = process.stdout
    out.write(`\ndsm: local cluster of ${NODES} nodes on 127.0.0.1, data in ${root}\n\n`)
    nodes.forEach((n, i) => { out.write(`  ${n.name}  ${n.http}  group ${ids[i]?.group ?? '-'}  ${ids[i]?.state ?? ''}  ${ids[i]?.peerId ?? ''}\n`) })
    out.write(`
Writes need the cluster token (kept in ${tokenPath ?? root}):
  export DSM_TOKEN=${token}

Nodes need the cluster secret (kept in ${keys.path ?? root}); a fourth node joins with:
  DSM_SECRET=$(cat ${keys.path ?? ''}) bin/dsm node --data .dsm-data/node4 --http 127.0.0.1:8083 --s3 127.0.0.1:9003 --listen /ip4/127.0.0.1/tcp/4104 --bootstrap ${bootstrap}

Try it (any node answers any request):
  bin/dsm upload video.mp4                       # prints the file ID (default node ${nodes[0]?.http})
  curl -T video.mp4 -H "Authorization: Bearer $DSM_TOKEN" ${nodes[1]?.http}/files/   # the same over plain HTTP
  bin/dsm download <id> -o copy.mp4 --node ${nodes[2]?.http}
  curl -r 0-999 ${nodes[2]?.http}/files/<id>       # any byte range, from any node
  bin/dsm ls ; bin/dsm stat <id> ; bin/dsm groups ; bin/dsm delete <id>
  Web page: ${nodes[0]?.http}/#token=${token}   — peer-to-peer player: ${nodes[0]?.http}/?p2p=1

S3 on every node (path-style; node1 http://127.0.0.1:${FIRST_S3_PORT}, node2 :${FIRST_S3_PORT + 1}, node3 :${FIRST_S3_PORT + 2}):
  export AWS_ACCESS_KEY_ID=${s3Key?.accessKeyId ?? '<dsm key create>'} AWS_SECRET_ACCESS_KEY=${s3Key?.secretAccessKey ?? '<its secret>'} AWS_REGION=us-east-1
  aws --endpoint-url http://127.0.0.1:${FIRST_S3_PORT} s3 mb s3://media ; aws --endpoint-url http://127.0.0.1:${FIRST_S3_PORT + 1} s3 cp video.mp4 s3://media/
  more keys: bin/dsm key create [--bucket B] [--read|--write]   (docs/s3.md)

Logs: ${root}/nodeN/node.log    Stop: Ctrl-C
`)
    for (const n of nodes) {
      n.proc.once('exit', (code) => {
        process.stderr.write(`${n.name} exited (code ${code}); see ${join(n.dataDir, 'node.log')}\n`)
      })
    }
  } catch (err) {
    process.stderr.write(`dsm demo: ${(err as Error).message}\n`)
    await stopAll()
    process.exit(1)
  }
}

await main()
