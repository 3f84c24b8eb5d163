/**
 * Prometheus metrics of one node (`GET /metrics`). Each node owns its
 * Registry — never prom-client's global one, since tests run many nodes in
 * one process. Nearly every value is read at scrape time from state the node
 * keeps anyway (membership view, file index, replica counters); only HTTP
 * traffic is counted here as it happens. No label carries a file name or ID.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { CLOCK_SKEW_WARN_MS } from '../constants.ts'
import { NotStartedError } from '../errors.ts'
import { NODE_STATES } from '../wire/state.ts'
import type { DropReason } from '../membership/heartbeat.ts'
import type { MembershipView } from '../membership/view.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { ChunkCache } from '../stream/chunk-cache.ts'
import type { FileIndex } from '../store/file-index.ts'
import type { VolumeSet } from '../store/volumes.ts'
import type { PeerId } from '@libp2p/interface'

/** Request durations (s): API calls take milliseconds, whole-file downloads minutes. */
const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120, 600]

/** What a scrape reads from a running node (the parts of DsmNode it needs, no more). */
export interface MeteredNode {
  status: Pick<LocalStatus, 'state' | 'group' | 'load' | 'sync'>
  membership: { view: Pick<MembershipView, 'members'>, dropped: Readonly<Record<DropReason, number>> }
  libp2p: { getConnections(): Array<{ remotePeer: PeerId }>, services: { auth: { counters: Readonly<{ proven: number, refused: number }> } } }
  store: { corruptChunks: number, index: Pick<FileIndex, 'stats' | 'head' | 'cursor'>, prepared: { size: number }, reclaims: { size: number }, chunks: { volumes: Pick<VolumeSet, 'rotations' | 'writableCount' | 'readHandles'> } }
  replica: {
    counters: Readonly<{ servedBytes: number }>
    reader: { counters: Readonly<{ fetchedBytes: number, peerCorruptChunks: number }>, cache: Pick<ChunkCache, 'hits' | 'misses' | 'bytes'> }
    resolver: { counters: Readonly<{ committed: number, aborted: number }> }
    reclaimer: { counters: Readonly<{ reclaimed: number, failed: number }> }
    locator: { counters: Readonly<{ asked: number }> }
    summaries: { bytes: number, counters: Readonly<{ fetched: number, failed: number }> }
  }
  finder: { counters: Readonly<{ lookups: number, hits: number, failures: number, seconds: number }> }
  compaction: { active: boolean, counters: Readonly<{ volumes: number, reclaimedBytes: number, movedBytes: number }> }
  scrub: { counters: Readonly<{ checked: number, bad: number, passes: number }> }
}

export interface RequestSample { method: string, route: string, status: number, seconds: number }

function counter (registry: Registry, name: string, help: string, labelNames: string[] = []): Counter {
  return new Counter({ name, help, labelNames, registers: [registry] })
}

function gauge (registry: Registry, name: string, help: string, labelNames: string[] = []): Gauge {
  return new Gauge({ name, help, labelNames, registers: [registry] })
}

/** A counter mirrored from a count the node keeps: set to it, not incremented. */
function mirror (counter: Counter, values: Array<[Record<string, string>, number]>): void {
  counter.reset()
  for (const [labels, value] of values) counter.inc(labels, value)
}

