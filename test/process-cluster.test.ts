import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dsm, eventually, startProcNode } from './helpers/proc.ts'
import type { ProcNode } from './helpers/proc.ts'

interface GroupsJson { name: string, members: Array<{ peerId: string, state: string }> }

describe('across OS processes (TCP on 127.0.0.1)', () => {
  let root: string
  const nodes: ProcNode[] = []

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-proc-'))
    nodes.push(await startProcNode({ dataDir: join(root, 'n1') }))
    for (const name of ['n2', 'n3']) nodes.push(await startProcNode({ dataDir: join(root, name), bootstrap: [nodes[0]?.addr ?? ''] }))
  })

  afterAll(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await rm(root, { recursive: true, force: true })
  })

  it('three `bin/dsm node` processes form one group of 3 ACTIVE members, as `bin/dsm groups --json` shows', async () => {
    const ids = nodes.map(n => n.peerId).sort()
    for (const node of nodes) {
      const groups = await eventually(async () => JSON.parse((await dsm(['groups', '--json', '--node', node.url])).stdout) as GroupsJson[],
        g => g.length === 1 && g[0]?.members.length === 3 && g[0].members.every(m => m.state === 'ACTIVE'), 30_000, `one group of 3 ACTIVE at ${node.url}`)
      expect(groups[0]?.members.map(m => m.peerId).sort()).toEqual(ids)
    }
    const table = await dsm(['groups', '--node', nodes[1]?.url ?? ''])
    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(/^GROUP\s+HEALTH\s+PEER\s+STATE/)
    expect(table.stdout).toMatch(/g1\s+healthy 3\/3/)
    expect(table.stdout.match(/ACTIVE/g)).toHaveLength(3)
  })

  it('a node stopped with SIGTERM leaves at once; restarted, it has the same peer id and group', async () => {
    const [, second] = nodes
    if (second == null) throw new Error('no second node')
    const code = await second.stop('SIGTERM')
    expect(code).toBe(0)
    await eventually(async () => JSON.parse((await dsm(['peers', '--json', '--node', nodes[0]?.url ?? ''])).stdout) as Array<{ peerId: string, state: string }>,
      peers => peers.find(p => p.peerId === second.peerId)?.state === 'OFFLINE', 5_000, 'OFFLINE after leave')
    const again = await startProcNode({ dataDir: join(root, 'n2'), bootstrap: [nodes[0]?.addr ?? ''] })
    nodes[1] = again
    expect(again.peerId).toBe(second.peerId)
    const id = await eventually(async () => JSON.parse((await dsm(['id', '--json', '--node', again.url])).stdout) as { group: string, state: string },
      v => v.state === 'ACTIVE', 20_000, 'restarted node ACTIVE')
    expect(id.group).toBe('g1')
  })
})
