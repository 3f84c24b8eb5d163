import { describe, expect, it } from 'vitest'
import { chooseCoordinator } from '../../src/replica/placement.ts'
import { createSimCluster, readWhole } from '../sim/cluster.ts'
import { download, randomBytes, sha256hex, upload } from '../helpers/data.ts'
import type { DsmNode } from '../../src/node/dsm-node.ts'
import type { SimCluster } from '../sim/cluster.ts'

const url = (c: SimCluster, i: number): string => c.node(i).http?.url ?? ''

async function localBytes (node: DsmNode, id: string): Promise<string> {
  return sha256hex(await readWhole(node, id))
}

async function uploadMany (c: SimCluster, via: number, count: number, size: number): Promise<Map<string, string>> {
  const files = new Map<string, string>()
  for (let i = 0; i < count; i++) {
    const data = randomBytes(size, 500 + i)
    const { status, body } = await upload(url(c, via), data, `f${i}.bin`, { group: 'g1' })
    expect(status).toBe(201)
    files.set(body.id as string, sha256hex(data))
  }
  return files
}

describe('group sync', () => {
  it('a new member syncs (progress visible) and turns ACTIVE with every file; one killed mid-sync resumes after restart', async () => {
    let joining = -1
    const c = await createSimCluster({
      nodes: 2,
      http: true,
      configure: () => ({ group: 'g1' })
    })
    try {
      await c.ready()
      const files = await uploadMany(c, 0, 30, 300 * 1024)
      // A third member: it must fetch all 30 files before it may serve as a replica.
      // Node 0 watches it through gossip: SYNCING with files to go, then ACTIVE.
      const seen: Array<{ peer: string, state: string, filesToGo: number }> = []
      c.node(0).membership.view.addEventListener('change', (evt) => { seen.push({ peer: evt.detail.peerId, state: evt.detail.state, filesToGo: evt.detail.sync.filesToGo }) })
      const index = await c.add()
      joining = index
      const newcomer = c.node(index)
      await newcomer.ready({ signal: AbortSignal.timeout(30_000) })
      await c.waitFor(() => c.node(0).membership.view.get(newcomer.peerId)?.state === 'ACTIVE', { message: 'node 0 sees it ACTIVE' })
      const watched = seen.filter(s => s.peer === newcomer.peerId)
      expect(watched.some(s => s.state === 'SYNCING' && s.filesToGo > 0)).toBe(true)
      expect(watched.at(-1)).toMatchObject({ state: 'ACTIVE', filesToGo: 0 })
      expect(newcomer.store.index.stats().present.files).toBe(30)
      for (const [id, sha] of files) expect(await localBytes(newcomer, id)).toBe(sha)

      // A fourth member is killed after 5 files, restarted, and finishes from where it was.
      const fourth = await c.add()
      let present = 0
      const killedAfterFive = new Promise<void>((resolve) => {
        c.node(fourth).store.addEventListener('file:present', () => { if (++present === 5) resolve() })
      })
      const progress: number[] = []
      await killedAfterFive
      progress.push(c.node(fourth).status.sync.filesToGo)
      await c.kill(fourth)
      const again = await c.restart(fourth)
      const kept = again.store.index.stats().present.files
      expect(kept).toBeGreaterThanOrEqual(5)
      expect(kept).toBeLessThan(30)
      await again.ready({ signal: AbortSignal.timeout(30_000) })
      expect(again.store.index.stats()).toMatchObject({ present: { files: 30 }, pending: { files: 0 } })
      for (const [id, sha] of files) expect(await localBytes(again, id)).toBe(sha)
      expect(progress[0]).toBeGreaterThan(0)
      // Every member agrees: four ACTIVE members in g1.
      const groups = await (await fetch(`${url(c, 0)}/api/groups`)).json() as Array<{ name: string, members: Array<{ state: string }> }>
      expect(groups.find(g => g.name === 'g1')?.members.map(m => m.state)).toEqual(['ACTIVE', 'ACTIVE', 'ACTIVE', 'ACTIVE'])
    } finally {
      expect(joining).toBeGreaterThan(0)
      await c.close()
    }
  })
})

