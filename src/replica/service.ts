/**
 * The replica side of a node: serves the file protocols, runs group sync and
 * repair, and offers the file operations the HTTP
 * API and CLI use (upload, open/read, stat, delete, list).
 */
import { pipe } from 'it-pipe'
import { peerIdFromString } from '@libp2p/peer-id'
import { LRUCache } from 'lru-cache'
import { Queue } from '@libp2p/utils'
import { REQUEST_TIMEOUT_MS } from '../constants.ts'
import { CorruptChunkError, FileNotFoundError, NotAMemberError, UnavailableError, UndecidedError, toError } from '../errors.ts'
import { serveGet } from '../stream/get.ts'
import { ChunkCache } from '../stream/chunk-cache.ts'
import { readRange, sliceChunks } from '../stream/range-reader.ts'
import { readRemoteChunks } from '../stream/remote-read.ts'
import { PeerScores } from '../stream/peer-scores.ts'
import { orderReplicas } from '../stream/replica-choice.ts'
import { SwarmRegistry } from '../dht/swarm.ts'
import { LOCAL_SOURCE_ID, localSource, remoteSource } from '../stream/sources.ts'
import {
  ApplyRequestSchema, ApplyResultSchema, DeleteRequestSchema, DeleteResultSchema, ListRequestSchema, ListResponseSchema,
  LocateRequestSchema, LocateResponseSchema, OutcomeRequestSchema, OutcomeResponseSchema, PROTOCOLS, RecruitRequestSchema, RecruitResponseSchema, SwarmAnnounceSchema, SwarmPeersSchema,
  SummaryRequestSchema, SummaryResponseSchema, SyncRequestSchema, SyncResponseSchema
} from '../wire/messages.ts'
import { request, serve } from '../wire/rpc.ts'
import { applyPushedDelete, deleteAsMember } from './delete.ts'
import { ingest } from './ingest.ts'
import { answerList, listCluster } from './list.ts'
import { Locator, answerLocate } from '../dht/locate.ts'
import { GroupSummaries, OwnSummary } from '../dht/summaries.ts'
import { decodeManifest, parseFileId } from '../content/manifest.ts'
import { validateFileName } from '../content/names.ts'
import { PlacementPolicy, chooseCoordinator, copyFloor } from './placement.ts'
import { putRemote, servePut } from './put.ts'
import { Repair } from './repair.ts'
import { Resolver, outcomeOf } from './resolve.ts'
import { serveReplicate } from './replicate.ts'
import { Channels, serveChannel } from './channel.ts'
import { statFile } from './stat.ts'
import { GroupSync, answerSync } from './sync.ts'
import type { FileListing } from './list.ts'
import type { Located } from '../dht/locate.ts'
import type { Manifest } from '../content/manifest.ts'
import type { Placement } from './placement.ts'
import type { FileStat } from './stat.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { MembershipView } from '../membership/view.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { ChunkSource } from '../stream/failover.ts'
import type { DeleteResult, PutHeader, Quorum, UploadResult } from '../wire/messages.ts'
import type { FileRow } from '../store/file-index.ts'
import type { Dialer, Registrar } from '../wire/rpc.ts'
import type { AbortOptions, Startable, Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** Concurrent transfer streams (put, replicate, get) per connection, each way. */
export const MAX_TRANSFER_STREAMS_PER_PEER = 256
/** Uploads one coordinator runs at once; more wait their turn (their senders are paused). */
export const MAX_CONCURRENT_UPLOADS = 32
/** Uploads allowed to wait for a turn before new ones are refused (503). */
export const MAX_QUEUED_UPLOADS = 4096
/** Decoded manifests kept in memory for serving reads. */
export const MANIFEST_CACHE_ENTRIES = 512

export interface ReplicaInit {
  groupSize: number
  writeQuorum: Quorum
  minCopies?: number | null
  placement: Placement
  repairAfterMs: number
  /** Sync and repair rounds run at this period (the heartbeat interval). */
  intervalMs: number
  stallTimeoutMs: number
  /** Bytes of the chunk cache for files this node does not hold (0 disables it). */
  cacheBytes: number
  /** Replicas one read fetches from in parallel. */
  readSources: number
  chunkSize?: number
  /** The index is being rebuilt from the group (dsm node --rebuild): see replica/sync.ts and store/rebuild.ts. */
  rebuilding?: boolean
}

export interface ReplicaComponents {
  selfId: string
  store: LocalStore
  status: LocalStatus
  view: MembershipView
  dialer: Dialer
  registrar: Registrar
  /** Resolves once the node heard from the cluster (see GroupSync). */
  waitForContact: (options: AbortOptions) => Promise<void>
  /** Round-trip time to a peer, when libp2p measured one. */
  rttOf: (peerId: string) => number | undefined
  /** Peers this node holds a connection to (asking one of them costs no handshake). */
  connectedPeers: () => Set<string>
  /** Switch this node to `group` (persisted) — used by repair. */
  persistGroup: (group: string) => Promise<void>
  /** Whether this node caught up with its group once (./sync.ts: a new member is never ACTIVE alone beside mates that hold files). */
  hasSynced?: () => boolean
  /** Make the view know a group's members when it does not (the DHT tracker: dht/group-finder.ts). */
  findGroup?: (group: string, options: AbortOptions) => Promise<string[]>
  logger: Logger
}

export interface UploadRequest {
  name: string
  mime?: string
  size?: number
  group?: string
  quorum?: Quorum
}

export class ReplicaService implements Startable {
  readonly locator: Locator
  /** Other groups' summaries, fetched as this node reads from them. */
  readonly summaries: GroupSummaries
  /** The summary of the files held here, for readers elsewhere. */
  private readonly ownSummary: OwnSummary
  /** Browser nodes watching files, and the chunks they hold (for browser-to-browser delivery). */
  readonly swarm = new SwarmRegistry()
  /** Chunks this node streamed for files it does not hold. */
  readonly cache: ChunkCache
  /** Bytes this node served to others as a replica, and fetched from replicas for its own readers; chunks from replicas that failed verification. */
  readonly counters = { servedBytes: 0, fetchedBytes: 0, peerCorruptChunks: 0 }
  /** Peers that served bytes failing verification: asked last (and forgiven over time). */
  readonly scores = new PeerScores()
  readonly sync: GroupSync
  readonly repair: Repair
  /** Decides prepared uploads whose decision was lost (./resolve.ts). */
  readonly resolver: Resolver
  private readonly c: ReplicaComponents
  private readonly init: ReplicaInit
  private readonly placement: PlacementPolicy
  private readonly manifests = new LRUCache<string, Manifest>({ max: MANIFEST_CACHE_ENTRIES })
  private readonly handlers: string[] = []
  /** Upload channels to the members this node coordinates writes for. */
  private readonly channels: Channels
  private readonly uploads = new Queue<UploadResult>({ concurrency: MAX_CONCURRENT_UPLOADS, maxSize: MAX_QUEUED_UPLOADS })

  constructor (components: ReplicaComponents, init: ReplicaInit) {
    this.c = components
    this.init = init
    this.placement = new PlacementPolicy(init.placement)
    this.channels = new Channels(components.dialer)
    this.cache = new ChunkCache(init.cacheBytes)
    this.ownSummary = new OwnSummary(components.store.index)
    this.summaries = new GroupSummaries(components)
    this.locator = new Locator({ index: components.store.index, view: components.view, dialer: components.dialer, connectedPeers: components.connectedPeers, logger: components.logger, summaries: this.summaries, preparedHere: (id) => components.store.prepared.forFile(id).length > 0, ...(components.findGroup != null ? { findGroup: components.findGroup } : {}) })
    this.sync = new GroupSync(components, { intervalMs: init.intervalMs, rebuilding: init.rebuilding })
    this.repair = new Repair({ ...components, joinGroup: async (g) => this.joinGroup(g) }, init)
    this.resolver = new Resolver(components, { intervalMs: init.intervalMs, coordinatorGoneMs: init.repairAfterMs })
  }

  async start (): Promise<void> {
    await this.registerHandlers()
    const { store, status } = this.c
    store.addEventListener('file:deleted', this.onDeleted)
    store.addEventListener('file:present', this.onPresent)
    store.addEventListener('chunk:corrupt', this.onCorrupt)
    status.addEventListener('change', this.onStatus)
    await this.sync.start()
    await this.repair.start()
    await this.resolver.start()
  }

  async stop (): Promise<void> {
    const { store, status } = this.c
    store.removeEventListener('file:deleted', this.onDeleted)
    store.removeEventListener('file:present', this.onPresent)
    store.removeEventListener('chunk:corrupt', this.onCorrupt)
    status.removeEventListener('change', this.onStatus)
    this.uploads.abort()
    this.channels.close()
    await this.resolver.stop()
    await this.repair.stop()
    await this.sync.stop()
    for (const p of this.handlers.splice(0)) await this.c.registrar.unhandle(p)
  }

  /** Store a file in the cluster; resolves when the write quorum holds it. */
  async upload (req: UploadRequest, source: AsyncIterable<Uint8Array | Uint8ArrayList>, options: AbortOptions = {}): Promise<UploadResult> {
    const header: PutHeader = {
      group: this.placement.chooseGroup(this.c.view, req.group, g => copyFloor(this.c.view, g, this.init.minCopies, req.quorum ?? this.init.writeQuorum)),
      name: validateFileName(req.name),
      quorum: req.quorum ?? this.init.writeQuorum,
      ...(req.mime != null ? { mime: req.mime } : {}),
      ...(req.size != null ? { size: req.size } : {})
    }
    const coordinator = chooseCoordinator(this.c.view, header.group)
    return coordinator.self
      ? this.coordinate(header, source, options)
      : putRemote(this.c.dialer, coordinator.peerId, header, source, options)
  }

  /** Run an upload as its coordinator, at most MAX_CONCURRENT_UPLOADS at a time. */
  private async coordinate (header: PutHeader, source: AsyncIterable<Uint8Array | Uint8ArrayList>, options: AbortOptions): Promise<UploadResult> {
    if (this.uploads.size >= MAX_QUEUED_UPLOADS) throw new UnavailableError('too many uploads in progress; retry later')
    return this.uploads.add(async () => ingest(this.ingestComponents(), header, source, options), options)
  }

  /** Locate a file by its ID (from any node). */
  async open (id: string, options: AbortOptions = {}): Promise<Located> {
    return this.locator.locate(parseFileId(id), options)
  }

  /**
   * Verified bytes of [offset, offset + length). A replica reads its own copy
   * (other replicas only if a local chunk is damaged); any other node reads
   * from the group's ACTIVE members in parallel, through its chunk cache.
   */
  read (located: Located, offset: number, length: number, options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    return this.readFromKnownGroup(located, offset, length, options)
  }

  /** A file of a group this node has no live member of in view (it was located through one member): ask the DHT first. */
  private async * readFromKnownGroup (located: Located, offset: number, length: number, options: AbortOptions): AsyncGenerator<Uint8Array> {
    const held = this.c.store.index.get(located.manifest.id.toString())?.state === 'present'
    if (!held && !this.c.view.groupMembers(located.group).some(m => !m.self && m.state === 'ACTIVE')) await this.c.findGroup?.(located.group, options)
    yield * this.readFrom(located, offset, length, options)
  }

  private readFrom (located: Located, offset: number, length: number, options: AbortOptions): AsyncIterable<Uint8Array> {
    const { manifest } = located
    const avoided = (peer: string): boolean => this.scores.avoided(peer)
    const connected = this.c.connectedPeers()
    const ordered = orderReplicas(this.c.view.groupMembers(located.group), { rttOf: this.c.rttOf, avoided, connected: (peer) => connected.has(peer) })
    const remote = ordered.map(m => remoteSource(this.c.dialer, m.peerId))
    // Avoided replicas are for failover only: never part of the parallel window while others are left.
    const trusted = ordered.filter(m => !avoided(m.peerId)).length
    const onSourceFailed = (source: ChunkSource, err: Error): void => {
      // A bad chunk read from our own disk is counted by the store; this counts the ones a peer sent.
      if (err instanceof CorruptChunkError && source.id !== LOCAL_SOURCE_ID) {
        this.counters.peerCorruptChunks++
        this.scores.badChunk(source.id)
      }
      this.c.logger.info({ source: source.id.slice(-8), err: err.message }, 'replica failed mid-read; moving on')
    }
    const bytes = this.c.store.index.get(manifest.id.toString())?.state === 'present'
      ? readRange(manifest, offset, length, [localSource(this.c.store), ...remote], { ...options, stallTimeoutMs: this.init.stallTimeoutMs, onSourceFailed })
      // Replicas in parallel, through the cache (each chunk verified as it arrives) → the bytes of the range.
      : pipe(readRemoteChunks(manifest, offset, length, remote, {
        ...options,
        cache: this.cache,
        parallelSources: Math.max(1, Math.min(this.init.readSources, trusted)),
        stallTimeoutMs: this.init.stallTimeoutMs,
        onSourceFailed,
        onFetched: (_source, bytes) => { this.counters.fetchedBytes += bytes }
      }), async function * (chunks) { yield * sliceChunks(manifest, offset, length, chunks) })
    return this.notFoundIfDeleted(located, bytes, options)
  }

  /**
   * A read whose every source failed: if the file was deleted meanwhile (the chunks go with it, here or on a
   * replica, which can then only reset its stream), that is a 404, not a 503 to retry. Asked only when a read failed.
   */
  private async * notFoundIfDeleted (located: Located, source: AsyncIterable<Uint8Array>, options: AbortOptions): AsyncGenerator<Uint8Array> {
    try {
      yield * source
    } catch (err) {
      if (!(err instanceof UnavailableError)) throw err
      const id = located.manifest.id
      this.locator.forget(id.toString())
      const gone = await this.locator.locate(id, options).then(() => false, (e: unknown) => e instanceof FileNotFoundError)
      if (gone) throw new FileNotFoundError(`${id.toString()} was deleted while it was read`)
      throw err
    }
  }

  async stat (id: string, options: AbortOptions = {}): Promise<FileStat> {
    return statFile(this.c, await this.open(id, options), options)
  }

  async delete (id: string, options: AbortOptions = {}): Promise<DeleteResult> {
    const located = await this.open(id, options)
    this.locator.forget(id)
    if (located.via === 'local') return deleteAsMember(this.ingestComponents(), id, options)
    // The member that told us about the file holds it, so it knows the stamp the delete must beat;
    // when it is no longer ACTIVE, any ACTIVE member will do (each holds every acknowledged file).
    // Never ourselves: we do not hold it (a member that has not caught up yet), so a mate that does must stamp the delete.
    const active = this.c.view.groupMembers(located.group).filter(m => m.state === 'ACTIVE' && !m.self).map(m => m.peerId)
    const order = [...new Set([located.holder, ...active].filter((p): p is string => p != null && active.includes(p)))]
    if (order.length === 0) throw new UnavailableError(`group ${located.group} has no ACTIVE member right now; nothing was deleted — retry`)
    let last: Error | undefined
    for (const peer of order) {
      try {
        return await request(this.c.dialer, peerIdFromString(peer), PROTOCOLS.delete, DeleteRequestSchema, { id }, DeleteResultSchema, options)
      } catch (err) {
        // Only an unreachable member is worth another try; its refusal (e.g. not found) is the answer.
        if (!(err instanceof UnavailableError) || options.signal?.aborted === true) throw err
        last = err
      }
    }
    throw last ?? new UnavailableError(`no member of ${located.group} answered the delete`)
  }

  async list (options: AbortOptions = {}): Promise<FileListing[]> {
    return listCluster(this.c, options)
  }

  private ingestComponents (): Parameters<typeof ingest>[0] {
    return { ...this.c, channels: this.channels, minCopies: this.init.minCopies ?? null, ...(this.init.chunkSize != null ? { chunkSize: this.init.chunkSize } : {}) }
  }

  private async joinGroup (group: string): Promise<void> {
    await this.c.persistGroup(group)
    this.c.status.setGroup(group)
    this.c.status.setState('SYNCING')
    this.sync.kick()
  }

  private async manifestOf (id: string): Promise<Manifest | undefined> {
    const cached = this.manifests.get(id)
    if (cached != null) return cached
    const row = this.c.store.index.get(id)
    if (row?.manifest == null) return undefined
    const m = await decodeManifest(row.manifest)
    this.manifests.set(id, m)
    return m
  }

  private async registerHandlers (): Promise<void> {
    const { registrar, store } = this.c
    const stream = async (protocol: string, handler: (s: Stream, remote: string) => Promise<void>): Promise<void> => {
      await registrar.handle(protocol, (s, connection) => {
        handler(s, connection.remotePeer.toString()).catch(err => {
          this.c.logger.debug({ err: toError(err).message, protocol }, 'stream handler failed')
          s.abort(toError(err))
        })
      }, { maxInboundStreams: MAX_TRANSFER_STREAMS_PER_PEER, maxOutboundStreams: MAX_TRANSFER_STREAMS_PER_PEER })
      this.handlers.push(protocol)
    }
    await stream(PROTOCOLS.put, async (s) => { await servePut(s, async (h, src, o) => this.coordinate(h, src, o)) })
    await stream(PROTOCOLS.replicate, async (s, remote) => { await serveReplicate(this.c, s, remote) })
    await stream(PROTOCOLS.channel, async (s) => { await serveChannel(this.c, s) })
    await stream(PROTOCOLS.get, async (s) => {
      await serveGet({
        chunks: {
          // A pending copy serves the chunks it still holds: two copies each missing a different chunk heal each other.
          manifestOf: async (id) => { const s = store.index.get(id)?.state; return s === 'present' || s === 'pending' ? this.manifestOf(id) : undefined },
          readChunk: async (digest, range) => store.readChunk(digest, range),
          has: (digest) => store.chunks.has(digest)
        },
        status: this.c.status,
        logger: this.c.logger,
        onServed: (bytes) => { this.counters.servedBytes += bytes }
      }, s, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS * 60) })
    })
    const rpc = async <Req, Res>(protocol: string, reqSchema: Parameters<typeof serve<Req, Res>>[2], resSchema: Parameters<typeof serve<Req, Res>>[3],
      handler: (req: Req, remote: string, o: AbortOptions) => Promise<Res>): Promise<void> => {
      await serve(registrar, protocol, reqSchema, resSchema, async (req, remote, o) => handler(req, remote.toString(), o))
      this.handlers.push(protocol)
    }
    await rpc(PROTOCOLS.locate, LocateRequestSchema, LocateResponseSchema, async (req) => {
      const answer = answerLocate(store.index, req.id, this.c.view)
      // A prepared copy whose decision has not arrived: perhaps an acknowledged upload. "Unknown" would be a 404.
      if (answer.state === 'unknown' && store.prepared.forFile(req.id).length > 0) throw new UndecidedError(`${req.id} is being committed here; ask again`)
      return answer
    })
    await rpc(PROTOCOLS.swarm, SwarmAnnounceSchema, SwarmPeersSchema, async (req, remote) => this.swarm.announce(remote, req))
    await rpc(PROTOCOLS.delete, DeleteRequestSchema, DeleteResultSchema, async (req, _r, o) => deleteAsMember(this.ingestComponents(), req.id, o))
    await rpc(PROTOCOLS.apply, ApplyRequestSchema, ApplyResultSchema, async (req) => applyPushedDelete(this.c, req.op))
    await rpc(PROTOCOLS.outcome, OutcomeRequestSchema, OutcomeResponseSchema, async (req) => {
      // Still being decided here (our own prepare may not have finished): an answer now could only be a wrong "unknown".
      if (store.deciding(req)) throw new UnavailableError('this upload is still being decided; ask again')
      return { state: outcomeOf(store, req) }
    })
    await rpc(PROTOCOLS.sync, SyncRequestSchema, SyncResponseSchema, async (req) => {
      if (this.c.status.group !== req.group) throw new NotAMemberError(`not a member of ${req.group}`)
      return answerSync(store, req.group, req.since, req.limit)
    })
    await rpc(PROTOCOLS.recruit, RecruitRequestSchema, RecruitResponseSchema, async (req, remote) => this.repair.answerRecruit(req.group, remote))
    await rpc(PROTOCOLS.summary, SummaryRequestSchema, SummaryResponseSchema, async (req) => {
      if (this.c.status.group !== req.group) throw new NotAMemberError(`not a member of ${req.group}`)
      return this.ownSummary.answer(req.group)
    })
    await rpc(PROTOCOLS.list, ListRequestSchema, ListResponseSchema, async (req) => answerList(store.index, this.c.status.group, req.afterSeq, req.limit))
  }

  private readonly onDeleted = (evt: CustomEvent<{ id: string }>): void => {
    this.manifests.delete(evt.detail.id)
    this.locator.forget(evt.detail.id)
    this.ownSummary.deleted()
  }

  private readonly onPresent = (evt: CustomEvent<FileRow>): void => {
    this.ownSummary.added(evt.detail.id)
  }

  /** A chunk on our disk is bad: its files turn pending, and sync fetches a good copy. */
  private readonly onCorrupt = (evt: CustomEvent<{ digest: Uint8Array, files: string[] }>): void => {
    // The store turned the files pending in the transaction that dropped the chunk; fetching is ours.
    this.c.logger.warn({ files: evt.detail.files }, 'corrupt chunk on disk: fetching a good copy from the group')
    this.sync.kick()
  }

  /** Once ACTIVE in a new group, drop the files of the group we left; once a rebuild caught up, the chunks nobody uses. */
  private readonly onStatus = (): void => {
    const { status, store } = this.c
    if (status.state !== 'ACTIVE' || status.group == null) return
    if (this.sync.rebuilding) {
      this.sync.rebuilding = false
      store.collectOrphans()
        .then(n => { this.c.logger.info({ removed: n }, 'rebuilt the index from the group; removed the chunk files no file uses') })
        .catch(err => { this.c.logger.warn({ err: toError(err).message }, 'could not collect chunk files after the rebuild') })
    }
    store.dropOtherGroups(status.group)
      .then(n => { if (n > 0) this.c.logger.info({ dropped: n }, 'dropped the files of the group this node left') })
      .catch(err => { this.c.logger.warn({ err: toError(err).message }, 'could not drop the files of the previous group') })
  }
}
