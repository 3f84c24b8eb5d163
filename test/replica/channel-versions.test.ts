/**
 * A group is upgraded one node at a time (docs/operations.md), so the upload
 * channel speaks its previous version too: a member that knows only 2.0.0
 * still gets its copies, and a coordinator that speaks only 2.0.0 is still
 * served. Both ways, every copy holds the file and its bytes.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Channel } from '../../src/replica/channel.ts'
import { PROTOCOLS } from '../../src/wire/messages.ts'
import { createSimCluster, readWhole } from '../sim/cluster.ts'
import { randomBytes, sha256hex, upload } from '../helpers/data.ts'
import type { SimCluster } from '../sim/cluster.ts'

const MEMBERS = [0, 1, 2]
const restore: Array<() => void> = []
afterEach(() => { for (const r of restore.splice(0)) r() })

async function group (): Promise<SimCluster> {
  const c = await createSimCluster({ nodes: 3, http: true, configure: () => ({ group: 'g1' }) })
  await c.ready()
  await c.waitFor(() => MEMBERS.every(i => c.node(i).membership.view.groupMembers('g1').filter(m => m.state === 'ACTIVE').length === 3), { message: 'g1 whole' })
  return c
}

/** Upload small files at node 0; each must be on all three, byte for byte, over a channel of `protocol`. */
async function uploadsReachEveryone (c: SimCluster, protocol: string): Promise<void> {
  // Sync would bring the files too: held back, so only the channel can have put them there.
  for (const i of [1, 2]) await c.node(i).replica.sync.stop()
  const files = [randomBytes(4096, 11), randomBytes(100, 12), randomBytes(60_000, 13)]
  const ids: string[] = []
  for (const [k, data] of files.entries()) {
    const up = await upload(c.node(0).http?.url ?? '', data, `v${k}.bin`)
    expect(up.status, JSON.stringify(up.body)).toBe(201)
    ids.push(up.body.id as string)
  }
  await c.waitFor(() => ids.every(id => MEMBERS.every(i => c.node(i).store.index.get(id)?.state === 'present')), { message: 'on every member' })
  for (const i of [1, 2]) {
    for (const [k, id] of ids.entries()) expect(sha256hex(await readWhole(c.node(i), id))).toBe(sha256hex(files[k] as Uint8Array))
  }
  const streams = c.node(0).libp2p.getConnections().flatMap(conn => conn.streams.map(s => s.protocol))
  expect(streams).toContain(protocol)
  expect(streams).not.toContain(protocol === PROTOCOLS.channel ? PROTOCOLS.channelV2 : PROTOCOLS.channel)
}

describe('the upload channel across versions', () => {
  it('members that speak only 2.0.0 get their copies', async () => {
    const c = await group()
    try {
      for (const i of [1, 2]) await c.node(i).libp2p.unhandle(PROTOCOLS.channel)
      await uploadsReachEveryone(c, PROTOCOLS.channelV2)
    } finally {
      await c.close()
    }
  })

  it('a coordinator that speaks only 2.0.0 is served', async () => {
    const was = Object.getOwnPropertyDescriptor(Channel.prototype, 'protocols')
    Object.defineProperty(Channel.prototype, 'protocols', { get: () => [PROTOCOLS.channelV2], configurable: true })
    restore.push(() => { if (was != null) Object.defineProperty(Channel.prototype, 'protocols', was) })
    const c = await group()
    try {
      await uploadsReachEveryone(c, PROTOCOLS.channelV2)
    } finally {
      await c.close()
    }
  })

  it('between two nodes of this version, 3.0.0', async () => {
    const c = await group()
    try {
      await uploadsReachEveryone(c, PROTOCOLS.channel)
    } finally {
      await c.close()
    }
  })
})
