/**
 * Crashes of the chunk store itself, across OS processes (`bin/dsm node`,
 * TCP on 127.0.0.1), with kill -9:
 *  - mid-batch: both members of a group die at once while 24 clients upload
 *    small and medium files (group commits and needle appends in flight);
 *  - mid-compaction: a member dies while it rewrites mostly-dead volumes.
 * After the restart every acknowledged file is on both disks, byte-identical;
 * every unacknowledged one is on both or on neither; nothing is undecided;
 * each store holds exactly the chunks of its present files, each verified.
 * (A torn needle at a volume's tail and a cut volume: test/store/durability.test.ts.)
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createRng } from '../sim/rng.ts'
import { sha256hex } from '../helpers/data.ts'
import { eventually, startProcNode } from '../sim/proc.ts'
import { expectedFileId, freePort, inspectStore, presentIds, storeProblems } from '../helpers/store-check.ts'
import type { ProcNode } from '../sim/proc.ts'

const MIME = 'application/x-dsm-crash'

interface Member { name: string, dataDir: string, tcpPort: number, httpPort: number, peerId: string, env: Record<string, string>, node?: ProcNode }

const roots: string[] = []
const spawned: ProcNode[] = []
afterAll(async () => {
  await Promise.all(spawned.map(async n => n.stop('SIGKILL').catch(() => {})))
  await Promise.all(roots.map(async r => rm(r, { recursive: true, force: true })))
})

const url = (m: Member): string => `http://127.0.0.1:${m.httpPort}`

async function twoMembers (env: Record<string, string> = {}): Promise<Member[]> {
  const root = await mkdtemp(join(tmpdir(), 'dsm-store-crash-'))
  roots.push(root)
  const members: Member[] = []
  for (const name of ['a', 'b']) members.push({ name, dataDir: join(root, name), tcpPort: await freePort(), httpPort: await freePort(), peerId: '', env })
  for (const m of members) await start(m, members)
  await bothActive(members)
  return members
}

async function start (m: Member, all: Member[]): Promise<void> {
  const bootstrap = all.filter(o => o !== m && o.peerId !== '').map(o => `/ip4/127.0.0.1/tcp/${o.tcpPort}/p2p/${o.peerId}`)
  const launch = async (): Promise<ProcNode> => startProcNode({ dataDir: m.dataDir, tcpPort: m.tcpPort, httpPort: m.httpPort, bootstrap, args: ['--group', 'g1', '--group-size', '2', '--repair-after', '10m'], env: m.env })
  let node: ProcNode
  for (let attempt = 1; ; attempt++) {
    try {
      node = await launch()
      break
    } catch (err) {
      // A port picked free can be taken by another test file before the node binds it: a first start takes new ones.
      if (m.peerId !== '' || attempt === 3 || !String(err).includes('EADDRINUSE')) throw err
      m.tcpPort = await freePort()
      m.httpPort = await freePort()
    }
  }
  spawned.push(node)
  if (m.peerId !== '') expect(node.peerId, 'the same identity from the same data dir').toBe(m.peerId)
  m.peerId = node.peerId
  m.node = node
}

async function bothActive (members: Member[]): Promise<void> {
  for (const m of members) {
    await eventually(async () => (await fetch(`${url(m)}/api/peers`)).json() as Promise<Array<{ state: string, group: string | null }>>,
      peers => peers.filter(p => p.group === 'g1' && p.state === 'ACTIVE').length === 2, 30_000, `${m.name} sees both ACTIVE`)
  }
}

async function metric (m: Member, name: string): Promise<number> {
  const text = await (await fetch(`${url(m)}/metrics`)).text()
  const line = text.split('\n').find(l => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  return Number(line?.split(' ').at(-1) ?? NaN)
}

async function post (m: Member, data: Uint8Array<ArrayBuffer>, name: string): Promise<{ status: number, id?: string }> {
  try {
    const res = await fetch(`${url(m)}/files?${new URLSearchParams({ name }).toString()}`, { method: 'POST', body: data, headers: { 'content-type': MIME }, signal: AbortSignal.timeout(30_000) })
    const body = await res.json() as { id?: string }
    return { status: res.status, ...(body.id != null ? { id: body.id } : {}) }
  } catch {
    return { status: 0 }
  }
}

async function del (m: Member, id: string): Promise<number> {
  const res = await fetch(`${url(m)}/files/${id}`, { method: 'DELETE', signal: AbortSignal.timeout(30_000) })
  await res.body?.cancel()
  return res.status
}

/** Stop both cleanly and read their disks: present ids per member, and what is wrong with each store. */
async function inspectBoth (members: Member[]): Promise<Array<{ ids: Set<string>, problems: string[] }>> {
  for (const m of members) { await m.node?.stop('SIGTERM'); m.node = undefined }
  return Promise.all(members.map(async m => {
    const s = await inspectStore(m.dataDir)
    return { ids: new Set(presentIds(s)), problems: storeProblems(s) }
  }))
}

