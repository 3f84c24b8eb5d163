/**
 * Data that was already damaged: the scrub finds needles that fail their
 * check and the group heals them — also when each copy lost a different
 * chunk — and what cannot be healed (no good copy anywhere) is named: by
 * file ID in the log, in a metric, in `dsm groups` and `dsm stat`, and never
 * served.
 */
import { describe, expect, it } from 'vitest'
import { createSimCluster } from '../sim/cluster.ts'
import { download, randomBytes, sha256hex, upload } from '../helpers/data.ts'
import { alterStoredChunk } from '../helpers/disk.ts'
import { eventually } from '../sim/proc.ts'
import type { SimCluster } from '../sim/cluster.ts'

const url = (c: SimCluster, i: number): string => c.node(i).http?.url ?? ''

async function pair (): Promise<SimCluster> {
  const c = await createSimCluster({ nodes: 2, http: true, configure: () => ({ group: 'g1' }) })
  await c.ready()
  await c.waitFor(() => [0, 1].every(i => c.node(i).membership.view.members().filter(m => m.state === 'ACTIVE').length === 2), { message: 'both ACTIVE' })
  return c
}

describe('damaged data', () => {
  it('two copies each missing a different chunk heal each other', async () => {
    const c = await pair()
    try {
      const data = randomBytes(3 * 1024 * 1024, 21)
      const { body } = await upload(url(c, 0), data, 'two.bin')
      const id = body.id as string
      const manifest = (await c.node(0).replica.open(id)).manifest
      await alterStoredChunk(c.node(0).store, c.node(0).db, manifest.chunks[0] as Uint8Array, 10)
      await alterStoredChunk(c.node(1).store, c.node(1).db, manifest.chunks[2] as Uint8Array, 10)
      // The scrub of each node finds its bad needle; each copy turns pending and fetches the chunk it lost from the other.
      const found = await Promise.all([0, 1].map(async i => c.node(i).scrub.pass()))
      expect(found.map(f => f.bad)).toEqual([1, 1])
      for (const i of [0, 1]) c.node(i).replica.sync.kick()
      await c.waitFor(() => [0, 1].every(i => c.node(i).store.index.get(id)?.state === 'present'), { message: 'both copies healed', timeoutMs: 30_000 })
      for (const i of [0, 1]) expect(sha256hex((await download(url(c, i), id)).bytes)).toBe(sha256hex(data))
      expect((await c.node(0).scrub.pass()).bad).toBe(0)
    } finally {
      await c.close()
    }
  })

  it('a chunk with no good copy anywhere: the file is named damaged (log, metric, groups, stat) and never served', async () => {
    const c = await pair()
    try {
      const data = randomBytes(2 * 1024 * 1024, 22)
      const { body } = await upload(url(c, 0), data, 'lost.bin')
      const id = body.id as string
      const manifest = (await c.node(0).replica.open(id)).manifest
      for (const i of [0, 1]) await alterStoredChunk(c.node(i).store, c.node(i).db, manifest.chunks[1] as Uint8Array, 99)
      // Each copy is found bad by its scrub, or by serving it to its mate's repair, whichever comes first.
      for (const i of [0, 1]) await c.node(i).scrub.pass()
      await c.waitFor(() => [0, 1].every(i => c.node(i).store.corruptChunks === 1), { message: 'both bad copies found' })
      for (const i of [0, 1]) c.node(i).replica.sync.kick()
      await c.waitFor(() => [0, 1].every(i => c.node(i).replica.sync.damaged.has(id)), { message: 'both members name it damaged', timeoutMs: 30_000 })
      // Never served: no copy's bytes verify.
      expect((await download(url(c, 0), id)).status).toBe(503)
      const metrics = await (await fetch(`${url(c, 1)}/metrics`)).text()
      expect(metrics).toMatch(/^dsm_damaged_files 1$/m)
      const stat = await (await fetch(`${url(c, 0)}/api/files/${id}`)).json() as { copies: number, damaged: boolean }
      expect(stat).toMatchObject({ copies: 0, damaged: true })
      // `dsm groups` reads the members' heartbeats: it shows it once the next one is in.
      await eventually(async () => await (await fetch(`${url(c, 0)}/api/groups`)).json() as Array<{ name: string, copies: { damaged: number } }>,
        groups => groups.find(g => g.name === 'g1')?.copies.damaged === 1, 20_000, 'dsm groups shows it')
      // An unhealable file does not keep the members from serving the rest, nor a mate from being ACTIVE.
      expect(c.node(1).status.state).toBe('ACTIVE')
    } finally {
      await c.close()
    }
  })
})
