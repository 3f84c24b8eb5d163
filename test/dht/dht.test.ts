import { describe, expect, it } from 'vitest'
import { groupKey } from '../../src/dht/group-directory.ts'
import { GroupFinder } from '../../src/dht/group-finder.ts'
import { silentLogger } from '../../src/logger.ts'
import { MembershipView } from '../../src/membership/view.ts'
import { createSimCluster } from '../sim/cluster.ts'

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
