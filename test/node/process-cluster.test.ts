import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { silentLogger } from '../../src/logger.ts'
import { ClusterKeys, generateSecret } from '../../src/net/cluster-secret.ts'
import { createDsmLibp2p } from '../../src/net/libp2p.ts'
import { ProvenPeers } from '../../src/net/peer-auth.ts'
import { DeleteRequestSchema, DeleteResultSchema, MembersRequestSchema, MembersResponseSchema, PROTOCOLS, SyncRequestSchema, SyncResponseSchema } from '../../src/wire/messages.ts'
import { request } from '../../src/wire/rpc.ts'
import { randomBytes, upload } from '../helpers/data.ts'
import { dsm, eventually, startProcNode } from '../sim/proc.ts'
import type { ProcNode } from '../sim/proc.ts'

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
    expect(table.stdout).toMatch(/^GROUP\s+HEALTH\s+FILES\s+PEER\s+STATE/)
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

describe('a node with another secret, across OS processes (TCP)', () => {
  let root: string
  const members: ProcNode[] = []
  let stranger: ProcNode | undefined
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-proc-secret-'))
    members.push(await startProcNode({ dataDir: join(root, 'm1'), args: ['--group', 'g1'] }))
    members.push(await startProcNode({ dataDir: join(root, 'm2'), args: ['--group', 'g1'], bootstrap: [members[0]?.addr ?? ''] }))
    // It bootstraps from a member and claims the members' group: everything it has but the secret.
    stranger = await startProcNode({ dataDir: join(root, 'x'), args: ['--group', 'g1'], bootstrap: [members[0]?.addr ?? ''], env: { DSM_SECRET: generateSecret() } })
  })
  afterAll(async () => {
    await Promise.all([...members, stranger].map(async n => n?.stop()))
    await rm(root, { recursive: true, force: true })
  })

  it('it is in no member\'s view, its uploads reach no member, and a libp2p stranger over TCP can change nothing', async () => {
    const peers = async (n: ProcNode): Promise<string[]> => (JSON.parse((await dsm(['peers', '--json', '--node', n.url])).stdout) as Array<{ peerId: string }>).map(p => p.peerId).sort()
    const memberIds = members.map(m => m.peerId).sort()
    for (const m of members) await eventually(async () => peers(m), ids => ids.length === 2, 20_000, `the members see each other at ${m.url}`)
    // Long enough for its heartbeats to have been seen and rejected: the members count them.
    await eventually(async () => (await (await fetch(`${members[0]?.url ?? ''}/metrics`)).text()).match(/dsm_heartbeats_dropped_total\{reason="unproven"\} (\d+)/)?.[1],
      n => Number(n) >= 3, 20_000, 'the stranger\'s heartbeats rejected')
    for (const m of members) expect(await peers(m)).toEqual(memberIds)
    expect(await peers(stranger as ProcNode)).toEqual([stranger?.peerId])
    const up = await upload(stranger?.url ?? '', randomBytes(30_000, 9), 'from-stranger.bin')
    expect(up.status === 201 ? (up.body.replicas as string[]).filter(p => memberIds.includes(p)) : [], JSON.stringify(up.body)).toEqual([])
    // A plain libp2p peer over TCP with a secret of its own.
    const libp2p = await createDsmLibp2p({
      privateKey: await generateKeyPair('Ed25519'),
      keys: new ClusterKeys([generateSecret()], 'generated'),
      proven: new ProvenPeers(),
      logger: silentLogger,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      transport: 'tcp'
    })
    try {
      const target = multiaddr(members[0]?.addr ?? '')
      const tries = await Promise.all([
        request(libp2p, target, PROTOCOLS.members, MembersRequestSchema, {}, MembersResponseSchema).catch((e: unknown) => e),
        request(libp2p, target, PROTOCOLS.delete, DeleteRequestSchema, { id: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' }, DeleteResultSchema).catch((e: unknown) => e),
        request(libp2p, target, PROTOCOLS.sync, SyncRequestSchema, { group: 'g1', since: 0, limit: 10 }, SyncResponseSchema).catch((e: unknown) => e)
      ])
      for (const t of tries) expect(t).toMatchObject({ code: 'ERR_PEER_UNAUTHORIZED' })
    } finally {
      await libp2p.stop()
    }
    for (const m of members) expect(await peers(m)).toEqual(memberIds)
  })
})
