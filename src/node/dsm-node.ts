/**
 * A dsm node: the one thing every host runs. It composes the libp2p stack,
 * membership, connectivity, group assignment, the DHT group directory and the
 * HTTP API, starts them in order and stops them in reverse.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import { GroupDirectory } from '../dht/group-directory.ts'
import { knownPeersFile } from '../membership/known-peers.ts'
import { GroupFinder } from '../dht/group-finder.ts'
import { ownedFile } from '../wire/names.ts'
import { REFRESH_VIEW_TIMEOUT_MS } from '../constants.ts'
import { NotStartedError, toError } from '../errors.ts'
import { clusterRoutes } from '../http/routes/cluster.ts'
import { fileRoutes } from '../http/routes/files.ts'
import { keyRoutes } from '../http/routes/keys.ts'
import { metricsRoutes } from '../http/routes/metrics.ts'
import { uiRoutes } from '../http/routes/ui.ts'
import { startHttpServer } from '../http/server.ts'
import { startS3Server } from '../s3/server.ts'
import type { S3Key } from '../s3/sigv4.ts'
import type { AccessKeys } from '../replica/access-keys.ts'
import { createLogger } from '../logger.ts'
import { ReplicaService } from '../replica/service.ts'
import { VideoService } from '../video/service.ts'
import type { VideoInit } from '../video/service.ts'
import { videoRoutes } from '../http/routes/video.ts'
import type { VideoApi } from '../http/routes/video.ts'
import type { FileUpload } from '../http/routes/files.ts'
import type { UploadResult } from '../wire/messages.ts'
import { lockDataDir } from '../store/data-lock.ts'
import { openDb } from '../store/db.ts'
import { moveDatabaseAside, readLegacyGroup } from '../store/rebuild.ts'
import { Compaction } from '../store/compaction.ts'
import { Scrub, scrubProgress } from '../store/scrub.ts'
import { LocalStore } from '../store/local-store.ts'
import { sizeOf } from '../util/size.ts'
import { raceSignal } from '../util/abort.ts'
import { VERSION } from '../version.ts'
import { createConnectivity } from '../membership/connectivity.ts'
import { joinGroup } from '../membership/group-join.ts'
import { SurplusCheck } from '../membership/surplus.ts'
import { loadOrCreateClusterKeys } from '../net/cluster-secret.ts'
import { guardedRegistrar } from '../net/guarded-registrar.ts'
import { HeartbeatSeal } from '../membership/seal.ts'
import { NodeStateFile } from '../membership/node-state.ts'
import { ProvenPeers } from '../net/peer-auth.ts'
import type { SecretStanding } from '../net/peer-auth.ts'
import type { ChunkLocation } from '../store/chunk-store.ts'
import type { ClusterKeys } from '../net/cluster-secret.ts'
import { loadOrCreateIdentity } from '../net/identity.ts'
import { parseAllowlist, loadSwarmKey } from '../net/private-network.ts'
import { loadOrCreateToken } from '../net/token.ts'
import { HttpAuth } from '../http/auth.ts'
import type { NodeToken } from '../net/token.ts'
import { fastDialer } from '../net/fast-dialer.ts'
import { addrBook } from '../net/addr-book.ts'
import { createDsmLibp2p } from '../net/libp2p.ts'
import { LocalStatus, diskCapacity } from '../membership/local-status.ts'
import { NodeMetrics } from '../http/metrics.ts'
import type { Capacity } from '../membership/local-status.ts'
import { createMembership } from '../membership/service.ts'
import { httpLimits } from './config.ts'
import type { NodeConfig } from './config.ts'
import type { Connectivity } from '../membership/connectivity.ts'
import type { Assignment } from '../membership/group-join.ts'
import type { DsmLibp2p, Libp2pInit, SimulationTuning } from '../net/libp2p.ts'
import type { Membership } from '../membership/service.ts'
import type { NodeState } from '../wire/state.ts'
import type { NodeIdentity } from '../http/routes/cluster.ts'
import type { HttpServer, RouteRegistrar } from '../http/server.ts'
import type { Logger } from '../logger.ts'
import type { Db } from '../store/db.ts'
import type { AbortOptions, ConnectionGater, PeerId } from '@libp2p/interface'
import { answerLocate } from '../dht/locate.ts'
import type { Located } from '../dht/locate.ts'
import type { PackageStatus } from '../video/package-ops.ts'

export interface DsmNodeInit {
  config: NodeConfig
  /** In-process clusters and tests only: every knob a host never needs, in one place. */
  simulation?: NodeSimulation
  /** Serve the HTTP API (default true). */
  http?: boolean
  /** Video job tunables beyond the configuration's (tests: faster passes, staleness). */
  video?: Partial<Omit<VideoInit, 'workDir'>>
  logger?: Logger
}