export class NodeMetrics {
  readonly registry = new Registry()
  private readonly node: () => MeteredNode | undefined
  private readonly httpRequests = counter(this.registry, 'dsm_http_requests_total', 'HTTP requests answered, by method, route pattern and status', ['method', 'route', 'status'])
  private readonly httpDuration = new Histogram({ name: 'dsm_http_request_duration_seconds', help: 'HTTP request time until the response was sent', labelNames: ['method', 'route'], buckets: DURATION_BUCKETS_S, registers: [this.registry] })
  private readonly httpSent = counter(this.registry, 'dsm_http_sent_bytes_total', 'File bytes handed to HTTP responses (GET /files/:id)')
  private readonly httpReceived = counter(this.registry, 'dsm_http_received_bytes_total', 'File bytes received in HTTP uploads')
  private readonly peerServed = counter(this.registry, 'dsm_peer_served_bytes_total', 'File bytes this node served to peers over /dsm/get')
  private readonly peerFetched = counter(this.registry, 'dsm_peer_fetched_bytes_total', 'File bytes this node fetched from replicas for its own HTTP readers')
  private readonly verifyFailures = counter(this.registry, 'dsm_chunk_verification_failures_total', 'Chunks that failed their hash check: read from this disk, or received from a peer', ['source'])
  private readonly heartbeatsDropped = counter(this.registry, 'dsm_heartbeats_dropped_total', 'Membership heartbeats dropped, by reason', ['reason'])
  private readonly cacheHits = counter(this.registry, 'dsm_chunk_cache_hits_total', 'Chunks served without a fetch of their own (cached, or joining a fetch under way)')
  private readonly cacheMisses = counter(this.registry, 'dsm_chunk_cache_misses_total', 'Chunk cache misses (chunks fetched from a replica)')
  private readonly cacheBytes = gauge(this.registry, 'dsm_chunk_cache_bytes', 'Bytes held in the chunk cache')
  private readonly nodeState = gauge(this.registry, 'dsm_node_state', 'This node\'s lifecycle state (1 for the current one)', ['state'])
  private readonly members = gauge(this.registry, 'dsm_members', 'Members in this node\'s membership view (itself included), by state', ['state'])
  private readonly connected = gauge(this.registry, 'dsm_libp2p_connected_peers', 'Peers with an open libp2p connection')
  private readonly transfers = gauge(this.registry, 'dsm_transfers_in_progress', 'Uploads received and downloads served right now (the load in heartbeats)')
  private readonly storeFiles = gauge(this.registry, 'dsm_store_files', 'Files held whole on this node')
  private readonly storeBytes = gauge(this.registry, 'dsm_store_bytes', 'Bytes of the files held whole on this node')
  private readonly syncFiles = gauge(this.registry, 'dsm_sync_files_to_go', 'Files group sync still has to fetch')
  private readonly syncBytes = gauge(this.registry, 'dsm_sync_bytes_to_go', 'Bytes of the files group sync still has to fetch')
  private readonly reclaimQueue = gauge(this.registry, 'dsm_reclaim_queue_files', 'Files freed by S3 values (overwritten or deleted objects, finished uploads\' parts) waiting to be deleted by this node')
  private readonly reclaimed = counter(this.registry, 'dsm_reclaimed_files_total', 'Freed files this node deleted, and attempts that failed (retried later)', ['result'])
  private readonly logHead = gauge(this.registry, 'dsm_group_log_head', 'This node\'s group log position (its highest sequence number)')
  private readonly clockSkew = gauge(this.registry, 'dsm_clock_skew_max_seconds', 'Largest clock difference between this node and a member it hears directly (absolute, seconds)')
  private readonly skewedMembers = gauge(this.registry, 'dsm_members_clock_skewed', 'Members whose clock differs from ours by more than the warning threshold (CLOCK_SKEW_WARN_MS)')
  private readonly peerAuth = counter(this.registry, 'dsm_peer_auth_total', 'Cluster-secret handshakes, by result: proven, or refused (a peer without our secret)', ['result'])
  private readonly memory = gauge(this.registry, 'dsm_process_memory_bytes', 'Memory of the node\'s process, by kind: rss, heap_used, heap_total, external, array_buffers (process.memoryUsage)', ['kind'])
  private readonly prepared = gauge(this.registry, 'dsm_prepared_uploads', 'Uploads prepared here whose decision has not arrived yet (normally 0 or a few in flight)')
  private readonly locateAsked = counter(this.registry, 'dsm_locate_requests_total', 'Locate requests this node sent to other groups\' members to find files it does not hold')
  private readonly summaryBytes = gauge(this.registry, 'dsm_group_summaries_bytes', 'Bytes of the other groups\' summaries (Bloom filters of their files) this node holds')
  private readonly summaryFetches = counter(this.registry, 'dsm_group_summary_fetches_total', 'Group summaries fetched, by result', ['result'])
  private readonly resolved = counter(this.registry, 'dsm_resolver_decisions_total', 'Prepared uploads whose lost decision this node settled itself, by decision', ['decision'])
  private readonly compacting = gauge(this.registry, 'dsm_compaction_running', '1 while a compaction pass rewrites volumes')
  private readonly compactedVolumes = counter(this.registry, 'dsm_compaction_volumes_total', 'Volumes rewritten and deleted by compaction')
  private readonly compactedBytes = counter(this.registry, 'dsm_compaction_reclaimed_bytes_total', 'Disk bytes compaction gave back')
  private readonly compactMoved = counter(this.registry, 'dsm_compaction_moved_bytes_total', 'Bytes of live chunks compaction copied into newer volumes')
  private readonly scrubChecked = counter(this.registry, 'dsm_scrub_checked_chunks_total', 'Stored chunks the scrub re-hashed')
  private readonly scrubBad = counter(this.registry, 'dsm_scrub_failures_total', 'Stored chunks the scrub found damaged (each fetched again from the group)')
  private readonly scrubPasses = counter(this.registry, 'dsm_scrub_passes_total', 'Whole passes of the scrub over the store')
  private readonly damagedFiles = gauge(this.registry, 'dsm_damaged_files', 'Files this member cannot heal: no member of its group holds a good copy of one of their chunks (see the log for their IDs)')
  private readonly dhtLookups = counter(this.registry, 'dsm_dht_group_lookups_total', 'Group members looked up in the DHT because the view lacked them, by result', ['result'])
  private readonly dhtSeconds = counter(this.registry, 'dsm_dht_group_lookup_seconds_total', 'Time those lookups took (with dsm_dht_group_lookups_total: their mean latency)')
  private readonly rotations = counter(this.registry, 'dsm_volume_rotations_total', 'Volumes started because the active one was full (since the process started)')
  private readonly volumeHandles = gauge(this.registry, 'dsm_volume_handles', 'Volume files held open', ['mode'])
  private readonly logBehind = gauge(this.registry, 'dsm_sync_log_behind', 'Log entries (at most) this node has yet to pull from the group mate it lags most')

