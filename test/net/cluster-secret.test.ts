/**
 * The cluster secret: a stranger — a libp2p peer without it, here a dsm node
 * configured with another secret — can call no cluster protocol, appear in
 * no membership view, and change, add or list nothing; it keeps the public
 * read rights (locate, get) unless the node serves --signed-urls. A secret is
 * rotated node by node without the cluster splitting.
 */
import { NameApplyRequestSchema, NameApplyResponseSchema, NameSyncRequestSchema, NameSyncResponseSchema, NamesRequestSchema, NamesResponseSchema } from '../../src/wire/names.ts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateSecret } from '../../src/net/cluster-secret.ts'
import { ReplicaSession } from '../../src/replica/replicate.ts'
import { Channel } from '../../src/replica/channel.ts'
import { putRemote } from '../../src/replica/put.ts'
import { fetchChunks } from '../../src/stream/get.ts'
import { decodeManifest } from '../../src/content/manifest.ts'
import {
  ApplyRequestSchema, ApplyResultSchema, DeleteRequestSchema, DeleteResultSchema, LeaveAckSchema, LeaveNoticeSchema, ListRequestSchema,
  ListResponseSchema, LocateRequestSchema, LocateResponseSchema, MembersRequestSchema, MembersResponseSchema, OutcomeRequestSchema, OutcomeResponseSchema, PROTOCOLS, PROTOCOL_ACCESS, SummaryRequestSchema, SummaryResponseSchema,
  RecruitRequestSchema, RecruitResponseSchema, SyncRequestSchema, SyncResponseSchema
} from '../../src/wire/messages.ts'
import { request } from '../../src/wire/rpc.ts'
import { createSimCluster, readWhole } from '../sim/cluster.ts'
import { randomBytes, sha256hex, upload } from '../helpers/data.ts'
import type { SimCluster } from '../sim/cluster.ts'
import type { DsmNode } from '../../src/node/dsm-node.ts'
import type { PeerId } from '@libp2p/interface'

const url = (c: SimCluster, i: number): string => c.node(i).http?.url ?? ''
const STRANGER = 3
const unauthorized = { code: 'ERR_PEER_UNAUTHORIZED' }

/** Members 0–2 in ga; node 3 has another secret and claims ga too (its heartbeats say ga, ACTIVE). */
async function clusterWithStranger (extra: { signedUrls?: boolean } = {}): Promise<SimCluster> {
  const other = generateSecret()
  const c = await createSimCluster({
    nodes: 4,
    http: true,
    configure: (i) => i === STRANGER ? { group: 'ga', secret: other } : { group: 'ga', ...(extra.signedUrls === true ? { signedUrls: true, open: false, token: 'secret-test-token-0123456789' } : {}) }
  })
  await c.waitFor(() => [0, 1, 2].every(i => c.node(i).membership.view.groupMembers('ga').filter(m => m.state === 'ACTIVE').length === 3), { message: 'the members see each other' })
  return c
}

