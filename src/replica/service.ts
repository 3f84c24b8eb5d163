/**
 * The replica side of a node: serves the file protocols, runs group sync and
 * repair, and offers the file operations the HTTP
 * API and CLI use (upload, open/read, stat, delete, list).
 */
import { LRUCache } from 'lru-cache'
import { Limiter } from '../util/limiter.ts'
import { DsmError, UnavailableError, toError } from '../errors.ts'
import { getHandler } from '../stream/get.ts'
import { SwarmRegistry, swarmHandler } from '../dht/swarm.ts'
import { registerHandlers } from '../wire/handlers.ts'
import { applyHandler, deleteHandler, deleteLocated } from './delete.ts'
import { ingest } from './ingest.ts'
import type { IngestOptions } from './ingest.ts'
import { listCluster, listHandler } from './list.ts'
import { Locator, locateHandler } from '../dht/locate.ts'
import { GroupSummaries, OwnSummary, summaryHandler } from '../dht/summaries.ts'
import { decodeManifest, parseFileId } from '../content/manifest.ts'
import { validateFileName } from '../content/names.ts'
import { PlacementPolicy, coordinators, copyFloor, wantedCopies } from './placement.ts'
import { putHandler, putRemote } from './put.ts'
import { FileReader } from './read.ts'
import type { ReadOptions } from './read.ts'
import { Repair, recruitHandler } from './repair.ts'
import { Resolver, outcomeHandler } from './resolve.ts'
import { replicateHandler } from './replicate.ts'
import { Channels, channelHandlers } from './channel.ts'
import { statFile } from './stat.ts'
import { GroupSync, syncHandler } from './sync.ts'
import { applyPushedFrame, nameApplyHandler, namesHandler } from './names.ts'
import { nameSyncHandler } from './name-sync.ts'
import { Namespace } from './namespace.ts'
import { AccessKeys } from './access-keys.ts'
import { UploadJanitor } from './upload-janitor.ts'
import { Reclaimer } from './reclaim.ts'
import { BucketAnnouncer } from './bucket-announcer.ts'
import type { KeySealer } from './access-keys.ts'
import type { IngestComponents } from './ingest-components.ts'
import type { FileListing } from './list.ts'
import type { Located } from '../dht/locate.ts'
import type { Manifest } from '../content/manifest.ts'
import type { Placement } from './placement.ts'
import type { FileStat } from './stat.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { MembershipView } from '../membership/view.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { DeleteResult, PutHeader, Quorum, UploadResult } from '../wire/messages.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import type { Dialer, Registrar } from '../wire/rpc.ts'
import type { AbortOptions, Startable } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

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
  /** Unfinished S3 multipart uploads are dropped after this long (./upload-janitor.ts; default a week). */
  multipartExpiryMs?: number
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
  /** The groups whose members provide an S3 bucket's key in the DHT, their members now in view. */
  findBucket?: (bucket: string, options: AbortOptions) => Promise<string[]>
  /** Provide (or withdraw) an S3 bucket's key in the DHT: its members do, for the buckets their group owns. */
  announceBucket?: (bucket: string, options: AbortOptions) => Promise<void>
  withdrawBucket?: (bucket: string, options: AbortOptions) => Promise<void>
  /** Seals S3 secrets with the cluster secret (net/cluster-secret.ts). */
  sealer?: KeySealer
  logger: Logger
}

export interface UploadRequest {
  name: string
  mime?: string
  size?: number
  group?: string
  quorum?: Quorum
  /** Makes the file's ID unique (content/manifest.ts `tag`). */
  tag?: string
}

export class ReplicaService implements Startable {
  readonly locator: Locator
  /** Other groups' summaries, fetched as this node reads from them. */
  readonly summaries: GroupSummaries
  /** The summary of the files held here, for readers elsewhere. */
  private readonly ownSummary: OwnSummary
  /** Browser nodes watching files, and the chunks they hold (for browser-to-browser delivery). */
  readonly swarm = new SwarmRegistry()
  /** The read path: local copy or replicas in parallel, the chunk cache, peer scores (./read.ts). */
  readonly reader: FileReader
  /** Bytes this node served to others as a replica. */
  readonly counters = { servedBytes: 0 }
  readonly sync: GroupSync
  readonly repair: Repair
  /** Decides prepared uploads whose decision was lost (./resolve.ts). */
  readonly resolver: Resolver
  /** The S3 namespace: buckets and keys, owned by groups (./namespace.ts). */
  readonly names: Namespace
  /** S3 access keys, sealed with the cluster secret (./access-keys.ts); absent without the node's keys. */
  readonly accessKeys?: AccessKeys
  /** Drops unfinished multipart uploads of the buckets this group owns. */
  readonly janitor: UploadJanitor
  /** Deletes the files S3 values freed (./reclaim.ts). */
  readonly reclaimer: Reclaimer
  /** Provides the keys of our group's buckets in the DHT (./bucket-announcer.ts). */
  private readonly buckets?: BucketAnnouncer
  private readonly c: ReplicaComponents
  private readonly init: ReplicaInit
  private readonly placement: PlacementPolicy
  private readonly manifests = new LRUCache<string, Manifest>({ max: MANIFEST_CACHE_ENTRIES })
  private unregister?: () => Promise<void>
  /** Upload channels to the members this node coordinates writes for. */
  private readonly channels: Channels
  private readonly uploads = new Limiter(MAX_CONCURRENT_UPLOADS, MAX_QUEUED_UPLOADS - MAX_CONCURRENT_UPLOADS)
  /** Set when stop begins: uploads cut short by it fail as "unavailable, retry", not as an internal error. */
  private stopping = false