/** How a node runs inside a simulation (test/sim): a host runs the defaults, TCP and the production stack. */
export interface NodeSimulation {
  /** 'memory' for in-process clusters (default 'tcp'). */
  transport?: Libp2pInit['transport']
  memoryLatencyMs?: number
  /** Cuts links between simulated hosts (partitions). */
  connectionGater?: ConnectionGater
  dhtInitialQuerySelfIntervalMs?: number
  /** libp2p overrides for large runs (plaintext, no connection monitor, thinner gossip): see SimulationTuning. */
  libp2p?: SimulationTuning
}

export interface DsmNodeEvents {
  state: CustomEvent<{ state: NodeState, group: string | null }>
  /** Every peer this node reached failed the cluster-secret handshake, none proved it: it shares no cluster with them. */
  'secret-refused': CustomEvent<SecretStanding>
}

interface Running {
  db: Db
  state: NodeStateFile
  compaction: Compaction
  scrub: Scrub
  store: LocalStore
  replica: ReplicaService
  video: VideoService
  libp2p: DsmLibp2p
  membership: Membership
  connectivity: Connectivity
  directory: GroupDirectory
  finder: GroupFinder
  http?: HttpServer
  s3?: HttpServer
  background: AbortController
  announcedGroup?: string
  /** What start set up, undone last-first: one order for a failed start and for stop (HTTP closes before it). */
  undo: Array<() => Promise<void>>
  /** Whether stopping tells the group we leave (a clean stop) or not (a failed start, a simulated crash). */
  exit: { leave: boolean }
}

/** An S3 access key: the configuration's (all buckets, read and write), else one made with `dsm key create`. */
function s3Credentials (config: NodeConfig, keys: AccessKeys | undefined): (accessKeyId: string) => Promise<S3Key | undefined> {
  const { s3AccessKeyId: id, s3SecretAccessKey: secret } = config
  return async (accessKeyId) => id != null && secret != null && accessKeyId === id
    ? { accessKeyId: id, secretAccessKey: secret, buckets: [], read: true, write: true }
    : keys?.resolve(accessKeyId)
}

/** Close HTTP first (no new requests), then undo the rest last-first; every step runs, the first failure is thrown. */
async function shutDown (http: HttpServer | undefined, undo: Array<() => Promise<void>>): Promise<void> {
  const failures: unknown[] = []
  await http?.close().catch(err => { failures.push(err) })
  for (const step of undo) await step().catch(err => { failures.push(err) })
  if (failures.length > 0) throw failures[0]
}

export class DsmNode extends TypedEventEmitter<DsmNodeEvents> {
  readonly config: NodeConfig
  readonly status = new LocalStatus()
  /** Read at scrape time from the running node's parts; none while it is stopped or starting. */
  readonly metrics = new NodeMetrics(() => this.running != null ? { ...this.running, status: this.status } : undefined)
  private readonly init: DsmNodeInit
  private readonly log: Logger
  private running?: Running
  private assigned = Promise.withResolvers<Assignment>()

