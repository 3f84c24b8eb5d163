import { describe, expect, it } from 'vitest'
import { groupKey } from '../../src/dht/group-directory.ts'
import { GroupFinder } from '../../src/dht/group-finder.ts'
import { silentLogger } from '../../src/logger.ts'
import { MembershipView } from '../../src/membership/view.ts'
import { createSimCluster, readWhole } from '../sim/cluster.ts'
import { download, randomBytes, sha256hex, upload } from '../helpers/data.ts'

describe('group directory in the DHT', () => {
  it('derives a stable key per group name', async () => {
    expect((await groupKey('g1')).toString()).toBe((await groupKey('g1')).toString())
    expect((await groupKey('g1')).toString()).not.toBe((await groupKey('g2')).toString())
  })

  it('a node bootstrapped with one peer finds a group\'s members through the DHT alone', async () => {
    // 6 nodes: g1 = {0,1,2}, g2 = {3,4,5}. A newcomer knows only node 4 and has no gossip at all.
    const c = await createSimCluster({ nodes: 6, sequential: true, joinSettleMs: 300 })
    try {
      const g1 = [0, 1, 2].map(i => c.peerId(i)).sort()
      expect(c.node(0).status.group).toBe('g1')
      const newcomer = c.size
      const node = await (async () => {
        // Bootstrap from node 4 only, and never subscribe to gossip: membership stays out of it.
        const original = c.config.bind(c)
        c.config = (i: number) => i === newcomer ? { ...original(i), bootstrap: [`${c.address(4)}/p2p/${c.peerId(4)}`], spare: true } : original(i)
        const index = await c.add()
        return c.node(index)
      })()
      node.libp2p.services.pubsub.unsubscribe('/dsm/membership/1.0.0')
      const found = await findEventually(async () => (await node.directory.findMembers('g1', { signal: AbortSignal.timeout(5000) })).map(p => p.id.toString()).sort(), g1)
      expect(found).toEqual(g1)
      // The records carry addresses, so the newcomer can dial what it found.
      const infos = await node.directory.findMembers('g1')
      for (const info of infos) await node.libp2p.dial(info.id)

      // The tracker read in production (dht/group-finder.ts, wired as the node's finder): a view that lacks a group
      // gets its members from the DHT, dialled and asked for their records; one lookup, then a cool-down.
      const blind = new MembershipView({ selfId: node.peerId, offlineAfterMs: 60_000, forgetAfterMs: 600_000 })
      const refreshed: string[][] = []
      const finder = new GroupFinder({
        selfId: node.peerId,
        directory: node.directory,
        view: blind,
        connect: async (peer) => { await node.libp2p.peerStore.merge(peer.id, { multiaddrs: peer.multiaddrs }); await node.libp2p.dial(peer.id) },
        refresh: async (_group, peers) => { refreshed.push(peers) },
        logger: silentLogger
      })
      expect((await finder.find('g1')).sort()).toEqual(g1)
      expect(refreshed.map(p => [...p].sort())).toEqual([g1])
      expect(finder.counters).toMatchObject({ lookups: 1, hits: 1, failures: 0 })
      expect(await finder.find('g1')).toEqual([])
      expect(finder.counters.lookups).toBe(1)
      // The node's own finder does not look up a group its view knows (the bootstrap gave it g1).
      expect(await node.finder.find('g1')).toEqual([])
      expect(node.finder.counters.lookups).toBe(0)
    } finally {
      await c.close()
    }
  })
})

