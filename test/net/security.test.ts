/**
 * Security: a private cluster (network key, peer allowlist) keeps outsiders
 * from connecting, gossiping or writing; HTTP writes need the cluster token;
 * signed download URLs expire; a heartbeat flood is dropped and scored down.
 * (A replica serving bytes that fail verification is scored down and avoided:
 * test/stream/stream.test.ts.)
 */
import { stat, writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HttpAuth } from '../../src/http/auth.ts'
import { loadOrCreateIdentity } from '../../src/net/identity.ts'
import { generateSwarmKey } from '../../src/net/private-network.ts'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MEMBERSHIP_TOPIC } from '../../src/constants.ts'
import { randomBytes, sha256hex } from '../helpers/data.ts'
import { dsm } from '../sim/proc.ts'
import { createSimCluster } from '../sim/cluster.ts'
import { HeartbeatSeal } from '../../src/membership/seal.ts'
import { LocateRequestSchema, LocateResponseSchema, PROTOCOLS } from '../../src/wire/messages.ts'
import type { ClusterKeys } from '../../src/net/cluster-secret.ts'
import { request } from '../../src/wire/rpc.ts'
import type { SimCluster } from '../sim/cluster.ts'

const TOKEN = 'security-test-token-0123456789'
/** Any well-formed file ID (a locate for it is the cheapest RPC there is). */
const FILE_ID = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const url = (c: SimCluster, i: number): string => c.node(i).http?.url ?? ''

async function post (base: string, data: Uint8Array<ArrayBuffer>, headers: Record<string, string> = {}): Promise<{ status: number, body: Record<string, unknown>, headers: Headers }> {
  const res = await fetch(`${base}/files?name=s.bin`, { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream', ...headers } })
  return { status: res.status, body: await res.json() as Record<string, unknown>, headers: res.headers }
}

/** Identities made before the nodes start, so an allowlist can name them. */
async function identities (root: string, n: number): Promise<Array<{ dir: string, id: string }>> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const dir = join(root, `id${i}`)
    return { dir, id: peerIdFromPrivateKey(await loadOrCreateIdentity(dir)).toString() }
  }))
}

describe('a private cluster', () => {
  let root: string
  beforeAll(async () => { root = await mkdtemp(join(tmpdir(), 'dsm-sec-')) })
  afterAll(async () => { await rm(root, { recursive: true, force: true }) })

  /** Members 0–2 form g1; node 3 is the outsider. Checks that it never got in. */
  async function outsiderStaysOut (c: SimCluster, outsider: number): Promise<void> {
    await c.waitFor(() => [0, 1, 2].every(i => c.node(i).membership.view.members().filter(m => m.state === 'ACTIVE').length === 3), { message: 'the members see each other' })
    const o = c.node(outsider)
    const member = multiaddr(`${c.address(0)}/p2p/${c.peerId(0)}`)
    // It cannot hold a connection, so it can call no protocol: not the DHT, not gossip, not a dsm RPC.
    await expect(request(o.libp2p, member, PROTOCOLS.locate, LocateRequestSchema, { id: FILE_ID }, LocateResponseSchema, { signal: AbortSignal.timeout(15_000) }))
      .rejects.toMatchObject({ name: 'UnavailableError' })
    // Writes through it reach no member. (Alone, it may have made a group of its own and store the file
    // itself: that is its own one-node cluster, and no member holds a byte of it.)
    const r = await post(url(c, outsider), randomBytes(10_000, 77))
    const members = [0, 1, 2].map(i => c.peerId(i))
    expect(r.status === 201 ? (r.body.replicas as string[]).filter(p => members.includes(p)) : [], JSON.stringify(r.body)).toEqual([])
    await c.waitFor(() => [0, 1, 2].every(i => c.node(i).libp2p.getConnections(o.libp2p.peerId).length === 0), { message: 'no member keeps a connection to the outsider' })
    for (const i of [0, 1, 2]) {
      const n = c.node(i)
      expect(n.membership.view.get(o.peerId), `member ${i} never heard of the outsider`).toBeUndefined()
      expect(n.store.index.stats().present.files).toBe(0)
    }
    expect(o.membership.view.members().map(m => m.peerId), 'the outsider sees only itself').toEqual([o.peerId])
  }

  it('with a network key (pnet): a node with another key, or none, cannot connect, gossip or write', async () => {
    const key = join(root, 'swarm.key')
    const other = join(root, 'other.key')
    await writeFile(key, generateSwarmKey())
    await writeFile(other, generateSwarmKey())
    const c = await createSimCluster({ nodes: 5, http: true, configure: (i) => i < 3 ? { group: 'g1', networkKey: key } : i === 3 ? { networkKey: other } : {} })
    try {
      await outsiderStaysOut(c, 3)
      await outsiderStaysOut(c, 4)
    } finally {
      await c.close()
    }
  })

  it('with a peer allowlist: a peer not on it cannot connect, gossip or write', async () => {
    const ids = await identities(join(root, 'allow'), 4)
    const members = ids.slice(0, 3).map(x => x.id)
    const c = await createSimCluster({
      nodes: 4,
      http: true,
      configure: (i) => ({ dataDir: ids[i]?.dir ?? '', ...(i < 3 ? { group: 'g1', allowPeers: members } : {}) })
    })
    try {
      await outsiderStaysOut(c, 3)
    } finally {
      await c.close()
    }
  })

  it('a bad network key file or allowlist entry is a clear config error', async () => {
    const bad = join(root, 'bad.key')
    await writeFile(bad, 'not a key\n')
    await expect(createSimCluster({ nodes: 1, configure: () => ({ networkKey: bad }) })).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/dsm swarm-key/) })
    await expect(createSimCluster({ nodes: 1, configure: () => ({ allowPeers: ['12D3KooWnope'] }) })).rejects.toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/not a peer id/) })
  })
})

