import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { DsmNode } from '../../src/node/dsm-node.ts'
import { createSimCluster } from '../sim/cluster.ts'

describe('HTTP API', () => {
  it('answers /healthz, /api/id, /api/peers and /api/groups with the cluster as gossip sees it', async () => {
    const c = await createSimCluster({ nodes: 3, http: true })
    try {
      await c.ready()
      await c.waitFor(() => c.node(1).membership.view.members().filter(m => m.state === 'ACTIVE').length === 3, { message: 'node 1 sees all' })
      const url = c.node(1).http?.url ?? ''
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ ok: true, state: 'ACTIVE', group: 'g1' })
      const id = await (await fetch(`${url}/api/id`)).json() as Record<string, unknown>
      expect(id).toMatchObject({ peerId: c.peerId(1), group: 'g1', state: 'ACTIVE', addrs: [expect.stringContaining('/memory/')] })
      const peers = await (await fetch(`${url}/api/peers`)).json() as Array<Record<string, unknown>>
      expect(peers.map(p => p.peerId).sort()).toEqual([0, 1, 2].map(i => c.peerId(i)).sort())
      expect(peers.find(p => p.peerId === c.peerId(1))).toMatchObject({ self: true, connected: true })
      const groups = await (await fetch(`${url}/api/groups`)).json() as Array<{ name: string, members: Array<Record<string, unknown>> }>
      expect(groups).toHaveLength(1)
      expect(groups[0]?.name).toBe('g1')
      for (const m of groups[0]?.members ?? []) {
        expect(m).toMatchObject({ state: 'ACTIVE', load: 0 })
        expect(m.total).toBeGreaterThan(0)
        expect(m.free).toBeGreaterThan(0)
        expect(Object.keys(m)).toEqual(expect.arrayContaining(['peerId', 'state', 'addrs', 'free', 'total', 'load']))
      }
    } finally {
      await c.close()
    }
  })

  it('answers unknown routes with a JSON 404 carrying a code', async () => {
    const c = await createSimCluster({ nodes: 1, http: true })
    try {
      const res = await fetch(`${c.node(0).http?.url ?? ''}/nope`)
      expect(res.status).toBe(404)
      expect(await res.json()).toMatchObject({ code: 'ERR_NOT_FOUND', message: expect.stringContaining('/nope') })
    } finally {
      await c.close()
    }
  })

  it('refuses a taken HTTP port with AddressInUseError and leaves the data dir untouched', async () => {
    const blocker = createServer()
    await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    const c = await createSimCluster({ nodes: 1 })
    try {
      const config = { ...c.config(0), dataDir: `${c.root}/never-created`, http: { host: '127.0.0.1', port } }
      const node = new DsmNode({ config, simulation: { transport: 'memory' } })
      const err = await node.start().catch((e: Error) => e)
      expect(err).toMatchObject({ name: 'AddressInUseError', message: expect.stringContaining(`127.0.0.1:${port}`) })
      expect(node.isStarted()).toBe(false)
      const { existsSync } = await import('node:fs')
      expect(existsSync(config.dataDir)).toBe(false)
    } finally {
      blocker.close()
      await c.close()
    }
  })
})
