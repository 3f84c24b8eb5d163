/**
 * Multi-host faults with real links: five `bin/dsm node` processes, each in
 * its own Linux network namespace, on one bridge (real TCP over veth pairs):
 * gA = h1 h2 h3, gB = h4 h5. Faults: a host's link down (isolation); a short
 * 2|3 split and a long one, held until libp2p dropped every connection across
 * it (two hosts move to a second bridge); kill -9 (one mid-upload) and
 * restart from the data dir. After each heal: every node's `GET /api/peers`
 * agrees (same members, groups and states, all ACTIVE); every acknowledged
 * file reads back byte-identical (sha256) from every host; writes and deletes
 * acknowledged by a cut-off side survive the heal; no file deleted with 200
 * comes back; unacknowledged uploads are all-or-nothing.
 *
 * Needs root, iproute2 and curl; skipped otherwise (the reason is printed).
 */
import { skipUnless } from '../helpers/skip.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRng } from '../sim/rng.ts'
import { sha256hex } from '../helpers/data.ts'
import { eventually } from '../sim/proc.ts'
import { MiB, expectedFileId, streamUpload } from '../helpers/store-check.ts'
import { addHost, createNet, destroy, heal, isolate, leftovers, netnsUnavailable, nsHttp, partition, startNsNode } from '../helpers/netns.ts'
import type { Net, NetHost } from '../helpers/netns.ts'
import type { ProcNode } from '../sim/proc.ts'

const skip = skipUnless('network-namespace tests', netnsUnavailable()) ? 'skipped' : undefined

const MIME = 'application/x-dsm-netns'
const HTTP_PORT = 8080
const TCP_PORT = 4100

interface Host {
  name: string
  net: NetHost
  group: 'gA' | 'gB'
  dataDir: string
  peerId: string
  node?: ProcNode
  /** False while a fault cuts it off from the test process (then it is asked through its namespace). */
  reachable: boolean
}

interface PeerJson { peerId: string, state: string, group: string | null, connected?: boolean, lastSeenMsAgo?: number }

interface FileCase {
  name: string
  group: 'gA' | 'gB'
  sha: string
  id?: string
  /** What every host must answer after a heal. 'either': an unacknowledged operation, all-or-nothing. */
  want: 'present' | 'absent' | 'either'
  note: string
}

