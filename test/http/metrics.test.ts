import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MEMBERSHIP_TOPIC } from '../../src/constants.ts'
import { NodeMetrics } from '../../src/http/metrics.ts'
import { createSimCluster } from '../sim/cluster.ts'
import { download, randomBytes, sha256hex, upload } from '../helpers/data.ts'
import { alterStoredChunk } from '../helpers/disk.ts'
import type { SimCluster } from '../sim/cluster.ts'

const MiB = 1024 * 1024
const url = (c: SimCluster, i: number): string => c.node(i).http?.url ?? ''

/** Parsed samples of a Prometheus text exposition: `value(name, labels)` (exact label set). */
interface Scrape { text: string, value: (name: string, labels?: Record<string, string>) => number | undefined }

function parse (text: string): Scrape {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m == null) continue
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(l => `${l[1] ?? ''}=${l[2] ?? ''}`).sort()
    samples.set(`${m[1] ?? ''}{${labels.join(',')}}`, Number(m[3]))
  }
  const key = (name: string, labels: Record<string, string>): string =>
    `${name}{${Object.entries(labels).map(([k, v]) => `${k}=${v}`).sort().join(',')}}`
  return { text, value: (name, labels = {}) => samples.get(key(name, labels)) }
}

/**
 * Scrape node `i`. A request is counted when its response has gone out, which
 * may come a moment after the client read the last byte: retry (briefly)
 * until `settled` holds, then return the scrape either way for the asserts.
 */
async function scrape (c: SimCluster, i: number, settled: (s: Scrape) => boolean = () => true): Promise<Scrape> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${url(c, i)}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const s = parse(await res.text())
    if (settled(s) || attempt === 40) return s
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const requests = (s: Scrape, method: string, route: string, status: number): number | undefined =>
  s.value('dsm_http_requests_total', { method, route, status: String(status) })