describe('a stranger without the cluster secret', () => {
  let c: SimCluster
  let id: string
  let data: Uint8Array<ArrayBuffer>
  let stranger: DsmNode
  let member: PeerId
  beforeAll(async () => {
    c = await clusterWithStranger()
    data = randomBytes(300_000, 5)
    const up = await upload(url(c, 0), data, 'kept.bin', { group: 'ga' })
    expect(up.status, JSON.stringify(up.body)).toBe(201)
    id = up.body.id as string
    stranger = c.node(STRANGER)
    member = c.node(1).libp2p.peerId
    // It is connected (no network key): every refusal below is the secret's doing, not a closed door.
    await c.waitFor(() => c.node(1).libp2p.getConnections(stranger.libp2p.peerId).length > 0 || stranger.libp2p.getConnections(member).length > 0, { message: 'the stranger is connected' })
  }, 60_000)
  afterAll(async () => { await c?.close() })

  it('every cluster protocol refuses it with ERR_PEER_UNAUTHORIZED and nothing changes', async () => {
    const dialer = stranger.libp2p
    const ask = async <Req, Res>(protocol: string, reqSchema: Parameters<typeof request<Req, Res>>[3], req: Req, resSchema: Parameters<typeof request<Req, Res>>[5]): Promise<unknown> =>
      request(dialer, member, protocol, reqSchema, req, resSchema, { signal: AbortSignal.timeout(15_000) }).then(() => 'answered', (err: unknown) => err)
    expect(await ask(PROTOCOLS.delete, DeleteRequestSchema, { id }, DeleteResultSchema)).toMatchObject(unauthorized)
    const op = { kind: 'delete' as const, id, group: 'ga', ts: Date.now() + 60_000, origin: stranger.peerId }
    expect(await ask(PROTOCOLS.apply, ApplyRequestSchema, { op }, ApplyResultSchema)).toMatchObject(unauthorized)
    expect(await ask(PROTOCOLS.sync, SyncRequestSchema, { group: 'ga', since: 0, limit: 100 }, SyncResponseSchema)).toMatchObject(unauthorized)
    expect(await ask(PROTOCOLS.members, MembersRequestSchema, {}, MembersResponseSchema)).toMatchObject(unauthorized)
    expect(await ask(PROTOCOLS.list, ListRequestSchema, { afterSeq: 0, limit: 100 }, ListResponseSchema)).toMatchObject(unauthorized)
    expect(await ask(PROTOCOLS.recruit, RecruitRequestSchema, { group: 'gb' }, RecruitResponseSchema)).toMatchObject(unauthorized)
    expect(await ask(PROTOCOLS.leave, LeaveNoticeSchema, { sealed: new Uint8Array(10) }, LeaveAckSchema)).toMatchObject(unauthorized)
    // The streaming protocols: an upload (put) and a replication push.
    const put = await putRemote(dialer, member.toString(), { group: 'ga', name: 'evil.bin', quorum: 'all' }, (async function * () { yield randomBytes(5000, 6) })())
      .then(() => 'stored', (err: unknown) => err)
    expect(put).toMatchObject(unauthorized)
    const pushed = await (async () => {
      const session = await ReplicaSession.open(dialer, member.toString(), { group: 'ga', chunkSize: 1024 * 1024 }, { signal: AbortSignal.timeout(10_000) })
      await session.sendChunk(randomBytes(1000, 7), { signal: AbortSignal.timeout(10_000) })
      await session.prepare({ manifest: new Uint8Array(10), createdAt: 1, ts: 1, origin: stranger.peerId, copies: 1, members: [] }, { signal: AbortSignal.timeout(10_000) })
      return 'prepared'
    })().catch((err: unknown) => err)
    expect(pushed).toMatchObject(unauthorized)
    // The small-upload channel: one frame carries a chunk and its prepare.
    const chunk = randomBytes(4000, 8)
    const channeled = await new Channel(dialer, member.toString())
      .put({ group: 'ga', chunkSize: 1024 * 1024, chunk, prepare: { manifest: new Uint8Array(10), createdAt: 1, ts: 1, origin: stranger.peerId, copies: 1, members: [] } }, { signal: AbortSignal.timeout(10_000) })
      .then(() => 'prepared', (err: unknown) => err)
    expect(channeled, String(channeled)).toMatchObject(unauthorized)
    // Its previous version too (spoken while a group is upgraded node by node).
    class ChannelV2 extends Channel { override get protocols (): string[] { return [PROTOCOLS.channelV2] } }
    const channeledV2 = await new ChannelV2(dialer, member.toString())
      .put({ group: 'ga', chunkSize: 1024 * 1024, chunk, prepare: { manifest: new Uint8Array(10), createdAt: 1, ts: 1, origin: stranger.peerId, copies: 1, members: [] } }, { signal: AbortSignal.timeout(10_000) })
      .then(() => 'prepared', (err: unknown) => err)
    expect(channeledV2, String(channeledV2)).toMatchObject(unauthorized)
    // Every protocol the table calls 'cluster' was tried above.
    expect(await ask(PROTOCOLS.outcome, OutcomeRequestSchema, { id, ts: 1, origin: stranger.peerId }, OutcomeResponseSchema)).toMatchObject(unauthorized)
    // A group's summary says which files it holds: for members only.
    expect(await ask(PROTOCOLS.summary, SummaryRequestSchema, { group: 'ga' }, SummaryResponseSchema)).toMatchObject(unauthorized)
    // The S3 namespace: no bucket made, no key pushed, no name log read.
    expect(await ask(PROTOCOLS.names, NamesRequestSchema, { op: 'write', bucket: 'stolen', key: '', live: true }, NamesResponseSchema)).toMatchObject(unauthorized)
    expect(await ask(PROTOCOLS.nameApply, NameApplyRequestSchema, { group: 'ga', op: { bucket: 'stolen', key: 'k', live: true, ts: Date.now(), origin: stranger.peerId } }, NameApplyResponseSchema)).toMatchObject(unauthorized)
    expect(await ask(PROTOCOLS.nameSync, NameSyncRequestSchema, { group: 'ga', since: 0, limit: 10 }, NameSyncResponseSchema)).toMatchObject(unauthorized)
    expect(Object.entries(PROTOCOL_ACCESS).filter(([, a]) => a === 'cluster').map(([p]) => p).sort())
      .toEqual(['apply', 'channel', 'channelV2', 'delete', 'leave', 'list', 'members', 'nameApply', 'nameSync', 'names', 'outcome', 'put', 'recruit', 'replicate', 'summary', 'sync'])
    // Nothing changed: the file is still on every member, nothing else arrived.
    for (const i of [0, 1, 2]) {
      expect(c.node(i).store.index.get(id)?.state).toBe('present')
      expect(c.node(i).store.index.stats().present.files).toBe(1)
      expect(c.node(i).store.names.head()).toBe(0)
    }
  })

  it('its heartbeats (ga, ACTIVE, huge free space) are rejected: it is in no view, uploads to ga keep all 3 copies', async () => {
    await c.waitFor(() => [0, 1, 2].every(i => c.node(i).membership.dropped.unproven >= 3), { timeoutMs: 20_000, message: 'its heartbeats are seen and rejected' })
    for (const i of [0, 1, 2]) {
      expect(c.node(i).membership.view.get(stranger.peerId), `member ${i} lists the stranger`).toBeUndefined()
      expect(c.node(i).libp2p.services.auth.isProven(stranger.peerId)).toBe(false)
    }
    expect(stranger.membership.view.members().map(m => m.peerId), 'the stranger hears no member').toEqual([stranger.peerId])
    for (const via of [0, 2]) {
      const up = await upload(url(c, via), randomBytes(70_000, 10 + via), `after-${via}.bin`, { group: 'ga' })
      expect(up.status, JSON.stringify(up.body)).toBe(201)
      expect((up.body.replicas as string[]).sort()).toEqual([0, 1, 2].map(i => c.peerId(i)).sort())
    }
  })

  it('it keeps the public read rights: locate and get work and the bytes verify', async () => {
    const res = await request(stranger.libp2p, member, PROTOCOLS.locate, LocateRequestSchema, { id }, LocateResponseSchema)
    expect(res.state).toBe('present')
    const manifest = await decodeManifest(res.manifest as Uint8Array)
    const parts: Uint8Array[] = []
    for await (const chunk of fetchChunks(stranger.libp2p, member.toString(), manifest, 0, manifest.size, { signal: AbortSignal.timeout(10_000) })) parts.push(chunk.data)
    expect(sha256hex(Buffer.concat(parts))).toBe(sha256hex(data))
  })
})