  constructor (components: ReplicaComponents, init: ReplicaInit) {
    this.c = components
    this.init = init
    this.placement = new PlacementPolicy(init.placement)
    this.channels = new Channels(components.dialer)
    this.ownSummary = new OwnSummary(components.store.index)
    this.summaries = new GroupSummaries(components)
    const findGroup = components.findGroup != null ? { findGroup: components.findGroup } : {}
    this.locator = new Locator({ index: components.store.index, view: components.view, dialer: components.dialer, connectedPeers: components.connectedPeers, logger: components.logger, summaries: this.summaries, preparedHere: (id) => components.store.prepared.forFile(id).length > 0, ...findGroup })
    this.reader = new FileReader({ ...components, locator: this.locator }, init)
    this.sync = new GroupSync(components, { intervalMs: init.intervalMs, rebuilding: init.rebuilding })
    this.repair = new Repair({ ...components, joinGroup: async (g) => this.joinGroup(g) }, init)
    this.resolver = new Resolver(components, { intervalMs: init.intervalMs, coordinatorGoneMs: init.repairAfterMs })
    this.names = new Namespace({ ...components, minCopies: init.minCopies ?? null, channels: this.channels })
    if (components.sealer != null) this.accessKeys = new AccessKeys(this.names, components.sealer)
    this.janitor = new UploadJanitor({ ...components, names: this.names }, { expiryMs: init.multipartExpiryMs ?? 7 * 24 * 3600_000 })
    this.reclaimer = new Reclaimer({ ...components, reclaims: components.store.reclaims, deleteFile: async (id, options) => this.delete(id, options) })
    const { announceBucket, withdrawBucket } = components
    if (announceBucket != null && withdrawBucket != null) this.buckets = new BucketAnnouncer({ ...components, announce: announceBucket, withdraw: withdrawBucket })
  }

  async start (): Promise<void> {
    this.stopping = false
    this.unregister = await registerHandlers(this.c.registrar, this.c.logger, this.handlers())
    const { store, status } = this.c
    store.addEventListener('file:deleted', this.onDeleted)
    store.addEventListener('file:present', this.onPresent)
    store.addEventListener('chunk:corrupt', this.onCorrupt)
    status.addEventListener('change', this.onStatus)
    await this.sync.start()
    await this.repair.start()
    await this.resolver.start()
    await this.janitor.start()
    await this.reclaimer.start()
    await this.buckets?.start()
  }

  async stop (): Promise<void> {
    const { store, status } = this.c
    store.removeEventListener('file:deleted', this.onDeleted)
    store.removeEventListener('file:present', this.onPresent)
    store.removeEventListener('chunk:corrupt', this.onCorrupt)
    status.removeEventListener('change', this.onStatus)
    this.stopping = true
    this.uploads.clear(new UnavailableError('this node is stopping: the upload was not stored; retry'))
    this.channels.close()
    await this.buckets?.stop()
    await this.reclaimer.stop()
    await this.janitor.stop()
    await this.resolver.stop()
    await this.repair.stop()
    await this.sync.stop()
    await this.unregister?.()
    this.unregister = undefined
  }

