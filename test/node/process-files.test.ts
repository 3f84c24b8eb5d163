import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dsm, eventually, startProcNode } from '../sim/proc.ts'
import { randomBytes, sha256hex } from '../helpers/data.ts'
import type { ProcNode } from '../sim/proc.ts'

describe('files across OS processes (TCP on 127.0.0.1)', () => {
  let root: string
  const nodes: ProcNode[] = []

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-procfiles-'))
    nodes.push(await startProcNode({ dataDir: join(root, 'a1'), args: ['--group', 'gA'] }))
    nodes.push(await startProcNode({ dataDir: join(root, 'a2'), args: ['--group', 'gA'], bootstrap: [nodes[0]?.addr ?? ''] }))
    nodes.push(await startProcNode({ dataDir: join(root, 'b1'), args: ['--group', 'gB'], bootstrap: [nodes[0]?.addr ?? ''] }))
    for (const n of nodes) {
      await eventually(async () => JSON.parse((await dsm(['peers', '--json', '--node', n.url])).stdout) as Array<{ state: string }>,
        peers => peers.length === 3 && peers.every(p => p.state === 'ACTIVE'), 30_000, `3 ACTIVE peers at ${n.url}`)
    }
  })

  afterAll(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await rm(root, { recursive: true, force: true })
  })

  it('upload through a node of group A; download byte-identical through a node of group B and through a node started after the upload', async () => {
    const data = randomBytes(10 * 1024 * 1024 + 333, 42)
    const file = join(root, 'movie.mp4')
    await writeFile(file, data)
    const up = await dsm(['upload', file, '--group', 'gA', '--node', nodes[0]?.url ?? ''])
    expect(up.code).toBe(0)
    const id = up.stdout.trim()
    expect(id).toMatch(/^bafyrei[a-z2-7]+$/)

    const viaB = join(root, 'via-b.mp4')
    const down = await dsm(['download', id, '-o', viaB, '--node', nodes[2]?.url ?? ''])
    expect(down.code).toBe(0)
    expect(sha256hex(await readFile(viaB))).toBe(sha256hex(data))

    const late = await startProcNode({ dataDir: join(root, 'late'), args: ['--spare'], bootstrap: [nodes[1]?.addr ?? ''] })
    nodes.push(late)
    const viaLate = join(root, 'via-late.mp4')
    const late1 = await eventually(async () => dsm(['download', id, '-o', viaLate, '--node', late.url]), r => r.code === 0, 20_000, 'download via the late node')
    expect(late1.code).toBe(0)
    expect(sha256hex(await readFile(viaLate))).toBe(sha256hex(data))

    const stat = JSON.parse((await dsm(['stat', id, '--json', '--node', late.url])).stdout) as { group: string, size: number, name: string, mime: string, chunks: number, replicas: Array<{ copy: string }> }
    expect(stat).toMatchObject({ group: 'gA', size: data.byteLength, name: 'movie.mp4', mime: 'video/mp4', chunks: 11 })
    expect(stat.replicas.map(r => r.copy)).toEqual(['present', 'present'])

    const partFile = join(root, 'part.bin')
    const part = await dsm(['download', id, '--offset', '5000000', '--length', '1048700', '-o', partFile, '--node', nodes[2]?.url ?? ''])
    expect(part.code).toBe(0)
    expect(sha256hex(await readFile(partFile))).toBe(sha256hex(data.subarray(5_000_000, 5_000_000 + 1_048_700)))
  })
})