describe('the DHT as the tracker, read', () => {
  it('a reader, and then a joiner, whose view has no live member of a group find its members through the DHT: the reader reads the file, the joiner catches up', async () => {
    // g1 = {0,1,2} holds the file; the reader is a spare that knows only node 4 (g2) and hears no gossip, so every
    // record in its view ages to OFFLINE: it knows g1 by name, not who is alive in it.
    const c = await createSimCluster({ nodes: 6, sequential: true, joinSettleMs: 300, http: true })
    try {
      const data = randomBytes(300_000, 31)
      const up = await upload(c.node(0).http?.url ?? '', data, 'tracked.bin', { group: 'g1' })
      expect(up.status).toBe(201)
      const reader = c.size
      const original = c.config.bind(c)
      c.config = (i: number) => i === reader ? { ...original(i), bootstrap: [`${c.address(4)}/p2p/${c.peerId(4)}`], spare: true } : original(i)
      const node = c.node(await c.add())
      node.libp2p.services.pubsub.unsubscribe('/dsm/membership/1.0.0')
      const alive = (): number => node.membership.view.groupMembers('g1').filter(m => m.state === 'ACTIVE').length
      await c.waitFor(() => node.membership.view.groupMembers('g1').length === 3 && alive() === 0, { timeoutMs: 30_000, message: 'the reader sees g1, all OFFLINE' })
      // Group records are provided in the background after each member commits: once the DHT has them all, one read.
      const g1 = [0, 1, 2].map(i => c.peerId(i)).sort()
      expect(await findEventually(async () => (await node.directory.findMembers('g1', { signal: AbortSignal.timeout(5000) })).map(p => p.id.toString()).sort(), g1)).toEqual(g1)
      expect(alive()).toBe(0)
      const read = await download(node.http?.url ?? '', up.body.id as string)
      expect(read.status).toBe(200)
      expect(sha256hex(read.bytes)).toBe(sha256hex(data))
      expect(node.finder.counters.hits).toBeGreaterThanOrEqual(1)
      expect(await (await fetch(`${node.http?.url ?? ''}/metrics`)).text()).toMatch(/^dsm_dht_group_lookups_total\{result="hit"\} [1-9]/m)

      // A joiner configured into g1 whose only bootstrap is that reader: the view it pulls has g1, but all OFFLINE
      // (the reader still hears no gossip). Its sync round finds its mates through the DHT, and it catches up.
      // Without the finder it would wait, SYNCING: a new member is never ACTIVE alone beside mates that hold files.
      await c.waitFor(() => alive() === 0, { timeoutMs: 30_000, message: 'the reader sees g1 OFFLINE again' })
      const joinerIndex = c.size
      const withReader = c.config.bind(c)
      c.config = (i: number) => i === joinerIndex ? { ...withReader(i), bootstrap: [`${c.address(reader)}/p2p/${c.peerId(reader)}`], spare: false, group: 'g1' } : withReader(i)
      const joiner = c.node(await c.add())
      joiner.libp2p.services.pubsub.unsubscribe('/dsm/membership/1.0.0')
      await c.waitFor(() => joiner.status.state === 'ACTIVE' && joiner.store.index.get(up.body.id as string)?.state === 'present', { timeoutMs: 60_000, message: 'the joiner catches up with g1' })
      expect(joiner.finder.counters.hits).toBeGreaterThanOrEqual(1)
      expect(sha256hex(await readWhole(joiner, up.body.id as string))).toBe(sha256hex(data))
    } finally {
      await c.close()
    }
  })
})

describe('S3 buckets in the DHT', () => {
  it('a node whose view has no live member of a bucket\'s group finds the group through the DHT and reads the bucket\'s keys', async () => {
    const c = await createSimCluster({ nodes: 6, sequential: true, joinSettleMs: 300 })
    try {
      const owner = await c.node(0).replica.names.createBucket('tracked', { created: Date.now(), publicRead: false })
      const value = new TextEncoder().encode('a value only the owning group holds')
      await c.node(0).replica.names.put('tracked', 'key', value)
      const members = c.upIndexes().filter(i => c.node(i).status.group === owner).map(i => c.peerId(i)).sort()
      expect(members).toHaveLength(3)
      // A reader that knows one node of the other group only, and hears no gossip: the owning group's records age
      // to OFFLINE in its view, so it cannot ask that group's read quorum until the DHT names the members.
      const other = c.upIndexes().find(i => c.node(i).status.group !== owner) ?? 0
      const reader = c.size
      const original = c.config.bind(c)
      c.config = (i: number) => i === reader ? { ...original(i), bootstrap: [`${c.address(other)}/p2p/${c.peerId(other)}`], spare: true } : original(i)
      const node = c.node(await c.add())
      node.libp2p.services.pubsub.unsubscribe('/dsm/membership/1.0.0')
      const alive = (): number => node.membership.view.groupMembers(owner).filter(m => m.state === 'ACTIVE').length
      await c.waitFor(() => node.membership.view.groupMembers(owner).length === 3 && alive() === 0, { timeoutMs: 30_000, message: 'the reader sees the owning group, all OFFLINE' })
      // Every member provides the bucket's key once its record arrived: wait until the DHT has them all.
      expect(await findEventually(async () => (await node.directory.findBucketHolders('tracked', { signal: AbortSignal.timeout(5000) })).map(p => p.id.toString()).sort(), members)).toEqual(members)
      expect(alive()).toBe(0)
      const before = node.finder.counters.hits
      expect(await node.replica.names.ownerOf('tracked')).toBe(owner)
      expect(node.finder.counters.hits).toBeGreaterThan(before)
      expect(new TextDecoder().decode(await node.replica.names.get('tracked', 'key'))).toBe('a value only the owning group holds')
    } finally {
      await c.close()
    }
  })
})

/** Group records are provided in the background after each member commits: retry the lookup until it sees them all. */
async function findEventually (lookup: () => Promise<string[]>, expected: string[]): Promise<string[]> {
  const deadline = Date.now() + 20_000
  let last: string[] = []
  while (Date.now() < deadline) {
    last = await lookup()
    if (JSON.stringify(last) === JSON.stringify(expected)) return last
    // An empty routing table answers at once: give the dials and provides time to land.
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return last
}