  constructor (init: DsmNodeInit) {
    super()
    this.init = init
    this.config = init.config
    this.log = init.logger ?? createLogger(init.config.logLevel)
    this.status.addEventListener('change', (evt) => { this.safeDispatchEvent('state', { detail: evt.detail }) })
  }

  private get r (): Running {
    if (this.running == null) throw new NotStartedError('the node is not started')
    return this.running
  }

  get libp2p (): DsmLibp2p { return this.r.libp2p }
  get membership (): Membership { return this.r.membership }
  get directory (): GroupDirectory { return this.r.directory }
  get finder (): GroupFinder { return this.r.finder }
  get db (): Db { return this.r.db }
  get store (): LocalStore { return this.r.store }
  get compaction (): Compaction { return this.r.compaction }
  get scrub (): Scrub { return this.r.scrub }
  get replica (): ReplicaService { return this.r.replica }
  get video (): VideoService { return this.r.video }
  get http (): HttpServer | undefined { return this.running?.http }
  /** The S3 listener, when `--s3` turned it on. */
  get s3 (): HttpServer | undefined { return this.running?.s3 }
  get peerId (): string { return this.r.libp2p.peerId.toString() }
  isStarted (): boolean { return this.running != null }
  /** The cluster token HTTP writes need (undefined on an --open node), and where it came from. */
  token?: NodeToken
  /** The keys of the cluster secret, and where the secret came from. */
  keys?: ClusterKeys