describe('with --signed-urls', () => {
  it('a stranger cannot even locate or read over libp2p (HTTP asks for signatures too)', async () => {
    const c = await clusterWithStranger({ signedUrls: true })
    try {
      const member = c.node(0).libp2p.peerId
      const locate = await request(c.node(STRANGER).libp2p, member, PROTOCOLS.locate, LocateRequestSchema, { id: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' }, LocateResponseSchema)
        .catch((err: unknown) => err)
      expect(locate).toMatchObject(unauthorized)
      // Members still answer each other.
      const ok = await request(c.node(1).libp2p, member, PROTOCOLS.locate, LocateRequestSchema, { id: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' }, LocateResponseSchema)
      expect(ok.state).toBe('unknown')
    } finally {
      await c.close()
    }
  })
})

describe('secret rotation', () => {
  it('nodes that hold the new secret and still accept the old one work with both; the cluster never splits', async () => {
    const oldSecret = generateSecret()
    const newSecret = generateSecret()
    // Mid-rotation: node 0 still has only the old secret, nodes 1 and 2 moved on and accept the old one.
    const c = await createSimCluster({
      nodes: 3,
      http: true,
      configure: (i) => ({ group: 'g1', ...(i === 0 ? { secret: oldSecret } : { secret: newSecret, previousSecrets: [oldSecret] }) })
    })
    const whole = (): boolean => c.upIndexes().every(i => c.node(i).membership.view.groupMembers('g1').filter(m => m.state === 'ACTIVE').length === c.upIndexes().length)
    try {
      await c.waitFor(whole, { message: 'one group across old and new secrets' })
      const first = await upload(url(c, 0), randomBytes(200_000, 21), 'during.bin', { group: 'g1' })
      expect(first.status, JSON.stringify(first.body)).toBe(201)
      expect(first.body.replicas).toHaveLength(3)
      // Finishing: node 0 gets the new secret (old still accepted); then node 1 drops the old one.
      await c.stop(0)
      c.reconfigure(0, { secret: newSecret, previousSecrets: [oldSecret] })
      await c.restart(0)
      await c.stop(1)
      c.reconfigure(1, { secret: newSecret, previousSecrets: [] })
      await c.restart(1)
      await c.waitFor(whole, { timeoutMs: 20_000, message: 'one group after the rotation' })
      const second = await upload(url(c, 1), randomBytes(200_000, 22), 'after.bin', { group: 'g1' })
      expect(second.status, JSON.stringify(second.body)).toBe(201)
      expect(second.body.replicas).toHaveLength(3)
      for (const i of [0, 1, 2]) expect(sha256hex(await readWhole(c.node(i), first.body.id as string))).toBe(sha256hex(randomBytes(200_000, 21)))
    } finally {
      await c.close()
    }
  })
})