describe.skipIf(skip != null)('five dsm nodes in five network namespaces (real TCP over veth and a bridge)', () => {
  let net: Net | undefined
  let root: string
  const hosts: Host[] = []
  const spawned: ProcNode[] = []
  const files: FileCase[] = []
  const rng = createRng(77)
  let step = 0

  const base = (h: Host): string => `http://${h.net.ip}:${HTTP_PORT}`
  const addr = (h: Host): string => `/ip4/${h.net.ip}/tcp/${TCP_PORT}/p2p/${h.peerId}`
  const host = (name: string): Host => {
    const h = hosts.find(x => x.name === name)
    if (h == null) throw new Error(`no host ${name}`)
    return h
  }

  /** GET/POST/DELETE on a host: plain fetch when the test process reaches it, else curl inside its namespace. */
  async function call (h: Host, path: string, opts: { method?: string, body?: Uint8Array<ArrayBuffer> } = {}): Promise<{ status: number, body: Buffer }> {
    if (!h.reachable) return nsHttp(h.net, `${base(h)}${path}`, { ...opts, contentType: MIME, timeoutS: 20 })
    const res = await fetch(`${base(h)}${path}`, {
      method: opts.method ?? 'GET',
      ...(opts.body != null ? { body: opts.body, headers: { 'content-type': MIME } } : {}),
      signal: AbortSignal.timeout(20_000)
    })
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) }
  }

  async function peers (h: Host): Promise<PeerJson[]> {
    const r = await call(h, '/api/peers')
    if (r.status !== 200) throw new Error(`${h.name} /api/peers: ${r.status}`)
    return JSON.parse(r.body.toString()) as PeerJson[]
  }

  async function start (h: Host): Promise<void> {
    const bootstrap = hosts.filter(o => o !== h && o.peerId !== '').map(addr)
    const node = await startNsNode(h.net, { dataDir: h.dataDir, tcpPort: TCP_PORT, httpPort: HTTP_PORT, bootstrap, args: ['--group', h.group, '--group-size', '3', '--repair-after', '10m'] })
    spawned.push(node)
    if (h.peerId !== '') expect(node.peerId, `${h.name} keeps its identity`).toBe(h.peerId)
    h.peerId = node.peerId
    h.node = node
  }

  /** Each host in `observers` sees the hosts named in `expected` in that state (name → state), in their groups. */
  async function viewsAre (observers: Host[], expected: Record<string, string>, what: string, timeoutMs = 30_000): Promise<void> {
    const want = Object.entries(expected).map(([name, state]) => ({ peerId: host(name).peerId, group: host(name).group, state }))
    // On a timeout, say what each host was seen as (state/group, connected or not, heard from how long ago), not a truncated JSON dump.
    const seen = (view: PeerJson[]): string => hosts.map(o => {
      const p = view.find(v => v.peerId === o.peerId)
      return `${o.name}=${p == null ? 'absent' : `${p.state}/${p.group ?? '-'}/${p.connected === true ? 'conn' : 'noconn'}/${p.lastSeenMsAgo ?? '?'}ms`}`
    }).join(' ')
    for (const h of observers) {
      let last = 'no answer'
      await eventually(async () => peers(h), view => {
        last = seen(view)
        return want.every(w => view.some(p => p.peerId === w.peerId && p.group === w.group && p.state === w.state))
      }, timeoutMs, `${what}: ${h.name} sees ${JSON.stringify(expected)}`).catch((err: Error) => {
        throw new Error(`${err.message.split('; last value')[0]}; it saw ${last}`)
      })
    }
  }

  /** Every running host lists all five members, all ACTIVE, in the right groups: the same view everywhere. */
  async function converged (what: string, timeoutMs = 30_000): Promise<void> {
    const all = Object.fromEntries(hosts.map(h => [h.name, 'ACTIVE']))
    await viewsAre(hosts, all, what, timeoutMs)
    const views = await Promise.all(hosts.map(async h => (await peers(h)).map(p => `${p.peerId}:${p.group ?? '-'}:${p.state}`).sort()))
    for (const v of views) expect(v, `${what}: every node's /api/peers agrees`).toEqual(views[0])
    expect(views[0]).toHaveLength(hosts.length)
  }

  async function uploadVia (h: Host, group: 'gA' | 'gB', size: number, note: string): Promise<FileCase> {
    const data = createRng(1_000 + ++step).bytes(size)
    const name = `n${step}.bin`
    const r = await call(h, `/files?name=${name}&group=${group}`, { method: 'POST', body: data })
    // The ID is known either way (the manifest's CID), so an unacknowledged upload is checked too: all-or-nothing.
    const id = await expectedFileId(data, name, MIME)
    const f: FileCase = { name, group, id, sha: sha256hex(data), want: r.status === 201 ? 'present' : 'either', note: `${note} (via ${h.name}: ${r.status})` }
    if (r.status === 201) expect((JSON.parse(r.body.toString()) as { id: string }).id).toBe(id)
    files.push(f)
    return f
  }

  async function deleteVia (h: Host, f: FileCase, note: string): Promise<number> {
    if (f.id == null) throw new Error(`${f.name} has no id`)
    const r = await call(h, `/files/${f.id}`, { method: 'DELETE' })
    f.want = r.status === 200 ? 'absent' : f.want === 'absent' ? 'absent' : 'either'
    f.note += `; deleted ${note} via ${h.name}: ${r.status}${r.status !== 200 ? ` ${r.body.toString().slice(0, 300)}` : ''}`
    return r.status
  }

  async function readFrom (h: Host, f: FileCase): Promise<{ status: number, sha?: string }> {
    const r = await call(h, `/files/${f.id ?? ''}`)
    return r.status === 200 ? { status: 200, sha: sha256hex(r.body) } : { status: r.status }
  }

  /**
   * Every file, from every host: acknowledged ones byte-identical, unacknowledged ones all-or-nothing,
   * deleted ones 404 on the members of their group (the other hosts: see the last test).
   */
  async function filesAgree (what: string): Promise<void> {
    for (const f of files) {
      if (f.id == null) continue
      const up = hosts.filter(h => h.node != null)
      const askers = f.want === 'absent' ? up.filter(h => h.group === f.group) : up
      await eventually(async () => Promise.all(askers.map(async h => readFrom(h, f))), reads => {
        const present = reads.every(r => r.status === 200 && r.sha === f.sha)
        const absent = reads.every(r => r.status === 404)
        return f.want === 'present' ? present : f.want === 'absent' ? absent : present || absent
      }, 20_000, `${what}: ${f.name} ${f.want} on every host (${f.note})`)
    }
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-netns-'))
    net = createNet()
    for (const [name, group] of [['h1', 'gA'], ['h2', 'gA'], ['h3', 'gA'], ['h4', 'gB'], ['h5', 'gB']] as const) {
      hosts.push({ name, group, net: addHost(net), dataDir: join(root, name), peerId: '', reachable: true })
    }
    for (const h of hosts) await start(h)
    await converged('the five nodes start', 40_000)
  })

  afterAll(async () => {
    // Every process ever started, whatever a failed test left in `hosts`.
    await Promise.all(spawned.map(async n => n.stop('SIGKILL')))
    if (net != null) {
      const failed = destroy(net)
      const left = leftovers(net)
      if (failed.length > 0 || left.length > 0) console.warn(`network namespace cleanup left: ${[...failed, ...left].join('; ')}`)
      expect(left, 'namespaces, veths and bridges are removed').toEqual([])
    }
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('files uploaded through one namespace read back byte-identical from all five', async () => {
    const a1 = await uploadVia(host('h4'), 'gA', 2 * MiB + 333, 'before the faults')
    const a2 = await uploadVia(host('h1'), 'gA', 700_000, 'before the faults')
    await uploadVia(host('h2'), 'gA', MiB, 'before the faults')
    await uploadVia(host('h3'), 'gB', 3 * MiB + 17, 'before the faults')
    await uploadVia(host('h5'), 'gB', 12_345, 'before the faults')
    expect(files.map(f => f.want)).toEqual(['present', 'present', 'present', 'present', 'present'])
    await filesAgree('before the faults')
    expect(a1.id).not.toBe(a2.id)
  })

  it('a host whose link goes down: each side sees the other OFFLINE and keeps working; after link up the views converge and no deleted file returns', async () => {
    const [h1, h2, h3, h4, h5] = ['h1', 'h2', 'h3', 'h4', 'h5'].map(host) as [Host, Host, Host, Host, Host]
    const [a1, a2, a3, b1] = files as [FileCase, FileCase, FileCase, FileCase]
    isolate(net as Net, h3.net)
    h3.reachable = false
    try {
      await viewsAre([h1, h2, h4, h5], { h1: 'ACTIVE', h2: 'ACTIVE', h3: 'OFFLINE', h4: 'ACTIVE', h5: 'ACTIVE' }, 'h3 cut off')
      await viewsAre([h3], { h1: 'OFFLINE', h2: 'OFFLINE', h3: 'ACTIVE', h4: 'OFFLINE', h5: 'OFFLINE' }, 'h3 cut off')
      // The connected side: writes go to the members it sees; a delete h3 misses.
      const during = await uploadVia(h5, 'gA', MiB + 5, 'while h3 was cut off')
      expect(during.want, during.note).toBe('present')
      expect(await deleteVia(h2, a1, 'while h3 was cut off')).toBe(200)
      // The cut-off host still serves its own copies, and takes writes and deletes for its group alone.
      expect(await readFrom(h3, a2)).toEqual({ status: 200, sha: a2.sha })
      const alone = await uploadVia(h3, 'gA', 400_000, 'on h3 alone while cut off')
      expect(alone.want, `h3, the only member of gA it can see, acknowledges (quorum "all" of what is ACTIVE): ${alone.note}`).toBe('present')
      expect(await deleteVia(h3, a3, 'on h3 while cut off')).toBe(200)
      // Nothing reaches across: h3 does not see what the others wrote, and they do not see h3's.
      expect((await readFrom(h3, during)).status).not.toBe(200)
      expect((await readFrom(h1, alone)).status).not.toBe(200)
      expect((await readFrom(h1, a3)).status, 'a3 is still on the connected side').toBe(200)
    } finally {
      heal(net as Net)
      h3.reachable = true
    }
    await converged('after h3 came back')
    await filesAgree('after h3 came back')
    expect(b1.want).toBe('present')
  })

  it('a 2|3 split (h2 h5 | h1 h3 h4) with writes and deletes on both sides heals: one view, every acknowledged file everywhere, deleted ones nowhere', async () => {
    const [h1, h2, h3, h4, h5] = ['h1', 'h2', 'h3', 'h4', 'h5'].map(host) as [Host, Host, Host, Host, Host]
    const b1 = files[3] as FileCase
    const b2 = files[4] as FileCase
    const a2 = files[1] as FileCase
    partition(net as Net, [h2.net, h5.net])
    h2.reachable = false
    h5.reachable = false
    try {
      await viewsAre([h1, h3, h4], { h1: 'ACTIVE', h2: 'OFFLINE', h3: 'ACTIVE', h4: 'ACTIVE', h5: 'OFFLINE' }, 'split')
      await viewsAre([h2, h5], { h1: 'OFFLINE', h2: 'ACTIVE', h3: 'OFFLINE', h4: 'OFFLINE', h5: 'ACTIVE' }, 'split')
      // Both sides hold members of both groups: both take writes for both.
      for (const [via, group] of [[h1, 'gA'], [h4, 'gB'], [h2, 'gA'], [h5, 'gB']] as const) {
        const f = await uploadVia(via, group, 1 + rng.int(2 * MiB), `during the split on ${via.name}'s side`)
        expect(f.want, f.note).toBe('present')
      }
      expect(await deleteVia(h4, b1, 'during the split')).toBe(200)
      expect(await deleteVia(h2, a2, 'during the split')).toBe(200)
      // h5 still holds b1 and serves it: its side has not heard of the delete.
      expect(await readFrom(h5, b1)).toEqual({ status: 200, sha: b1.sha })
      expect(await readFrom(h1, b2)).toEqual({ status: 200, sha: b2.sha })
    } finally {
      heal(net as Net)
      h2.reachable = true
      h5.reachable = true
    }
    await converged('after the split healed')
    await filesAgree('after the split healed')
  })

  it('a long split (h1 h4 | h2 h3 h5), held until no connection crosses it, heals as well: one view, both sides\' writes everywhere', async () => {
    const [h1, h2, h3, h4, h5] = ['h1', 'h2', 'h3', 'h4', 'h5'].map(host) as [Host, Host, Host, Host, Host]
    const left = [h1, h4]
    const right = [h2, h3, h5]
    partition(net as Net, left.map(h => h.net))
    for (const h of left) h.reachable = false
    try {
      // Hold the split until libp2p gave up the connections across it (its pings fail): healing must then
      // redial members that each side has marked OFFLINE, while each side still has live connections inside.
      const across = async (h: Host): Promise<Array<{ peerId: string, state: string, connected: boolean }>> => {
        const r = await call(h, '/api/peers')
        return (JSON.parse(r.body.toString()) as Array<{ peerId: string, state: string, connected: boolean }>)
          .filter(p => (left.includes(h) ? right : left).some(o => o.peerId === p.peerId))
      }
      for (const h of [...left, ...right]) {
        await eventually(async () => across(h), ps => ps.length > 0 && ps.every(p => p.state === 'OFFLINE' && !p.connected), 45_000, `${h.name}: no live connection across the split`)
      }
      for (const [via, group] of [[h1, 'gA'], [h4, 'gB'], [h3, 'gA'], [h5, 'gB']] as const) {
        const f = await uploadVia(via, group, 1 + rng.int(MiB), `during the long split on ${via.name}'s side`)
        expect(f.want, f.note).toBe('present')
      }
    } finally {
      heal(net as Net)
      for (const h of left) h.reachable = true
    }
    await converged('after the long split healed', 40_000)
    await filesAgree('after the long split healed')
  })

  it('kill -9 inside a namespace (a member mid-upload, then members of the other group): the rest of each group carries on', async () => {
    const [h1, h2, h3, h4, h5] = ['h1', 'h2', 'h3', 'h4', 'h5'].map(host) as [Host, Host, Host, Host, Host]
    // h2 (a gA member) dies while h4 streams a file to gA: not acknowledged, and all-or-nothing.
    // The upload's coordinator (a gA member, chosen by h4) must plan with h2 in it: every one of them sees it ACTIVE.
    await viewsAre([h1, h3, h4], { h2: 'ACTIVE' }, 'h2 ACTIVE before the upload it will die in')
    const data = createRng(5_000).bytes(3 * MiB + 99)
    const killed = h2.node
    h2.node = undefined
    let underWay: unknown
    const outcome = await streamUpload(base(h4), data, 'mid-upload.bin', {
      mime: MIME,
      pauseAt: {
        at: MiB + 4321,
        action: async () => {
          // Once a coordinator took the upload (a gA member reports a transfer), with h2 ACTIVE in its plan.
          underWay = await eventually(async () => JSON.parse((await call(h4, '/api/peers')).body.toString()) as Array<{ group: string | null, load: number }>,
            ps => ps.some(p => p.group === 'gA' && p.load > 0), 10_000, 'the upload to reach its coordinator').catch((err: unknown) => err)
          await killed?.stop('SIGKILL')
        }
      }
    })
    const id = await expectedFileId(data, 'mid-upload.bin', MIME)
    if (outcome.kind === 'acked') {
      // Only if the coordinator did not count h2 among the members ACTIVE when the upload started (on a loaded
      // host its view can lose a heartbeat between our check and the upload): quorum "all" is then the other two,
      // and the file is a normal one. Never acknowledged with h2 planned and dead.
      const replicas = (outcome as { replicas?: string[] }).replicas ?? []
      expect(replicas, `acknowledged although h2, a planned member, died mid-body: ${JSON.stringify(outcome)}`).not.toContain(h2.peerId)
      files.push({ name: 'mid-upload.bin', group: 'gA', sha: sha256hex(data), id, want: 'present', note: 'acknowledged without h2 in its plan' })
    } else {
      expect(underWay, `the upload got under way before h2 was killed (outcome: ${JSON.stringify(outcome)})`).not.toBeInstanceOf(Error)
      if (outcome.kind === 'refused') expect(`${outcome.status} ${outcome.code}`, 'a member died mid-upload: 503').toMatch(/^503 /)
      // Its body never fully reached gA before h2 died, and quorum "all" needed h2: the file must never exist.
      files.push({ name: 'mid-upload.bin', group: 'gA', sha: sha256hex(data), id, want: 'absent', note: `h2 killed mid-body: ${outcome.kind}` })
    }
    await viewsAre([h1, h3, h4, h5], { h1: 'ACTIVE', h2: 'OFFLINE', h3: 'ACTIVE', h4: 'ACTIVE', h5: 'ACTIVE' }, 'h2 killed')
    // The rest of gA takes the retry; h5 (gB) dies too, and gB goes on with h4 alone.
    const retried = await uploadVia(h4, 'gA', 2 * MiB, 'while h2 was dead')
    expect(retried.want, retried.note).toBe('present')
    await h5.node?.stop('SIGKILL')
    h5.node = undefined
    await viewsAre([h1, h3, h4], { h2: 'OFFLINE', h5: 'OFFLINE', h4: 'ACTIVE' }, 'h5 killed')
    const gb = await uploadVia(h1, 'gB', MiB + 1, 'while h5 was dead')
    expect(gb.want, gb.note).toBe('present')
    // h3 (gA) streams it now: the only holder it can learn of is h4.
    expect(await readFrom(h3, gb)).toEqual({ status: 200, sha: gb.sha })
    // h5 comes back and catches up; then h4 dies.
    await start(h5)
    await viewsAre([h1, h3, h4, h5], { h4: 'ACTIVE', h5: 'ACTIVE' }, 'h5 restarted')
    await h4.node?.stop('SIGKILL')
    h4.node = undefined
    await viewsAre([h1, h3, h5], { h4: 'OFFLINE', h5: 'ACTIVE' }, 'h4 killed')
    // A delete through h3: h5, the live member of gB, holds the file and can apply it.
    const status = await deleteVia(h3, gb, 'through h3 with h4 dead')
    // h3 may remember h4 as the holder (its locate cache); its view says OFFLINE, so the delete goes to h5.
    expect(status, `delete of ${gb.name} through h3 with its cached holder h4 dead: ${gb.note}`).toBe(200)
  })

  it('the killed hosts come back from their data dirs: the groups are ACTIVE again and every acknowledged file reads back from every host', async () => {
    for (const h of hosts) if (h.node == null) await start(h)
    await converged('after the restarts')
    await filesAgree('after the restarts')
  })

  it('no host serves a file deleted with 200, not even one outside its group that streamed it before', async () => {
    const deleted = files.filter(f => f.want === 'absent' && f.id != null)
    expect(deleted.length).toBeGreaterThan(3)
    // A host outside the group may have the manifest and chunks cached: the locate cache expires (LOCATE_CACHE_TTL_MS).
    const reads = await Promise.all(deleted.flatMap(f => hosts.map(async h => `${f.name} (${f.group}) on ${h.name} (${h.group}): ${(await readFrom(h, f)).status}`)))
    expect(reads.filter(r => !r.endsWith(': 404'))).toEqual([])
  })
})