  /** Every protocol this service answers; each handler is defined beside its module. */
  private handlers (): ProtocolHandler[] {
    const { store, status, view } = this.c
    const members = this.memberComponents()
    return [
      putHandler(async (h, src, o) => this.coordinate(h, src, o)),
      replicateHandler(this.c),
      ...channelHandlers({ ...this.c, applyName: async (frame) => applyPushedFrame(members, frame) }),
      getHandler({
        chunks: {
          // A pending copy serves the chunks it still holds: two copies each missing a different chunk heal each other.
          manifestOf: async (id, options) => {
            const s = store.index.get(id)?.state
            if (s === 'present' || s === 'pending') return this.manifestOf(id)
            // Deleted in its grace: a read under way (a later segment of it) goes on; a new read is told it is gone.
            const lingering = options?.resume === true ? store.lingering.manifest(id) : undefined
            return lingering != null ? decodeManifest(lingering) : undefined
          },
          readChunk: async (digest, range) => store.readChunk(digest, range),
          has: (digest) => store.chunks.has(digest),
          hold: (digests) => store.holdChunks(digests)
        },
        status,
        logger: this.c.logger,
        onServed: (bytes) => { this.counters.servedBytes += bytes }
      }),
      locateHandler({ index: store.index, view, preparedHere: (id) => store.prepared.forFile(id).length > 0 }),
      swarmHandler(this.swarm),
      deleteHandler(members),
      applyHandler(members),
      outcomeHandler(store),
      syncHandler(this.c),
      recruitHandler(this.repair),
      summaryHandler(this.ownSummary, status),
      listHandler(store.index, status),
      namesHandler(members),
      nameApplyHandler(members),
      nameSyncHandler(this.c)
    ]
  }

  /**
   * Store a file in the cluster; resolves when the write quorum holds it.
   * `options.name`: an S3 key record written with it when it can ride in
   * the file's commit (the result then says `named`; else the caller writes it).
   */
  async upload (req: UploadRequest, source: AsyncIterable<Uint8Array | Uint8ArrayList>, options: IngestOptions = {}): Promise<UploadResult> {
    const quorum = req.quorum ?? this.init.writeQuorum
    const header: PutHeader = {
      group: this.placement.chooseGroup(this.c.view, req.group, g => copyFloor(this.c.view, g, this.init.minCopies, quorum), wantedCopies(this.init.minCopies, quorum)),
      name: validateFileName(req.name),
      quorum: req.quorum ?? this.init.writeQuorum,
      ...(req.mime != null ? { mime: req.mime } : {}),
      ...(req.size != null ? { size: req.size } : {}),
      ...(req.tag != null ? { tag: req.tag } : {})
    }
    const ordered = coordinators(this.c.view, header.group)
    return ordered[0]?.self === true
      ? this.coordinate(header, source, options)
      : putRemote(this.c.dialer, ordered.map(m => m.peerId), header, source, options)
  }

  /** Run an upload as its coordinator, at most MAX_CONCURRENT_UPLOADS at a time. */
  private async coordinate (header: PutHeader, source: AsyncIterable<Uint8Array | Uint8ArrayList>, options: IngestOptions): Promise<UploadResult> {
    return this.uploads.run(async () => ingest(this.memberComponents(), header, source, options), options).catch((err: unknown) => {
      if (this.stopping && !(err instanceof DsmError)) throw new UnavailableError('this node is stopping: the upload was not stored; retry', { cause: err })
      throw err
    })
  }

  /** Locate a file by its ID (from any node). */
  async open (id: string, options: AbortOptions = {}): Promise<Located> {
    return this.locator.locate(parseFileId(id), options)
  }

  /** Verified bytes of [offset, offset + length) of a located file (./read.ts). */
  read (located: Located, offset: number, length: number, options: ReadOptions = {}): AsyncIterable<Uint8Array> {
    return this.reader.read(located, offset, length, options)
  }

  /** A range inside one chunk of a file this node holds, in one read; undefined otherwise (./read.ts). */
  async readSmall (located: Located, offset: number, length: number): Promise<Uint8Array | undefined> {
    return this.reader.readSmall(located, offset, length)
  }

  /** Done with a piece of a `recycled` read (./read.ts). */
  recycle (bytes: Uint8Array): void {
    this.reader.recycle(bytes)
  }

  async stat (id: string, options: AbortOptions = {}): Promise<FileStat> {
    return statFile(this.c, await this.open(id, options), options)
  }

  async delete (id: string, options: AbortOptions = {}): Promise<DeleteResult> {
    const located = await this.open(id, options)
    this.locator.forget(id)
    return deleteLocated(this.memberComponents(), located, id, options)
  }

  async list (options: AbortOptions = {}): Promise<FileListing[]> {
    return listCluster(this.c, options)
  }

  /** What a member writing for its group (an upload's coordinator, a delete) works with. */
  private memberComponents (): IngestComponents {
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

  private readonly onDeleted = (evt: CustomEvent<{ id: string }>): void => {
    this.manifests.delete(evt.detail.id)
    this.locator.forget(evt.detail.id)
    this.ownSummary.deleted()
  }

  private readonly onPresent = (evt: CustomEvent<{ id: string }>): void => {
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