  async start (): Promise<void> {
    if (this.running != null) return
    const { config } = this
    const cleanup: Array<() => Promise<void>> = []
    let http: HttpServer | undefined
    const exit = { leave: false }
    try {
      // Security config first: a bad key file or token changes nothing.
      const networkKey = config.networkKey != null ? await loadSwarmKey(config.networkKey) : undefined
      const allowPeers = parseAllowlist(config.allowPeers)
      this.token = config.open ? undefined : await loadOrCreateToken(config.dataDir, config.token)
      const keys = await loadOrCreateClusterKeys(config.dataDir, { ...config, mayCreate: config.bootstrap.length === 0 || config.newCluster })
      this.keys = keys
      const auth = new HttpAuth({ token: this.token?.token ?? null, signedUrls: config.signedUrls })
      // Then HTTP: a taken port fails the start before anything else happened.
      http = this.init.http === false ? undefined : await startHttpServer(config.http, this.routes(auth), httpLimits(config))
      await mkdir(config.dataDir, { recursive: true })
      const unlock = await lockDataDir(config.dataDir)
      cleanup.unshift(unlock)
      const aside = config.rebuild ? await moveDatabaseAside(config.dataDir) : undefined
      if (config.rebuild) this.log.warn({ movedTo: aside ?? null }, 'rebuilding the index from the group (--rebuild): the old database was moved aside')
      const db = openDb(config.dataDir)
      cleanup.unshift(async () => { await db.close() })
      // Where an older version kept the group: the database's meta table (read once, then node.json).
      const state = await NodeStateFile.open(config.dataDir, () => aside != null ? readLegacyGroup(aside) : { group: db.getMeta('group'), spare: db.getMeta('spare') === '1' })
      const capacity = async (): Promise<Capacity> => diskCapacity(config.dataDir)
      const store = new LocalStore({ db, dataDir: config.dataDir, reserve: config.reserve, capacity, volumes: { maxBytes: config.volumeSize }, deletedReadGraceMs: config.deletedReadGraceMs, reclaimDelayMs: config.reclaimDelayMs, ownedFile })
      const report = await store.start({ rebuilding: config.rebuild })
      cleanup.unshift(async () => { await store.stop() })
      // Background care of the disk: reclaim deleted space, re-hash what is stored.
      const corrupt = (digest: Uint8Array, at: ChunkLocation): void => { store.chunkCorrupt(digest, at) }
      const compaction = new Compaction({ chunks: store.chunks, db, logger: this.log, corrupt }, { intervalMs: config.compactIntervalMs, bytesPerS: config.compactRate })
      const scrub = new Scrub({ chunks: store.chunks, logger: this.log, corrupt, progress: scrubProgress(db) }, { bytesPerS: config.scrubRate })
      await compaction.start()
      await scrub.start()
      cleanup.unshift(async () => { await scrub.stop(); await compaction.stop() })
      const privateKey = await loadOrCreateIdentity(config.dataDir)
      const proven = new ProvenPeers()
      const libp2p = await createDsmLibp2p({
        privateKey,
        keys,
        proven,
        logger: this.log,
        listen: config.listen,
        transport: this.init.simulation?.transport ?? 'tcp',
        memoryLatencyMs: this.init.simulation?.memoryLatencyMs,
        connectionGater: this.init.simulation?.connectionGater,
        ...(networkKey != null ? { networkKey } : {}),
        allowPeers,
        dhtInitialQuerySelfIntervalMs: this.init.simulation?.dhtInitialQuerySelfIntervalMs,
        simulation: this.init.simulation?.libp2p
      })
      cleanup.unshift(async () => { await libp2p.stop() })
      const log = this.log.child({ peer: libp2p.peerId.toString().slice(-8) })
      const peerAuth = libp2p.services.auth
      const dialer = fastDialer(libp2p, peerAuth)
      const registrar = guardedRegistrar(libp2p, peerAuth, { publicNeedsProof: config.signedUrls })
      const isProven = (peer: PeerId | string): boolean => peerAuth.isProven(peer)
      peerAuth.onRefused = (standing) => { if (standing.provenPeers === 0) this.safeDispatchEvent('secret-refused', { detail: standing }) }
      if (report.orphanChunksRemoved > 0 || report.filesMissingChunks.length > 0 || report.chunksIndexed > 0) log.warn({ ...report }, 'start-up check repaired the store')
      const membership = createMembership({
        heartbeatIntervalMs: config.heartbeatIntervalMs,
        offlineAfterMs: config.offlineAfterMs,
        version: VERSION,
        incarnation: state.incarnation
      })({
        peerId: libp2p.peerId,
        pubsub: libp2p.services.pubsub,
        registrar,
        dialer,
        seal: new HeartbeatSeal(keys, privateKey),
        isProven,
        connectedPeers: () => [...new Map(libp2p.getConnections().map(c => [c.remotePeer.toString(), c.remotePeer])).values()],
        status: this.status,
        addresses: () => libp2p.getMultiaddrs(),
        capacity: async () => {
          const disk = await capacity()
          return { ...disk, reserve: sizeOf(config.reserve, disk.total) }
        },
        rememberAddrs: addrBook(libp2p.peerStore),
        knownPeers: knownPeersFile(config.dataDir),
        logger: log
      })
      await membership.start()
      cleanup.unshift(async () => { await membership.stop({ leave: exit.leave }) })
      const connectivity = createConnectivity({ bootstrap: config.bootstrap, intervalMs: config.syncIntervalMs })({
        dial: async (target, options) => libp2p.dial(target, options),
        getConnections: () => libp2p.getConnections(),
        view: membership.view,
        status: this.status,
        fetchView: async (peer, options) => membership.fetchView(peer, options),
        logger: log
      })
      await connectivity.start()
      cleanup.unshift(async () => { await connectivity.stop() })
      const directory = new GroupDirectory({ dht: libp2p.services.dht })
      const finder = new GroupFinder({
        selfId: libp2p.peerId.toString(),
        directory,
        view: membership.view,
        connect: async (peer, options) => {
          await libp2p.peerStore.merge(peer.id, { multiaddrs: peer.multiaddrs })
          await libp2p.dial(peer.id, { signal: options.signal ?? AbortSignal.timeout(REFRESH_VIEW_TIMEOUT_MS) })
        },
        refresh: async (group, peers, options) => {
          await membership.refresh({ prefer: peers, ...(group != null ? { group } : {}), signal: options.signal ?? AbortSignal.timeout(REFRESH_VIEW_TIMEOUT_MS) })
        },
        logger: log
      })
      const replica = new ReplicaService({
        selfId: libp2p.peerId.toString(),
        store,
        status: this.status,
        view: membership.view,
        dialer,
        registrar,
        persistGroup: async (group) => { await state.setGroup(group) },
        hasSynced: () => state.synced,
        waitForContact: async (options) => connectivity.waitForFirstContact(options),
        rttOf: (peer) => libp2p.getConnections(peerIdFromString(peer)).find(c => c.rtt != null)?.rtt,
        connectedPeers: () => new Set(libp2p.getConnections().map(c => c.remotePeer.toString())),
        findGroup: async (group, options) => finder.find(group, options),
        findBucket: async (bucket, options) => finder.findBucket(bucket, options),
        announceBucket: async (bucket, options) => directory.announceBucket(bucket, options),
        withdrawBucket: async (bucket, options) => directory.withdrawBucket(bucket, options),
        sealer: keys,
        logger: log
      }, {
        groupSize: config.groupSize,
        writeQuorum: config.writeQuorum,
        minCopies: config.minCopies,
        placement: config.placement,
        repairAfterMs: config.repairAfterMs,
        intervalMs: config.syncIntervalMs,
        stallTimeoutMs: config.stallTimeoutMs,
        cacheBytes: config.cacheSize,
        readSources: config.readSources,
        chunkSize: config.chunkSize,
        rebuilding: config.rebuild,
        multipartExpiryMs: config.s3MultipartExpiryMs
      })
      await replica.start()
      cleanup.unshift(async () => { await replica.stop() })
      const video = new VideoService({
        selfId: libp2p.peerId.toString(),
        status: this.status,
        view: membership.view,
        tables: replica.names,
        local: store.names,
        files: {
          upload: async (req, source, options) => replica.upload(req, source, options),
          open: async (id, options) => replica.open(id, options),
          read: (located, offset, length, options) => replica.read(located, offset, length, options),
          delete: async (id, options) => replica.delete(id, options)
        },
        isDeleted: (id) => answerLocate(store.index, id).state === 'deleted',
        logger: log.child({ service: 'video' })
      }, {
        workDir: join(config.dataDir, 'video'),
        transcodeJobs: config.transcodeJobs,
        ...(config.maxRenditions != null ? { maxVideoRenditions: config.maxRenditions } : {}),
        ...this.init.video
      })
      await video.start()
      cleanup.unshift(async () => { await video.stop() })
      // S3 last: it needs the namespace and the file operations (../s3/server.ts).
      const s3 = config.s3 == null
        ? undefined
        : await startS3Server({
          names: replica.names,
          upload: async (req, source, options) => replica.upload(req, this.metrics.countReceived(source), options),
          open: async (id, options) => replica.open(id, options),
          read: (located, offset, length, options) => this.metrics.countSent(replica.read(located, offset, length, options))
        }, { at: config.s3, limits: httpLimits(config), domains: config.s3Domains, credentials: s3Credentials(config, replica.accessKeys), logger: log })
      if (s3 != null) cleanup.unshift(async () => { await s3.close() })
      this.running = { db, state, store, compaction, scrub, libp2p, membership, connectivity, directory, finder, replica, video, background: new AbortController(), undo: cleanup, exit, ...(http != null ? { http } : {}), ...(s3 != null ? { s3 } : {}) }
      const running = this.running
      this.assigned = Promise.withResolvers<Assignment>()
      // Runs for as long as joining takes; it reports its own failure through `assigned` (ready() rejects).
      void this.assignGroup(running, log)
    } catch (err) {
      // Undo what started; the original error is the one worth reporting.
      await shutDown(http, cleanup).catch(() => {})
      throw err
    }
  }

