/**
 * A short, bounded mixed load on a cluster of `bin/dsm node` processes
 * (ga: 3 members, gb: 1), then the checks that matter: no node exited, no
 * 5xx and no broken response without faults, every byte read during the load
 * right, and every acknowledged file byte-identical from every node
 * afterwards (deleted ones 404 everywhere). The long, measured version is
 * `npm run bench -- load`.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runMixedLoad, serverErrors } from '../sim/load.ts'
import { dsm, eventually, startProcNode } from '../sim/proc.ts'
import type { ProcNode } from '../sim/proc.ts'

interface GroupsJson { name: string, members: Array<{ state: string }> }

describe('a mixed load on 4 node processes in 2 groups', () => {
  let root: string
  const nodes: ProcNode[] = []
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-load-'))
    nodes.push(await startProcNode({ dataDir: join(root, 'n1'), args: ['--group', 'ga'] }))
    const bootstrap = [nodes[0]?.addr ?? '']
    for (const [name, group] of [['n2', 'ga'], ['n3', 'ga'], ['n4', 'gb']] as const) {
      nodes.push(await startProcNode({ dataDir: join(root, name), args: ['--group', group], bootstrap }))
    }
    await eventually(async () => JSON.parse((await dsm(['groups', '--json', '--node', nodes[3]?.url ?? ''])).stdout) as GroupsJson[],
      g => g.length === 2 && g.flatMap(x => x.members).filter(m => m.state === 'ACTIVE').length === 4, 30_000, 'both groups ACTIVE')
  }, 60_000)
  afterAll(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await rm(root, { recursive: true, force: true })
  })

  it('no node exits, no 5xx, every read right; afterwards every acknowledged file reads back identical from every node', async () => {
    const result = await runMixedLoad({ urls: () => nodes.map(n => n.url), clients: 16, operations: 320, seed: 7, maxBytes: 2 * 1024 * 1024 })
    const summary = JSON.stringify(Object.fromEntries(Object.entries(result.ops).map(([op, s]) => [op, s.statuses])))
    expect(nodes.map(n => n.proc.exitCode), 'every node still runs').toEqual([null, null, null, null])
    expect(serverErrors(result), `${summary} ${result.serverErrorBodies.join(' | ')}`).toBe(0)
    expect(Object.values(result.broken).reduce((a, b) => a + b, 0), `${summary} ${result.brokenDetails.join(' | ')}`).toBe(0)
    expect(result.mismatches).toBe(0)
    expect(result.ops.upload.statuses['201'] ?? 0).toBeGreaterThan(50)
    for (const [id, file] of result.files) {
      for (const node of nodes) {
        const res = await fetch(`${node.url}/files/${id}`)
        expect(res.status, `${id} from ${node.url}`).toBe(200)
        expect(createHash('sha256').update(new Uint8Array(await res.arrayBuffer())).digest('hex')).toBe(file.sha256)
      }
    }
    // A node that located a file lately may trust that location for LOCATE_CACHE_TTL_MS (docs/guarantees.md): a HEAD
    // there is answered from it. Every deleted file is 404 on every node once that has passed.
    const deletedAnswers = async (): Promise<string[]> => (await Promise.all([...result.deleted].flatMap(id => nodes.map(async node =>
      `${id.slice(-8)}@${nodes.indexOf(node)}=${(await fetch(`${node.url}/files/${id}`, { method: 'HEAD' })).status}`)))).filter(a => !a.endsWith('=404'))
    await eventually(deletedAnswers, left => left.length === 0, 30_000, 'every deleted file 404 on every node')
  })
})
