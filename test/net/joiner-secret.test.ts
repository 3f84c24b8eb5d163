/**
 * A joiner cannot split off: `dsm node --bootstrap …` without the cluster's
 * secret refuses to start and says how to give it, instead of making a
 * secret of its own and reporting a healthy one-node cluster. Only a new
 * cluster (no --bootstrap, or --new-cluster) makes a secret.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dsm, eventually, startProcNode } from '../sim/proc.ts'
import type { ProcNode } from '../sim/proc.ts'

describe('a joiner without the cluster secret', () => {
  let root: string
  let first: ProcNode
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-joiner-'))
    first = await startProcNode({ dataDir: join(root, 'a') })
  })
  afterAll(async () => {
    await first.stop()
    await rm(root, { recursive: true, force: true })
  })

  it('exits non-zero saying a joining node needs the cluster secret and how to give it; makes no secret', async () => {
    const dataDir = join(root, 'b')
    await expect(startProcNode({ dataDir, bootstrap: [first.addr], env: { DSM_SECRET: '' } }))
      .rejects.toThrow(/exited with [1-9]\d* before starting[\s\S]*a node joining a cluster needs that cluster's secret[\s\S]*DSM_SECRET=<secret> or --secret-file/)
    expect(existsSync(join(dataDir, 'secret'))).toBe(false)
  })

  it('a node given another cluster\'s secret says on its terminal that it is in no cluster with them, and dsm groups shows it', async () => {
    const node = await startProcNode({ dataDir: join(root, 'd'), bootstrap: [first.addr], env: { DSM_SECRET: 'another-cluster-secret-0123456789abcdef' } })
    const mate = await startProcNode({ dataDir: join(root, 'e'), bootstrap: [first.addr] })
    try {
      const said = /dsm node: WARNING: this node is in no cluster with the \d+ peers? it reached[\s\S]*DSM_SECRET=<secret> or --secret-file/
      await eventually(async () => node.output(), out => said.test(out), 20_000, 'the warning on the terminal')
      const groups = await dsm(['groups', '--node', node.url])
      expect(groups.code).toBe(0)
      expect(groups.stderr).toMatch(/WARNING: this node is in no cluster with the \d+ peers? it reached/)
      // The same question to a node that a peer proved its secret to: no warning (alone with the stranger, it had one too).
      await eventually(async () => (await fetch(`${first.url}/api/id`)).json() as Promise<{ secret: { provenPeers: number } }>, id => id.secret.provenPeers > 0, 20_000, 'a peer proving the secret to the first node')
      const ok = await dsm(['groups', '--node', first.url])
      expect(ok.code).toBe(0)
      expect(ok.stderr).not.toMatch(/in no cluster/)
    } finally {
      await Promise.all([node.stop(), mate.stop()])
    }
  })

  it('--new-cluster makes one all the same (a new cluster started from known addresses)', async () => {
    const dataDir = join(root, 'c')
    const node = await startProcNode({ dataDir, bootstrap: [first.addr], args: ['--new-cluster'], env: { DSM_SECRET: '' } })
    await node.stop()
    expect(existsSync(join(dataDir, 'secret'))).toBe(true)
  })
})