  /** HTTP routes read the running node lazily: while it starts they answer 503. */
  private routes (auth: HttpAuth): RouteRegistrar[] {
    const cluster = clusterRoutes({
      identity: () => this.identity(),
      members: () => this.r.membership.view.members(),
      groups: () => this.r.membership.view.groups(),
      isConnected: (peer) => this.r.libp2p.getConnections(peerIdFromString(peer)).length > 0,
      groupSize: () => this.config.groupSize
    })
    const files = {
      upload: async (req: FileUpload, source: AsyncIterable<Uint8Array>, options: AbortOptions) => this.uploadFile(req, source, options),
      open: async (id: string, options: AbortOptions) => this.r.replica.open(id, options),
      read: (located: Located, offset: number, length: number, options: AbortOptions & { recycled?: boolean }) => this.metrics.countSent(this.r.replica.read(located, offset, length, options)),
      recycle: (bytes: Uint8Array) => { this.r.replica.recycle(bytes) },
      readSmall: async (located: Located, offset: number, length: number) => this.metrics.countSentBytes(await this.r.replica.readSmall(located, offset, length)),
      stat: async (id: string, options: AbortOptions) => {
        const stat = await this.r.replica.stat(id, options)
        // The package's status is part of the file's: without it (its group cannot answer now) the rest still is.
        const hls = await this.r.video.status(stat.id, stat.group, options).catch(() => undefined)
        return { ...stat, ...(hls != null ? { hls } : {}) }
      },
      // Its video package follows: the group's members remove it once they hold the source as deleted.
      delete: async (id: string, options: AbortOptions) => this.r.replica.delete(id, options),
      list: async (options: AbortOptions) => this.r.replica.list(options)
    }
    return [cluster, fileRoutes(files, auth, this.config.httpBodyIdleTimeoutMs), videoRoutes(() => this.videoApi(), files, auth), keyRoutes(() => {
      const keys = this.r.replica.accessKeys
      if (keys == null) throw new NotStartedError('access keys need the cluster secret')
      return keys
    }, auth), uiRoutes(), metricsRoutes(this.metrics)]
  }