describe('kill -9 inside the chunk store (OS processes)', () => {
  it('mid-batch: both members die under 24 concurrent uploads; acknowledged files are on both disks, the rest on both or neither', async () => {
    const members = await twoMembers()
    const rng = createRng(7)
    const sizes = [1, 4096, 30_000, 70_000, 300_000, 1_100_000]
    const acked = new Map<string, string>()
    const unacked = new Map<string, string>()
    let stop = false
    let n = 0
    const client = async (k: number): Promise<void> => {
      while (!stop) {
        const data = rng.bytes(sizes[(k + n) % sizes.length] as number)
        const name = `c${k}-${n++}.bin`
        const id = await expectedFileId(data, name, MIME)
        const res = await post(members[k % 2] as Member, data, name)
        if (res.status === 201) acked.set(id, sha256hex(data))
        else unacked.set(id, sha256hex(data))
      }
    }
    const clients = Array.from({ length: 24 }, async (_, k) => client(k))
    await eventually(async () => acked.size, size => size >= 150, 120_000, '150 acknowledged uploads')
    // Both at once, while every client has an upload in flight.
    await Promise.all(members.map(async m => { await m.node?.stop('SIGKILL'); m.node = undefined }))
    stop = true
    await Promise.all(clients)
    for (const id of acked.keys()) unacked.delete(id)
    for (const m of members) await start(m, members)
    await bothActive(members)
    // Prepared records of the uploads cut short are decided by the resolvers (after RESOLVE_AFTER_MS).
    for (const m of members) await eventually(async () => metric(m, 'dsm_prepared_uploads'), v => v === 0, 60_000, `${m.name} decided every prepared upload`)
    for (const m of members) await eventually(async () => metric(m, 'dsm_sync_files_to_go'), v => v === 0, 60_000, `${m.name} caught up`)
    for (const [id, sha] of [...acked].slice(0, 20)) {
      const res = await fetch(`${url(members[1] as Member)}/files/${id}`)
      expect(sha256hex(new Uint8Array(await res.arrayBuffer())), `acknowledged ${id} reads back`).toBe(sha)
    }
    const disks = await inspectBoth(members)
    for (const [i, d] of disks.entries()) {
      expect(d.problems, `member ${i}'s store`).toEqual([])
      const lost = [...acked.keys()].filter(id => !d.ids.has(id))
      expect(lost, `acknowledged files missing on member ${i}`).toEqual([])
    }
    const [a, b] = disks as unknown as [{ ids: Set<string> }, { ids: Set<string> }]
    const split = [...unacked.keys()].filter(id => a.ids.has(id) !== b.ids.has(id))
    expect(split, 'unacknowledged uploads are on both members or on neither').toEqual([])
    const strangers = [...a.ids].filter(id => !acked.has(id) && !unacked.has(id))
    expect(strangers, 'no file nobody uploaded').toEqual([])
  }, 240_000)

  it('mid-compaction: a member dies while it rewrites volumes; every live file survives and compaction completes after the restart', async () => {
    // 1 MiB volumes, weighed every 500 ms, copied at 256 KiB/s: a pass takes seconds. Deleted bytes turn garbage
    // after a 1 s grace (for reads under way) instead of a minute.
    const env = { DSM_VOLUME_SIZE: '1MiB', DSM_COMPACT_INTERVAL: '500ms', DSM_COMPACT_RATE: '256KiB', DSM_DELETED_READ_GRACE: '1s' }
    const members = await twoMembers(env)
    const a = members[0] as Member
    const rng = createRng(8)
    const files: Array<{ id: string, sha: string }> = []
    for (let i = 0; i < 30; i++) {
      const data = rng.bytes(200_000 + i)
      const up = await post(a, data, `v${i}.bin`)
      expect(up.status).toBe(201)
      files.push({ id: up.id as string, sha: sha256hex(data) })
    }
    // Deleting 4 of every 5 leaves each sealed volume mostly garbage.
    const kept = files.filter((_, i) => i % 5 === 0)
    for (const [i, f] of files.entries()) if (i % 5 !== 0) expect(await del(a, f.id)).toBe(200)
    await eventually(async () => metric(a, 'dsm_compaction_moved_bytes_total'), v => v > 0, 60_000, 'compaction is copying')
    expect(await metric(a, 'dsm_compaction_running')).toBe(1)
    await a.node?.stop('SIGKILL')
    a.node = undefined
    await start(a, members)
    await bothActive(members)
    for (const f of kept) {
      const res = await fetch(`${url(a)}/files/${f.id}`)
      expect(sha256hex(new Uint8Array(await res.arrayBuffer())), `live file ${f.id} after the crash`).toBe(f.sha)
    }
    await eventually(async () => metric(a, 'dsm_compaction_volumes_total'), v => v > 0, 90_000, 'compaction completes after the restart')
    await eventually(async () => metric(a, 'dsm_compaction_running'), v => v === 0, 90_000, 'the pass ends')
    const disks = await inspectBoth(members)
    for (const [i, d] of disks.entries()) {
      expect(d.problems, `member ${i}'s store`).toEqual([])
      expect([...d.ids].sort(), `member ${i} holds exactly the live files`).toEqual(kept.map(f => f.id).sort())
    }
  }, 180_000)
})