describe('GET /metrics', () => {
  // g1 = nodes 0-2 hold the files; node 3 (g2) holds none of them and reads through the network.
  // Open nodes: uploads need no token here (auth has its own tests).
  let c: SimCluster
  const data = randomBytes(3 * MiB + 17, 71)
  let id = ''
  beforeAll(async () => {
    c = await createSimCluster({ nodes: 4, http: true, configure: (i) => ({ group: i < 3 ? 'g1' : 'g2', readSources: 3, open: true }) })
    await c.ready()
    await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.members().filter(m => m.state === 'ACTIVE').length === 4), { message: 'all ACTIVE' })
  })
  afterAll(async () => { await c.close() })

  it('counts an upload on one node and a download through a non-replica, by route pattern and status', async () => {
    const up = await upload(url(c, 0), data, 'clip.mp4', { group: 'g1' })
    expect(up.status).toBe(201)
    id = up.body.id as string
    const d = await download(url(c, 3), id)
    expect(sha256hex(d.bytes)).toBe(sha256hex(data))
    expect((await fetch(`${url(c, 3)}/no/such/route`)).status).toBe(404)

    const writer = await scrape(c, 0, s => requests(s, 'POST', '/files', 201) === 1)
    expect(requests(writer, 'POST', '/files', 201)).toBe(1)
    expect(writer.value('dsm_http_received_bytes_total')).toBe(data.byteLength)
    expect(writer.value('dsm_http_sent_bytes_total')).toBe(0)
    expect(writer.value('dsm_store_files')).toBe(1)
    expect(writer.value('dsm_store_bytes')).toBe(data.byteLength)
    expect(writer.value('dsm_sync_files_to_go')).toBe(0)
    expect(writer.value('dsm_sync_bytes_to_go')).toBe(0)
    expect(writer.value('dsm_group_log_head')).toBe(c.node(0).store.index.head())
    expect(writer.value('dsm_group_log_head')).toBeGreaterThan(0)
    expect(writer.value('dsm_node_state', { state: 'ACTIVE' })).toBe(1)
    expect(writer.value('dsm_node_state', { state: 'SYNCING' })).toBe(0)

    const reader = await scrape(c, 3, s => requests(s, 'GET', '/files/:id', 200) === 1)
    expect(requests(reader, 'GET', '/files/:id', 200)).toBe(1)
    expect(reader.value('dsm_http_request_duration_seconds_count', { method: 'GET', route: '/files/:id' })).toBe(1)
    expect(requests(reader, 'GET', 'unmatched', 404)).toBe(1)
    // Routes are patterns: neither the file ID nor the probed URL becomes a label.
    expect(reader.text).not.toContain(id)
    expect(reader.text).not.toContain('/no/such/route')
    expect(reader.value('dsm_http_sent_bytes_total')).toBe(data.byteLength)
    expect(reader.value('dsm_http_received_bytes_total')).toBe(0)
    expect(reader.value('dsm_peer_fetched_bytes_total')).toBe(data.byteLength)
    expect(reader.value('dsm_chunk_cache_misses_total')).toBe(4)
    expect(reader.value('dsm_store_files')).toBe(0)

    // Every replica byte node 3 fetched was served by one of g1's members.
    const served = await Promise.all([0, 1, 2].map(async i => (await scrape(c, i)).value('dsm_peer_served_bytes_total') ?? NaN))
    expect(served.reduce((a, b) => a + b, 0)).toBe(data.byteLength)
  })

  it('a second read through the same node comes from its chunk cache', async () => {
    expect(sha256hex((await download(url(c, 3), id)).bytes)).toBe(sha256hex(data))
    const s = await scrape(c, 3, s => requests(s, 'GET', '/files/:id', 200) === 2)
    expect(requests(s, 'GET', '/files/:id', 200)).toBe(2)
    expect(s.value('dsm_http_sent_bytes_total')).toBe(2 * data.byteLength)
    expect(s.value('dsm_chunk_cache_hits_total')).toBe(4)
    expect(s.value('dsm_peer_fetched_bytes_total')).toBe(data.byteLength)
  })

  it('reports the membership view, libp2p connections and dropped heartbeats', async () => {
    await c.node(3).libp2p.services.pubsub.publish(MEMBERSHIP_TOPIC, new Uint8Array([0xa1, 0x63, 0x66, 0x6f])) // truncated CBOR
    await c.waitFor(() => c.node(0).membership.dropped.malformed >= 1, { message: 'node 0 drops the malformed heartbeat' })
    const s = await scrape(c, 0)
    expect(s.value('dsm_members', { state: 'ACTIVE' })).toBe(4)
    for (const state of ['JOINING', 'SYNCING', 'OFFLINE']) expect({ state, n: s.value('dsm_members', { state }) }).toEqual({ state, n: 0 })
    expect(s.value('dsm_libp2p_connected_peers')).toBe(3)
    expect(s.value('dsm_heartbeats_dropped_total', { reason: 'malformed' })).toBe(c.node(0).membership.dropped.malformed)
    expect(s.value('dsm_heartbeats_dropped_total', { reason: 'malformed' })).toBeGreaterThanOrEqual(1)
    expect(s.value('dsm_heartbeats_dropped_total', { reason: 'forged' })).toBe(0)
  })

  it('a chunk altered on a replica\'s disk is counted by the replica that reads it', async () => {
    const bad = c.node(1)
    const manifest = (await bad.replica.open(id)).manifest
    await alterStoredChunk(bad.store, bad.db, manifest.chunks[2] as Uint8Array, 1000)
    const d = await download(url(c, 1), id)
    expect(sha256hex(d.bytes)).toBe(sha256hex(data))
    const s = await scrape(c, 1)
    expect(s.value('dsm_chunk_verification_failures_total', { source: 'disk' })).toBe(1)
    expect(s.value('dsm_chunk_verification_failures_total', { source: 'peer' })).toBe(0)
  })

  it('a chunk from a replica that fails verification is counted by the node that received it', async () => {
    // 12 chunks: three segments of 4, one to each replica (readSources 3), so the liar serves one.
    const lie = randomBytes(12 * MiB, 72)
    const up = await upload(url(c, 0), lie, 'lie.bin', { group: 'g1' })
    const liar = c.node(2).store
    const honest = liar.readChunk.bind(liar)
    // As a broken or malicious node would: altered bytes, its own check skipped.
    liar.readChunk = async (digest, range) => {
      const bytes = await honest(digest, range)
      const altered = bytes.data.slice()
      altered[0] = (altered[0] ?? 0) ^ 0xff
      return { ...bytes, data: altered }
    }
    try {
      const d = await download(url(c, 3), up.body.id as string)
      expect(sha256hex(d.bytes)).toBe(sha256hex(lie))
    } finally {
      liar.readChunk = honest
    }
    const s = await scrape(c, 3)
    expect(s.value('dsm_chunk_verification_failures_total', { source: 'peer' })).toBe(1)
    expect(s.value('dsm_chunk_verification_failures_total', { source: 'disk' })).toBe(0)
    expect((await scrape(c, 2)).value('dsm_chunk_verification_failures_total', { source: 'disk' })).toBe(0)
  })

  it('answers 503 while its node is not running', async () => {
    await expect(new NodeMetrics(() => undefined).scrape()).rejects.toMatchObject({ code: 'ERR_NOT_STARTED' })
  })
})