describe('repair', () => {
  it('a member killed for good is replaced by a spare, which syncs; the copy count is back and every file reads', async () => {
    const c = await createSimCluster({
      nodes: 4,
      http: true,
      configure: (i) => i === 3 ? { spare: true, repairAfterMs: 1000 } : { group: 'g1', repairAfterMs: 1000 }
    })
    try {
      await c.ready()
      // The repair is decided from views (the leader counts the seats it sees): they must know everyone first.
      const views = (): string => [0, 1, 2, 3].map(i => `node ${i}: ${[0, 1, 2, 3].map(j => c.node(i).membership.view.get(c.peerId(j))?.state ?? 'absent').join(' ')} ` +
        `(dropped ${JSON.stringify(c.node(i).membership.dropped)})`).join('; ')
      await c.waitFor(() => [0, 1, 2, 3].every(i => [0, 1, 2, 3].every(j => c.node(i).membership.view.get(c.peerId(j))?.state === 'ACTIVE')), { message: 'every view knows every node ACTIVE' })
        .catch((err: unknown) => { throw new Error(`${(err as Error).message}: ${views()}`) })
      expect(c.node(0).membership.view.get(c.peerId(3))?.spare).toBe(true)
      const files = await uploadMany(c, 0, 5, 700 * 1024)
      await c.kill(2)
      const spare = c.node(3)
      // Until the repair, the group is degraded; while the recruit syncs, repairing.
      const healthSeen = new Set<string>()
      const watch = setInterval(() => {
        void fetch(`${url(c, 0)}/api/groups`).then(async r => r.json() as Promise<Array<{ name: string, health: { state: string } }>>)
          .then(g => { const s = g.find(x => x.name === 'g1')?.health.state; if (s != null) healthSeen.add(s) }).catch(() => {})
      }, 50)
      try {
        await c.waitFor(() => spare.status.group === 'g1' && spare.status.state === 'ACTIVE', { message: 'spare recruited and caught up', timeoutMs: 60_000 })
          .catch((err: unknown) => { throw new Error(`${(err as Error).message}: ${views()}`) })
      } finally {
        clearInterval(watch)
      }
      expect(healthSeen.has('degraded')).toBe(true)
      expect(spare.store.index.stats().present.files).toBe(5)
      for (const [id, sha] of files) {
        for (const i of [0, 1, 3]) expect(sha256hex((await download(url(c, i), id)).bytes)).toBe(sha)
      }
      // `dsm groups` shows it: three ACTIVE members and the lost one OFFLINE.
      // Asked of node 1: wait until its own view shows both (views converge by gossip, each at its pace).
      const seenBy1 = (i: number): string => c.node(1).membership.view.get(c.peerId(i))?.state ?? 'absent'
      await c.waitFor(() => seenBy1(3) === 'ACTIVE' && seenBy1(2) === 'OFFLINE', { message: 'node 1 sees the recruit ACTIVE and the lost member OFFLINE', timeoutMs: 30_000 })
        .catch((err: unknown) => { throw new Error(`${(err as Error).message} (it sees the recruit ${seenBy1(3)}, the lost member ${seenBy1(2)}); ${views()}`) })
      const groups = await (await fetch(`${url(c, 1)}/api/groups`)).json() as Array<{ name: string, health: { state: string, active: number }, members: Array<{ peerId: string, state: string }> }>
      expect(groups.find(g => g.name === 'g1')?.health).toMatchObject({ state: 'healthy', active: 3, target: 3, offline: 1 })
      const g1 = groups.find(g => g.name === 'g1')?.members ?? []
      expect(g1.filter(m => m.state === 'ACTIVE').map(m => m.peerId).sort()).toEqual([0, 1, 3].map(i => c.peerId(i)).sort())
      expect(g1.find(m => m.peerId === c.peerId(2))?.state).toBe('OFFLINE')
      // The recruit persisted its new group.
      await c.kill(3)
      const back = await c.restart(3)
      expect((await back.ready({ signal: AbortSignal.timeout(20_000) })).group).toBe('g1')
    } finally {
      await c.close()
    }
  }, 150_000)

  it('without a spare, a surplus member of a larger group is recruited and drops its old group\'s files', async () => {
    // g1 = 0,1,2; g2 = 3,4,5,6 (one above the group size of 3).
    const c = await createSimCluster({
      nodes: 7,
      http: true,
      configure: (i) => ({ group: i < 3 ? 'g1' : 'g2', repairAfterMs: 1000 })
    })
    try {
      await c.ready()
      await c.waitFor(() => c.node(0).membership.view.members().filter(m => m.state === 'ACTIVE').length === 7, { message: 'all ACTIVE' })
      const g1Files = await uploadMany(c, 0, 3, 200 * 1024)
      const g2 = await upload(url(c, 3), randomBytes(1000, 77), 'g2.bin', { group: 'g2' })
      await c.kill(1)
      await c.waitFor(() => [3, 4, 5, 6].some(i => c.node(i).status.group === 'g1' && c.node(i).status.state === 'ACTIVE'), { message: 'a g2 member moved to g1', timeoutMs: 20_000 })
      const moved = [3, 4, 5, 6].find(i => c.node(i).status.group === 'g1') ?? -1
      // The highest peer id of g2's members is the one asked.
      expect(c.peerId(moved)).toBe([3, 4, 5, 6].map(i => c.peerId(i)).sort().at(-1))
      await c.waitFor(() => c.node(moved).store.index.get(g2.body.id as string) == null, { message: 'old files dropped' })
      for (const [id, sha] of g1Files) expect(await localBytes(c.node(moved), id)).toBe(sha)
      expect(sha256hex((await download(url(c, moved), g2.body.id as string)).bytes)).toBe(sha256hex(randomBytes(1000, 77)))
    } finally {
      await c.close()
    }
  })
})