  constructor (node: () => MeteredNode | undefined) {
    this.node = node
  }

  /** One HTTP exchange, once its response went out. */
  observeRequest (s: RequestSample): void {
    this.httpRequests.inc({ method: s.method, route: s.route, status: String(s.status) })
    this.httpDuration.observe({ method: s.method, route: s.route }, s.seconds)
  }

  /** `source`, counting the file bytes that pass through it into an HTTP response. */
  countSent<T extends { byteLength: number }> (source: AsyncIterable<T>): AsyncIterable<T> {
    return counted(source, (n) => { this.httpSent.inc(n) })
  }

  /** Bytes handed to an HTTP response in one piece (counted as they pass). */
  countSentBytes<T extends { byteLength: number } | undefined> (bytes: T): T {
    if (bytes != null) this.httpSent.inc(bytes.byteLength)
    return bytes
  }

  /** `source`, counting the upload bytes that pass through it. */
  countReceived<T extends { byteLength: number }> (source: AsyncIterable<T>): AsyncIterable<T> {
    return counted(source, (n) => { this.httpReceived.inc(n) })
  }

  /** The exposition text; throws NotStartedError (503) while the node starts. */
  async scrape (): Promise<{ contentType: string, text: string }> {
    const node = this.node()
    if (node == null) throw new NotStartedError('the node is not started')
    this.read(node)
    return { contentType: this.registry.contentType, text: await this.registry.metrics() }
  }

  private read (n: MeteredNode): void {
    const { counters, reader: { cache, counters: reads } } = n.replica
    mirror(this.peerServed, [[{}, counters.servedBytes]])
    mirror(this.peerFetched, [[{}, reads.fetchedBytes]])
    mirror(this.verifyFailures, [[{ source: 'disk' }, n.store.corruptChunks], [{ source: 'peer' }, reads.peerCorruptChunks]])
    mirror(this.heartbeatsDropped, Object.entries(n.membership.dropped).map(([reason, count]) => [{ reason }, count]))
    mirror(this.cacheHits, [[{}, cache.hits]])
    mirror(this.cacheMisses, [[{}, cache.misses]])
    this.cacheBytes.set(cache.bytes)
    this.transfers.set(n.status.load)
    this.connected.set(new Set(n.libp2p.getConnections().map(c => c.remotePeer.toString())).size)
    const auth = n.libp2p.services.auth.counters
    mirror(this.peerAuth, [[{ result: 'proven' }, auth.proven], [{ result: 'refused' }, auth.refused]])
    this.readMembers(n)
    this.readStore(n)
    this.readMaintenance(n)
    const m = process.memoryUsage()
    for (const [kind, bytes] of [['rss', m.rss], ['heap_used', m.heapUsed], ['heap_total', m.heapTotal], ['external', m.external], ['array_buffers', m.arrayBuffers]] as const) this.memory.set({ kind }, bytes)
  }