  /** An upload, and the HLS ladder it asks for (?hls=1, or --auto-hls and a video). */
  private async uploadFile (req: FileUpload, source: AsyncIterable<Uint8Array>, options: AbortOptions): Promise<UploadResult & { hls?: PackageStatus, hlsError?: string }> {
    const { hls, ...upload } = req
    const result = await this.r.replica.upload(upload, this.metrics.countReceived(source), options)
    if (hls !== true && !(this.config.autoHls && result.mime.startsWith('video/'))) return result
    try {
      return { ...result, hls: await this.r.video.request(result.id, result.group, options) }
    } catch (err) {
      // The file is stored and acknowledged; only the ladder could not be asked for (POST /api/files/:id/hls again).
      return { ...result, hlsError: toError(err).message }
    }
  }

  /** The package operations, each finding the source's group first. */
  private videoApi (): VideoApi {
    const video = this.r.video
    const groupOf = async (id: string, options: AbortOptions): Promise<string> => (await this.r.replica.open(id, options)).group
    return {
      request: async (id, options) => video.request(id, await groupOf(id, options), options),
      status: async (id, options) => video.status(id, await groupOf(id, options), options),
      cancel: async (id, options) => video.cancel(id, await groupOf(id, options), options),
      list: async (options) => video.list(this.r.membership.view.groups().map(g => g.name), options),
      master: async (id, options) => video.server.master(id, options),
      mediaPlaylist: async (id, rendition, options) => video.server.mediaPlaylist(id, rendition, options),
      segment: async (id, rendition, file, options) => video.server.segment(id, rendition, file, options),
      preview: async (id, part, options) => video.server.preview(id, part, options)
    }
  }

  /** Resolves when the node holds its place: ACTIVE in a group, or a spare. */
  async ready (options: { signal?: AbortSignal } = {}): Promise<Assignment> {
    const assignment = await raceSignal(this.assigned.promise, options.signal)
    if (this.status.state !== 'ACTIVE') {
      await new Promise<void>((resolve, reject) => {
        const onState = (): void => { if (this.status.state === 'ACTIVE') { this.removeEventListener('state', onState); resolve() } }
        this.addEventListener('state', onState)
        options.signal?.addEventListener('abort', () => { this.removeEventListener('state', onState); reject(toError(options.signal?.reason)) }, { once: true })
        onState()
      })
    }
    return assignment
  }