describe('the cluster token and signed URLs', () => {
  let c: SimCluster
  const data = randomBytes(3 * 1024 * 1024 + 5, 91)
  let id: string
  beforeAll(async () => {
    // Node 3 has no token configured: it makes its own and keeps it in its data dir.
    c = await createSimCluster({ nodes: 4, http: true, configure: (i) => i < 3 ? { group: 'g1', open: false, token: TOKEN, signedUrls: i === 2 } : { open: false, spare: true } })
    await c.ready()
  }, 120_000)
  afterAll(async () => { await c?.close() })

  it('uploads and deletes without the token (or with a wrong one) get 401 and change nothing', async () => {
    const before = c.node(0).store.index.stats().present.files
    const none = await post(url(c, 0), data)
    expect(none.status).toBe(401)
    expect(none.body.code).toBe('ERR_UNAUTHORIZED')
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/)
    const wrong = await post(url(c, 1), data, { authorization: 'Bearer not-the-token-at-all' })
    expect(wrong.status).toBe(401)
    expect([0, 1, 2].map(i => c.node(i).store.index.stats().present.files)).toEqual([before, before, before])
    const ok = await post(url(c, 1), data, { authorization: `Bearer ${TOKEN}` })
    expect(ok.status).toBe(201)
    id = ok.body.id as string
    const del = await fetch(`${url(c, 0)}/files/${id}`, { method: 'DELETE' })
    expect(del.status).toBe(401)
    expect(c.node(0).store.index.get(id)?.state).toBe('present')
  })

  it('a node given no token makes one, keeps it (mode 0600) across restarts, and takes writes with it', async () => {
    const node = c.node(3)
    const token = node.token
    expect(token?.source).toBe('generated')
    expect(((await stat(token?.path ?? '')).mode & 0o777).toString(8)).toBe('600')
    await c.stop(3)
    await c.restart(3)
    expect(c.node(3).token).toMatchObject({ token: token?.token, source: 'file' })
    // Writes go through once it knows the cluster again (until then it answers 503: no group known).
    await c.waitFor(() => c.node(3).membership.view.groupMembers('g1').filter(m => m.state === 'ACTIVE').length === 3, { message: 'the restarted node sees g1' })
    expect((await post(url(c, 3), data)).status).toBe(401)
    const ok = await post(url(c, 3), data, { authorization: `Bearer ${token?.token ?? ''}` })
    expect(ok.status, JSON.stringify(ok.body)).toBe(201)
  })

  it('the CLI sends the token from DSM_TOKEN; without it the upload fails with a clear message', async () => {
    const file = join(c.root, 'cli.bin')
    await writeFile(file, randomBytes(50_000, 92))
    const without = await dsm(['upload', file, '--node', url(c, 0)])
    expect(without.code).toBe(1)
    expect(without.stderr).toMatch(/token/)
    const withToken = await dsm(['upload', file, '--node', url(c, 0)], { DSM_TOKEN: TOKEN })
    expect(withToken.code, withToken.stderr).toBe(0)
    expect(c.node(1).store.index.get(withToken.stdout.trim())?.state).toBe('present')
  })

  it('a --signed-urls node serves only signed, unexpired URLs (or token holders); a URL signed by one node works on another', async () => {
    const signer = url(c, 0)
    const guarded = url(c, 2)
    const unsigned = await fetch(`${guarded}/files/${id}`)
    expect(unsigned.status).toBe(403)
    expect((await unsigned.json() as { code: string }).code).toBe('ERR_BAD_SIGNATURE')
    // Nodes without --signed-urls keep serving openly.
    expect((await fetch(`${signer}/files/${id}`, { method: 'HEAD' })).status).toBe(200)
    // Signing needs the token.
    expect((await fetch(`${signer}/api/sign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id }) })).status).toBe(401)
    const signed = await fetch(`${signer}/api/sign`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ id, ttl: 600 })
    })
    const { path, expires } = await signed.json() as { path: string, expires: number }
    expect(expires).toBeGreaterThan(Date.now() / 1000 + 590)
    const full = await fetch(`${guarded}${path}`)
    expect(full.status).toBe(200)
    expect(sha256hex(new Uint8Array(await full.arrayBuffer()))).toBe(sha256hex(data))
    const part = await fetch(`${guarded}${path}`, { headers: { range: 'bytes=100-199' } })
    expect(part.status).toBe(206)
    expect(sha256hex(new Uint8Array(await part.arrayBuffer()))).toBe(sha256hex(data.subarray(100, 200)))
    // Tampered: another expiry, another file, a broken signature.
    const tampered = [path.replace(/expires=\d+/, `expires=${expires + 3600}`), path.replace(/sig=[^&]+/, 'sig=AAAA'), `/files/${c.node(0).store.index.withState('present').find(r => r.id !== id)?.id ?? 'x'}${path.slice(path.indexOf('?'))}`]
    for (const p of tampered) {
      const res = await fetch(`${guarded}${p}`)
      expect(res.status, p).toBe(403)
      expect((await res.json() as { code: string }).code).toBe('ERR_BAD_SIGNATURE')
    }
    // Token holders need no signature.
    expect((await fetch(`${guarded}/files/${id}`, { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200)
  })

  it('an expired signed URL gets 403 ERR_URL_EXPIRED', async () => {
    // Signed with the cluster token two minutes ago, valid for one: a genuine URL whose time is up.
    const { path } = new HttpAuth({ token: TOKEN, signedUrls: true }).sign(id, 60, Date.now() - 120_000)
    const res = await fetch(`${url(c, 2)}${path}`)
    expect(res.status).toBe(403)
    expect(await res.json()).toMatchObject({ code: 'ERR_URL_EXPIRED' })
  })
})

describe('gossip flood', () => {
  it('a peer flooding heartbeats has the excess dropped and is scored below the graylist threshold by the peers it floods', async () => {
    const c = await createSimCluster({ nodes: 3, configure: () => ({ group: 'g1' }) })
    try {
      await c.ready()
      const flooder = c.node(0)
      const me = c.node(1).membership.view.get(flooder.peerId)
      expect(me).toBeDefined()
      const pubsub = flooder.libp2p.services.pubsub
      // getScore is on the implementation, not on the exported GossipSub interface; scores refresh about once a second.
      const scoreAt = (i: number, peer: string): number => (c.node(i).libp2p.services.pubsub as unknown as { getScore: (peer: string) => number }).getScore(peer)
      // Gossip flows to a peer once its proof of the secret shows in the flooder's scores (up to a second after connecting).
      await c.waitFor(() => [1, 2].every(i => scoreAt(0, c.peerId(i)) >= 0), { message: 'the flooder has seen its peers prove the secret' })
      const seal = new HeartbeatSeal(flooder.keys as ClusterKeys, await loadOrCreateIdentity(flooder.config.dataDir))
      // Well-formed, sealed, fresh heartbeats of its own, 200 at once: far beyond any honest burst.
      for (let k = 0; k < 200; k++) {
        const hb = {
          peer: flooder.peerId,
          addrs: [],
          group: me?.group ?? null,
          state: 'ACTIVE' as const,
          total: 1,
          free: 1,
          load: 0,
          version: 'x',
          incarnation: (me?.incarnation ?? 0),
          seq: 1_000_000 + k,
          ts: Date.now(),
          sync: { head: 0, filesToGo: 0, bytesToGo: 0 },
          spare: false,
          reserve: 0
        }
        await pubsub.publish(MEMBERSHIP_TOPIC, await seal.seal(hb)).catch(() => {})
      }
      await c.waitFor(() => [1, 2].every(i => c.node(i).membership.dropped.flood > 100), { message: 'the flood is dropped' })
      const score = (i: number): number => scoreAt(i, flooder.peerId)
      await c.waitFor(() => [1, 2].every(i => score(i) < -80), { timeoutMs: 5_000, message: 'the flooder is scored below the graylist threshold (-80)' })
    } finally {
      await c.close()
    }
  })
})
