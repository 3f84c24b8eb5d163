/**
 * Space is counted once: on an empty 64 MiB file system with --reserve 0, a
 * 40 MB upload that declares its size fits (it reserves 40 MB, and its chunks
 * draw on that reservation), a second one does not (507, nothing left
 * behind, the space given back), and a chunked upload that fits after it is
 * taken. Needs root for the tmpfs mount; skipped otherwise.
 */
import { skipUnless } from '../helpers/skip.ts'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from '../helpers/data.ts'
import { eventually, startProcNode } from '../sim/proc.ts'
import type { ProcNode } from '../sim/proc.ts'

const MB = 1_000_000

function mountUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'a tmpfs mount needs root'
  return undefined
}

const skip = skipUnless('space-accounting test', mountUnavailable()) ? 'skipped' : undefined

describe.skipIf(skip != null)('space accounting on a 64 MiB disk', () => {
  let root: string
  let disk: string
  let node: ProcNode
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-space-'))
    disk = join(root, 'disk')
    execFileSync('mkdir', ['-p', disk])
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', disk])
    node = await startProcNode({ dataDir: join(disk, 'data'), args: ['--group', 'g1', '--reserve', '0'] })
    // Addresses print before the node is ACTIVE; a write before then has no group to go to.
    await eventually(async () => await (await fetch(`${node.url}/healthz`)).json() as { state: string }, h => h.state === 'ACTIVE', 30_000, 'the node ACTIVE')
    await eventually(async () => (await (await fetch(`${node.url}/api/id`)).json() as { state: string }).state, s => s === 'ACTIVE', 20_000, 'ACTIVE')
  })
  afterAll(async () => {
    await node?.stop()
    try { execFileSync('umount', [disk]) } catch {}
    await rm(root, { recursive: true, force: true })
  })

  const post = async (body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>, name: string): Promise<{ status: number, body: { code?: string } }> => {
    const res = await fetch(`${node.url}/files?name=${name}`, { method: 'POST', body, duplex: 'half', headers: { 'content-type': 'application/octet-stream' } } as RequestInit)
    return { status: res.status, body: await res.json() as { code?: string } }
  }
  // What the store holds, in its index (the node's own account, /metrics: files and bytes held whole).
  const chunks = async (): Promise<number> => Number(/^dsm_store_bytes (\d+)/m.exec(await (await fetch(`${node.url}/metrics`)).text())?.[1] ?? NaN)

  it('a declared 40 MB upload fits; a second is refused cleanly (507); a 20 MB chunked upload then fits', async () => {
    const first = await post(randomBytes(40 * MB, 1), 'first.bin')
    expect(first.status, JSON.stringify(first.body)).toBe(201)
    const before = await chunks()
    const second = await post(randomBytes(40 * MB, 2), 'second.bin')
    expect(second.status).toBe(507)
    expect(second.body.code).toBe('ERR_INSUFFICIENT_STORAGE')
    expect(await chunks(), 'the refusal left nothing stored').toBe(before)
    // No Content-Length: space is checked chunk by chunk, against what the refused upload gave back.
    const data = randomBytes(20 * MB, 3)
    let at = 0
    const stream = new ReadableStream<Uint8Array>({
      pull (ctl) {
        if (at >= data.byteLength) { ctl.close(); return }
        ctl.enqueue(data.slice(at, at + MB))
        at += MB
      }
    })
    const third = await post(stream, 'third.bin')
    expect(third.status, JSON.stringify(third.body)).toBe(201)
  })
})