  identity (): NodeIdentity {
    const libp2p = this.r.libp2p
    return {
      peerId: libp2p.peerId.toString(),
      addrs: libp2p.getMultiaddrs().map(a => a.toString()),
      group: this.status.group,
      state: this.status.state,
      spare: this.status.spare,
      version: VERSION,
      secret: libp2p.services.auth.standing()
    }
  }

  /**
   * Stop the node. A clean stop (default) announces leave so peers mark it
   * OFFLINE at once; `{ leave: false }` simulates a crash for tests.
   */
  async stop (options: { leave?: boolean } = {}): Promise<void> {
    const running = this.running
    if (running == null) return
    this.running = undefined
    running.background.abort()
    running.exit.leave = options.leave ?? true
    try {
      await shutDown(running.http, running.undo)
    } finally {
      this.assigned.reject(new NotStartedError('the node stopped'))
      this.assigned.promise.catch(() => {})
    }
  }

  /** Provide our group's key in the DHT (again after a recruit moved us). */
  private announceGroup (running: Running, log: Logger): void {
    const group = this.status.group
    if (group == null || group === running.announcedGroup) return
    const previous = running.announcedGroup
    running.announcedGroup = group
    const { signal } = running.background
    if (previous != null) running.directory.withdraw(previous).catch(err => { log.debug({ err: toError(err).message }, 'could not withdraw the old group key') })
    running.directory.announce(group, { signal }).catch(err => {
      if (!signal.aborted) log.warn({ err: toError(err).message, group }, 'could not provide the group key in the DHT')
    })
  }

  private async assignGroup (running: Running, log: Logger): Promise<void> {
    const { signal } = running.background
    const components = {
      selfId: running.libp2p.peerId.toString(),
      state: running.state,
      view: running.membership.view,
      status: this.status,
      waitForContact: async (options: AbortOptions) => running.connectivity.waitForFirstContact(options),
      refreshView: async (group: string, options: AbortOptions) => {
        // Checking our seat in a group the view shows nobody of: its members from the DHT first.
        await running.finder.find(group, options)
        const prefer = running.membership.view.groupMembers(group).map(m => m.peerId)
        await running.membership.refresh({ prefer, group, signal: AbortSignal.any([AbortSignal.timeout(REFRESH_VIEW_TIMEOUT_MS), ...(options.signal != null ? [options.signal] : [])]) })
      },
      logger: log
    }
    try {
      const assignment = await joinGroup(components, this.config, { signal })
      // A member catches up with its group first (sync turns it ACTIVE); a spare has nothing to catch up.
      this.status.setState(assignment.group != null ? 'SYNCING' : 'ACTIVE')
      this.assigned.resolve(assignment)
      running.replica.sync.kick()
      this.announceGroup(running, log)
      this.status.addEventListener('change', () => {
        this.announceGroup(running, log)
        if (this.status.state === 'ACTIVE' && this.status.group != null && this.status.group === running.state.group && !running.state.synced) {
          running.state.setSynced().catch(err => { log.warn({ err: toError(err).message }, 'could not record that this node caught up with its group') })
        }
      }, { signal })
      const surplus = new SurplusCheck({
        ...components,
        busy: () => running.store.prepared.size > 0 || this.status.load > 0,
        filesHeld: () => running.store.index.stats().present.files,
        moved: () => {
          this.status.setState('SYNCING')
          running.replica.sync.kick()
        }
      }, { ...this.config, intervalMs: this.config.syncIntervalMs })
      if (signal.aborted) return
      running.undo.unshift(async () => { await surplus.stop() })
      await surplus.start()
    } catch (err) {
      if (!signal.aborted) {
        log.error({ err: toError(err).message }, 'group assignment failed')
        this.assigned.reject(toError(err))
      }
    }
  }
}
