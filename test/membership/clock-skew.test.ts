/**
 * A member whose wall clock is 5 minutes off (libfaketime on a real node
 * process): the group stays whole — ACTIVE everywhere, uploads through every
 * member stored on all three, deletes through the skewed one work — and the
 * skew is reported (`dsm groups`, /metrics) instead of splitting the group.
 */
import { skipUnless } from '../helpers/skip.ts'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { faketimeUnavailable, skewedClockEnv } from '../helpers/faketime.ts'
import { randomBytes, upload } from '../helpers/data.ts'
import { dsm, eventually, startProcNode } from '../sim/proc.ts'
import type { ProcNode } from '../sim/proc.ts'

const skip = skipUnless('clock-skew tests', faketimeUnavailable()) ? 'skipped' : undefined

interface GroupsJson { name: string, members: Array<{ peerId: string, state: string, skewMs?: number }> }

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe.skipIf(skip != null).each([['ahead', '+5m', 1], ['behind', '-5m', -1]] as const)('one member\'s clock 5 minutes %s', (_label, offset, sign) => {
  it('the group stays whole, every member takes uploads with all 3 copies, and the skew is reported', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dsm-skew-'))
    const nodes: ProcNode[] = []
    try {
      nodes.push(await startProcNode({ dataDir: join(root, 'n1'), args: ['--group', 'g1'] }))
      const bootstrap = [nodes[0]?.addr ?? '']
      nodes.push(await startProcNode({ dataDir: join(root, 'n2'), args: ['--group', 'g1'], bootstrap }))
      // The skewed one: its whole process (heartbeat stamps, operation stamps, upload times) runs 5 minutes off.
      nodes.push(await startProcNode({ dataDir: join(root, 'n3'), args: ['--group', 'g1'], bootstrap, env: skewedClockEnv(offset) }))
      const skewed = nodes[2] as ProcNode
      const groups = async (n: ProcNode): Promise<GroupsJson[]> => JSON.parse((await dsm(['groups', '--json', '--node', n.url])).stdout) as GroupsJson[]
      // Whole everywhere, and the others measured the skew from its heartbeats (so they did hear them).
      for (const n of nodes) {
        await eventually(async () => groups(n), g => g[0]?.members.length === 3 && g[0].members.every(m => m.state === 'ACTIVE') &&
          (n === skewed || Math.sign(g[0].members.find(m => m.peerId === skewed.peerId)?.skewMs ?? 0) === sign), 30_000, `g1 whole at ${n.url}`)
      }
      const seen = (await groups(nodes[0] as ProcNode))[0]?.members.find(m => m.peerId === skewed.peerId)
      expect(Math.abs(seen?.skewMs ?? 0)).toBeGreaterThan(290_000)
      const table = await dsm(['groups', '--node', nodes[0]?.url ?? ''])
      expect(table.stdout).toMatch(sign > 0 ? /\+3\d\ds/ : /-3\d\ds/)
      expect(await (await fetch(`${nodes[0]?.url ?? ''}/metrics`)).text()).toMatch(/dsm_members_clock_skewed 1/)
      // Uploads through every member, the skewed one included: three copies each, readable everywhere.
      const files = new Map<string, string>()
      for (const [k, n] of nodes.entries()) {
        const data = randomBytes(300_000 + k, 40 + k)
        const up = await upload(n.url, data, `skew-${k}.bin`)
        expect(up.status, JSON.stringify(up.body)).toBe(201)
        expect(up.body.replicas).toHaveLength(3)
        files.set(up.body.id as string, sha(data))
      }
      for (const [id, hash] of files) {
        for (const n of nodes) expect(sha(new Uint8Array(await (await fetch(`${n.url}/files/${id}`)).arrayBuffer())), `${id} on ${n.url}`).toBe(hash)
      }
      // A delete through the skewed member of a file another member stamped, and one through a normal member of the
      // skewed member's file: both win over the add (the hybrid clock orders them), everywhere.
      const [fromFirst, , fromSkewed] = [...files.keys()]
      expect((await fetch(`${skewed.url}/files/${fromFirst ?? ''}`, { method: 'DELETE' })).status).toBe(200)
      expect((await fetch(`${nodes[0]?.url ?? ''}/files/${fromSkewed ?? ''}`, { method: 'DELETE' })).status).toBe(200)
      for (const n of nodes) {
        for (const id of [fromFirst, fromSkewed]) {
          await eventually(async () => (await fetch(`${n.url}/files/${id ?? ''}`, { method: 'HEAD' })).status, s => s === 404, 10_000, `${id ?? ''} deleted on ${n.url}`)
        }
      }
    } finally {
      await Promise.all(nodes.map(async n => n.stop()))
      await rm(root, { recursive: true, force: true })
    }
  })
})