describe('uploads under failure', () => {
  /** A request body that sends `total` bytes slowly and calls `onSent` with the running count. */
  function slowBody (data: Uint8Array, onSent: (sent: number) => void): ReadableStream<Uint8Array> {
    let at = 0
    return new ReadableStream({
      async pull (ctl) {
        if (at >= data.byteLength) { ctl.close(); return }
        const piece = data.subarray(at, at + 256 * 1024)
        at += piece.byteLength
        ctl.enqueue(piece)
        onSent(at)
        await new Promise(resolve => setTimeout(resolve, 5))
      }
    })
  }

  async function cluster (): Promise<SimCluster> {
    const c = await createSimCluster({ nodes: 4, http: true, configure: (i) => ({ group: i < 3 ? 'g1' : 'g2' }) })
    await c.ready()
    await c.waitFor(() => c.node(3).membership.view.members().filter(m => m.state === 'ACTIVE').length === 4, { message: 'all ACTIVE' })
    return c
  }

  it('killing the coordinator mid-upload fails the upload clearly; nothing half-written is visible; a retry succeeds', async () => {
    const c = await cluster()
    try {
      const data = randomBytes(24 * 1024 * 1024, 31)
      const coordinator = c.upIndexes().find(i => c.peerId(i) === chooseCoordinator(c.node(3).membership.view, 'g1').peerId) ?? -1
      expect(coordinator).toBeGreaterThanOrEqual(0)
      let killed: Promise<void> | undefined
      const res = await fetch(`${url(c, 3)}/files?name=big.bin&group=g1`, {
        method: 'POST', duplex: 'half', body: slowBody(data, (sent) => { if (sent >= 8 * 1024 * 1024) killed ??= c.kill(coordinator) })
      } as RequestInit)
      await killed
      const answer = await res.json() as Record<string, unknown>
      if (res.status === 201) {
        // It completed before the kill: then it must be fully readable.
        expect(sha256hex((await download(url(c, 3), answer.id as string)).bytes)).toBe(sha256hex(data))
        return
      }
      expect(res.status).toBeGreaterThanOrEqual(500)
      expect(answer.code, JSON.stringify(answer)).toMatch(/^ERR_(UNAVAILABLE|QUORUM)$/)
      const others = [0, 1, 2].filter(i => i !== coordinator)
      await c.waitFor(() => others.every(i => c.node(i).status.load === 0), { message: 'transfers ended' })
      for (const i of others) expect(c.node(i).store.index.stats().present.files).toBe(0)
      // Once the dead coordinator is OFFLINE, the group takes the retry with the members it has.
      // (OFFLINE in the views of the gateway and of the surviving members: whichever coordinates the retry counts on it.)
      await c.waitFor(() => [3, ...others].every(i => c.node(i).membership.view.get(c.peerId(coordinator))?.state === 'OFFLINE'), { message: 'coordinator OFFLINE' })
      const retry = await upload(url(c, 3), data, 'big.bin', { group: 'g1' })
      expect(retry.status, JSON.stringify(retry.body)).toBe(201)
      expect((retry.body.replicas as string[]).sort()).toEqual(others.map(i => c.peerId(i)).sort())
      for (const i of [...others, 3]) expect(sha256hex((await download(url(c, i), retry.body.id as string)).bytes)).toBe(sha256hex(data))
    } finally {
      await c.close()
    }
  })

  it('killing a replica mid-upload fails it with ERR_QUORUM (never acknowledged with fewer copies than asked)', async () => {
    const c = await cluster()
    try {
      const data = randomBytes(24 * 1024 * 1024, 32)
      // Through member 0, which coordinates its group's uploads itself (a gateway's choice could change with load).
      const victim = 1
      let killed: Promise<void> | undefined
      const res = await fetch(`${url(c, 0)}/files?name=big.bin&group=g1`, {
        method: 'POST', duplex: 'half', body: slowBody(data, (sent) => { if (sent >= 8 * 1024 * 1024) killed ??= c.kill(victim) })
      } as RequestInit)
      await killed
      const answer = await res.json() as Record<string, unknown>
      expect(res.status, JSON.stringify(answer)).toBe(503)
      expect(answer, JSON.stringify(answer)).toMatchObject({ code: 'ERR_QUORUM' })
      for (const i of [0, 1, 2].filter(i => i !== victim)) {
        await c.waitFor(() => c.node(i).status.load === 0, { message: 'transfers ended' })
        expect(c.node(i).store.index.stats().present.files).toBe(0)
      }
    } finally {
      await c.close()
    }
  })
})
