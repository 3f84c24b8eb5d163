/**
 * The commit protocol's failure cases (replica/commit.ts, replica/resolve.ts),
 * on a group of three in one process:
 *  - every decision lost after the acknowledgement: each member's resolver
 *    asks the coordinator and commits — the file is on all three;
 *  - the coordinator crashes after every copy prepared and before it
 *    committed (never acknowledged): after its restart the resolvers count
 *    three prepared copies and commit everywhere — all, not some;
 *  - a member fails its prepare under quorum "all": 503, and no node keeps a
 *    file, a prepared record or a chunk of it — nothing.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Channel } from '../../src/replica/channel.ts'
import { ReplicaSession } from '../../src/replica/replicate.ts'
import { createSimCluster, readWhole } from '../sim/cluster.ts'
import { download, randomBytes, sha256hex, upload } from '../helpers/data.ts'
import type { SimCluster } from '../sim/cluster.ts'

const url = (c: SimCluster, i: number): string => c.node(i).http?.url ?? ''
const MEMBERS = [0, 1, 2]

async function group (): Promise<SimCluster> {
  const c = await createSimCluster({ nodes: 3, http: true, configure: () => ({ group: 'g1' }) })
  await c.ready()
  await c.waitFor(() => MEMBERS.every(i => c.node(i).membership.view.groupMembers('g1').filter(m => m.state === 'ACTIVE').length === 3), { message: 'g1 whole' })
  return c
}

const presentOnAll = (c: SimCluster, id: string): boolean => MEMBERS.every(i => c.node(i).store.index.get(id)?.state === 'present')
const preparedAnywhere = (c: SimCluster): number => MEMBERS.reduce((n, i) => n + (c.isUp(i) ? c.node(i).store.prepared.size : 0), 0)

const restore: Array<() => void> = []
afterEach(() => { for (const r of restore.splice(0)) r() })

/** Swallow every decision frame (a link that breaks right after the acknowledgement). */
function loseDecisions (): void {
  const channel = Object.getOwnPropertyDescriptor(Channel.prototype, 'decide')
  const session = Object.getOwnPropertyDescriptor(ReplicaSession.prototype, 'decide')
  Channel.prototype.decide = function () {}
  ReplicaSession.prototype.decide = async function () {}
  restore.push(() => {
    if (channel != null) Object.defineProperty(Channel.prototype, 'decide', channel)
    if (session != null) Object.defineProperty(ReplicaSession.prototype, 'decide', session)
  })
}

describe('the commit protocol when things fail', () => {
  it('decisions lost after the acknowledgement: the members ask the coordinator and commit', async () => {
    const c = await group()
    try {
      loseDecisions()
      // Sync would bring the files too (from the coordinator's log): held back, so the resolvers must decide.
      for (const i of [1, 2]) await c.node(i).replica.sync.stop()
      const small = randomBytes(4096, 1)
      const big = randomBytes(2 * 1024 * 1024 + 3, 2)
      const ups = [await upload(url(c, 0), small, 'lost-small.bin'), await upload(url(c, 0), big, 'lost-big.bin')]
      for (const up of ups) expect(up.status, JSON.stringify(up.body)).toBe(201)
      const ids = ups.map(u => u.body.id as string)
      for (const i of [1, 2]) {
        for (const id of ids) expect(c.node(i).store.prepared.forFile(id), `member ${i} waits for a decision`).toHaveLength(1)
      }
      await c.waitFor(() => ids.every(id => presentOnAll(c, id)), { timeoutMs: 30_000, message: 'the resolvers commit' })
      expect(c.node(1).replica.resolver.counters.committed + c.node(2).replica.resolver.counters.committed).toBe(4)
      expect(preparedAnywhere(c)).toBe(0)
      expect(sha256hex(await readWhole(c.node(2), ids[1] as string))).toBe(sha256hex(big))
    } finally {
      await c.close()
    }
  })

  it('the coordinator dies after every copy prepared, before it committed: after its restart the upload is on all three', async () => {
    const c = await group()
    try {
      const coordinator = c.node(0).store
      let held = 0
      // Its process "dies" between the quorum and its own commit: the commit never happens.
      coordinator.commitPrepared = async () => { held++; return await new Promise(() => {}) }
      const data = randomBytes(300_000, 3)
      const pending = upload(url(c, 0), data, 'orphan.bin').then(r => r.status, () => 'no answer')
      await c.waitFor(() => held === 1, { message: 'every copy prepared' })
      expect(c.node(1).store.prepared.size + c.node(2).store.prepared.size).toBe(2)
      await c.kill(0)
      expect(await pending).not.toBe(201)
      // While the coordinator is gone the upload is undecided (it might have been acknowledged): a retry, never a 404.
      const undecided = c.node(1).store.prepared.all()[0]?.id as string
      for (const i of [1, 2]) {
        const r = await download(url(c, i), undecided)
        expect(r.status, `read through node ${i}`).toBe(503)
      }
      const node = await c.restart(0)
      const id = node.store.prepared.all()[0]?.id
      expect(id, 'the coordinator kept its prepared record').toBeDefined()
      // Present everywhere (a member may get it by sync before its resolver hears the outcome), and every prepared record decided.
      await c.waitFor(() => c.isUp(0) && presentOnAll(c, id as string) && preparedAnywhere(c) === 0, { timeoutMs: 45_000, message: 'all three commit, no prepared record left' })
      for (const i of MEMBERS) expect(sha256hex(await readWhole(c.node(i), id as string))).toBe(sha256hex(data))
    } finally {
      await c.close()
    }
  })

  it('a member that fails its prepare under quorum "all": 503 and nothing anywhere', async () => {
    const c = await group()
    try {
      const member = c.node(2).store
      const proto = Object.getPrototypeOf(member) as typeof member
      member.prepare = async () => { throw new Error('injected: prepare failed') }
      restore.push(() => { member.prepare = proto.prepare })
      for (const [name, size] of [['fail-small.bin', 4000], ['fail-big.bin', 2 * 1024 * 1024 + 9]] as const) {
        const chunksBefore = MEMBERS.map(i => c.node(i).store.chunks.digests().length)
        const up = await upload(url(c, 0), randomBytes(size, size), name)
        expect(up.status, JSON.stringify(up.body)).toBe(503)
        expect(up.body.code).toBe('ERR_QUORUM')
        await c.waitFor(() => preparedAnywhere(c) === 0, { message: 'the members that prepared heard the abort' })
        for (const i of MEMBERS) {
          expect(c.node(i).store.index.stats().present.files, `node ${i} keeps no file`).toBe(0)
          expect(c.node(i).store.chunks.digests().length, `node ${i} keeps no chunk of it`).toBe(chunksBefore[i])
        }
      }
    } finally {
      await c.close()
    }
  })
})