  private readMembers (n: MeteredNode): void {
    const members = n.membership.view.members()
    for (const state of NODE_STATES) {
      this.nodeState.set({ state }, state === n.status.state ? 1 : 0)
      this.members.set({ state }, members.filter(m => m.state === state).length)
    }
    // Group mates advertise their log head; our cursor says how far we pulled it (sync pulls from these states).
    const group = n.status.group
    const mates = members.filter(m => !m.self && group != null && m.group === group && (m.state === 'ACTIVE' || m.state === 'SYNCING'))
    this.logBehind.set(Math.max(0, ...mates.map(m => m.sync.head - n.store.index.cursor(m.peerId))))
    const skews = members.filter(m => !m.self && m.state !== 'OFFLINE' && m.skewMs != null).map(m => Math.abs(m.skewMs ?? 0))
    this.clockSkew.set(Math.max(0, ...skews) / 1000)
    this.skewedMembers.set(skews.filter(s => s > CLOCK_SKEW_WARN_MS).length)
  }

  private readStore (n: MeteredNode): void {
    const { present, pending } = n.store.index.stats()
    this.storeFiles.set(present.files)
    this.storeBytes.set(present.bytes)
    this.syncFiles.set(pending.files)
    this.syncBytes.set(pending.bytes)
    this.logHead.set(n.store.index.head())
  }

  private readMaintenance (n: MeteredNode): void {
    this.prepared.set(n.store.prepared.size)
    const r = n.replica.resolver.counters
    mirror(this.resolved, [[{ decision: 'commit' }, r.committed], [{ decision: 'abort' }, r.aborted]])
    mirror(this.locateAsked, [[{}, n.replica.locator.counters.asked]])
    this.reclaimQueue.set(n.store.reclaims.size)
    const rc = n.replica.reclaimer.counters
    mirror(this.reclaimed, [[{ result: 'deleted' }, rc.reclaimed], [{ result: 'failed' }, rc.failed]])
    this.summaryBytes.set(n.replica.summaries.bytes)
    const f = n.replica.summaries.counters
    mirror(this.summaryFetches, [[{ result: 'ok' }, f.fetched], [{ result: 'failed' }, f.failed]])
    const c = n.compaction.counters
    this.compacting.set(n.compaction.active ? 1 : 0)
    mirror(this.compactedVolumes, [[{}, c.volumes]])
    mirror(this.compactedBytes, [[{}, c.reclaimedBytes]])
    mirror(this.compactMoved, [[{}, c.movedBytes]])
    const s = n.scrub.counters
    mirror(this.scrubChecked, [[{}, s.checked]])
    mirror(this.scrubBad, [[{}, s.bad]])
    mirror(this.scrubPasses, [[{}, s.passes]])
    this.damagedFiles.set(n.status.sync.damaged ?? 0)
    const dht = n.finder.counters
    mirror(this.dhtLookups, [[{ result: 'hit' }, dht.hits], [{ result: 'miss' }, dht.lookups - dht.hits - dht.failures], [{ result: 'failed' }, dht.failures]])
    mirror(this.dhtSeconds, [[{}, dht.seconds]])
    const v = n.store.chunks.volumes
    mirror(this.rotations, [[{}, v.rotations]])
    this.volumeHandles.set({ mode: 'write' }, v.writableCount)
    this.volumeHandles.set({ mode: 'read' }, v.readHandles)
  }
}

async function * counted<T extends { byteLength: number }> (source: AsyncIterable<T>, add: (bytes: number) => void): AsyncGenerator<T> {
  for await (const chunk of source) {
    add(chunk.byteLength)
    yield chunk
  }
}
