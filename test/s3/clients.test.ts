/**
 * The S3 clients people use, with their defaults, against a `bin/dsm node`
 * process: the AWS CLI (`aws s3 mb/cp/ls/presign`, multipart by default for
 * big files), rclone (`copy`, `check`) and s3cmd. CI installs them
 * (.ci/run); elsewhere the suite skips with the reason.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { skipUnless } from '../helpers/skip.ts'
import { randomBytes } from '../helpers/data.ts'
import { eventually, startProcNode } from '../sim/proc.ts'
import type { ProcNode } from '../sim/proc.ts'

const run = promisify(execFile)
const KEY = { id: 'DSMCLIENTS0000000001', secret: 'dsm-clients-secret-access-key-0123456789' }

async function has (tool: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${tool}`]).then(() => true, () => false)
}

const missing = (await Promise.all(['aws', 'rclone', 's3cmd'].map(async t => [t, await has(t)] as const))).filter(([, ok]) => !ok).map(([t]) => t)
const skip = skipUnless('S3 client tests', missing.length > 0 ? `${missing.join(', ')} not installed (Debian: awscli, rclone, s3cmd)` : undefined)
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe.skipIf(skip)('real S3 clients with their defaults', () => {
  let root: string
  let node: ProcNode
  let endpoint = ''
  /** A clean environment for the tools: our key, no user config, no proxy or CA settings of the machine. */
  let env: NodeJS.ProcessEnv
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-s3-clients-'))
    node = await startProcNode({ dataDir: join(root, 'node'), env: { DSM_S3: '127.0.0.1:0', DSM_S3_ACCESS_KEY_ID: KEY.id, DSM_S3_SECRET_ACCESS_KEY: KEY.secret } })
    // The S3 line follows the addresses startProcNode waited for.
    endpoint = await eventually(async () => /s3\s+(http:\/\/\S+)/.exec(node.output())?.[1] ?? '', e => e !== '', 20_000, 'the S3 address printed')
    await eventually(async () => (await fetch(`${node.url}/api/id`)).json() as Promise<{ state: string }>, id => id.state === 'ACTIVE', 30_000, 'the node ACTIVE')
    // The AWS CLI v1 presigns with Signature V2 unless told s3v4 (v2 signs V4 anyway): dsm speaks V4 only.
    await writeFile(join(root, 'aws-config'), '[default]\nregion = us-east-1\ns3 =\n  signature_version = s3v4\n')
    env = { PATH: process.env.PATH, HOME: root, AWS_ACCESS_KEY_ID: KEY.id, AWS_SECRET_ACCESS_KEY: KEY.secret, AWS_CONFIG_FILE: join(root, 'aws-config'), AWS_SHARED_CREDENTIALS_FILE: join(root, 'none') }
  }, 60_000)
  afterAll(async () => {
    await node?.stop()
    await rm(root, { recursive: true, force: true })
  })

  it('the AWS CLI: mb, cp up (multipart) and down byte-identical, ls, presign played with Range', async () => {
    const aws = async (...args: string[]): Promise<string> => (await run('aws', ['--endpoint-url', endpoint, ...args], { env, maxBuffer: 16 * 1024 * 1024 })).stdout
    const data = randomBytes(20 * 1024 * 1024 + 5, 61)
    await writeFile(join(root, 'big.bin'), data)
    await aws('s3', 'mb', 's3://cli')
    await aws('s3', 'cp', join(root, 'big.bin'), 's3://cli/dir/big.bin')
    expect(await aws('s3', 'ls', 's3://cli/', '--recursive')).toMatch(/20971525 dir\/big\.bin/)
    await aws('s3', 'cp', 's3://cli/dir/big.bin', join(root, 'back.bin'))
    expect(sha(await readFile(join(root, 'back.bin')))).toBe(sha(data))
    const url = (await aws('s3', 'presign', 's3://cli/dir/big.bin', '--expires-in', '60')).trim()
    const res = await fetch(url, { headers: { Range: 'bytes=1000-1999' } })
    expect(res.status).toBe(206)
    expect(Buffer.from(await res.arrayBuffer())).toEqual(Buffer.from(data.subarray(1000, 2000)))
  }, 120_000)

  it('rclone: copy a tree, then check finds no difference', async () => {
    const src = join(root, 'tree')
    await mkdir(join(src, 'sub'), { recursive: true })
    await writeFile(join(src, 'one.bin'), randomBytes(7_000_000, 62))
    await writeFile(join(src, 'two words.txt'), 'hello')
    await writeFile(join(src, 'sub', 'é.bin'), randomBytes(70_000, 63))
    const renv = { PATH: process.env.PATH, HOME: root, RCLONE_CONFIG_DSM_TYPE: 's3', RCLONE_CONFIG_DSM_PROVIDER: 'Other', RCLONE_CONFIG_DSM_ENDPOINT: endpoint, RCLONE_CONFIG_DSM_ACCESS_KEY_ID: KEY.id, RCLONE_CONFIG_DSM_SECRET_ACCESS_KEY: KEY.secret, RCLONE_CONFIG_DSM_REGION: 'us-east-1' }
    await run('rclone', ['mkdir', 'dsm:rcl'], { env: renv })
    await run('rclone', ['copy', src, 'dsm:rcl/t'], { env: renv })
    const check = await run('rclone', ['check', src, 'dsm:rcl/t'], { env: renv })
    expect(check.stderr).toMatch(/0 differences found/)
    expect(check.stderr).toMatch(/3 matching files/)
  }, 120_000)

  it('s3cmd: mb, put, ls, get, del', async () => {
    const host = endpoint.replace(/^http:\/\//, '')
    await writeFile(join(root, 's3cfg'), `[default]\naccess_key = ${KEY.id}\nsecret_key = ${KEY.secret}\nhost_base = ${host}\nhost_bucket = ${host}\nuse_https = False\nsignature_v2 = False\n`)
    const s3cmd = async (...args: string[]): Promise<string> => (await run('s3cmd', ['-c', join(root, 's3cfg'), ...args], { env })).stdout
    await writeFile(join(root, 'small.txt'), 'dsm via s3cmd')
    await s3cmd('mb', 's3://cmd')
    await s3cmd('put', join(root, 'small.txt'), 's3://cmd/a/small.txt')
    expect(await s3cmd('ls', 's3://cmd/a/')).toMatch(/s3:\/\/cmd\/a\/small\.txt/)
    await s3cmd('get', 's3://cmd/a/small.txt', join(root, 'got.txt'), '--force')
    expect(await readFile(join(root, 'got.txt'), 'utf8')).toBe('dsm via s3cmd')
    await s3cmd('del', 's3://cmd/a/small.txt')
    expect(await s3cmd('ls', 's3://cmd/a/')).toBe('')
  }, 60_000)
})
