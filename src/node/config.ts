/**
 * Node configuration from four layers, later ones winning:
 * built-in defaults < `<data dir>/dsm.json` < `DSM_*` env vars < command-line flags.
 * Every layer is validated; a bad value names its source and changes nothing.
 */
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { DEFAULT_CHUNK_SIZE_BYTES, DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT, HEARTBEAT_INTERVAL_MS, JOIN_SETTLE_MS, MAX_CHUNK_SIZE_BYTES, MAX_PARALLEL_SOURCES, MIN_TOKEN_CHARS, STALL_TIMEOUT_MS } from '../constants.ts'
import { InvalidConfigError } from '../errors.ts'
import { DEFAULT_HTTP_LIMITS } from '../http/limits.ts'
import { VOLUME_MAX_BYTES } from '../store/volumes.ts'
import { DELETED_READ_GRACE_MS } from '../store/lingering.ts'
import { RECLAIM_DELAY_MS } from '../store/reclaim-queue.ts'
import { COMPACT_BYTES_PER_S, COMPACT_INTERVAL_MS } from '../store/compaction.ts'
import { SCRUB_BYTES_PER_S } from '../store/scrub.ts'
import type { HttpAddress } from '../http/server.ts'
import type { HttpLimits } from '../http/limits.ts'
import { PLACEMENTS } from '../replica/placement.ts'
import { parseDuration } from '../util/duration.ts'
import { parseSize } from '../util/size.ts'
import { formatZodError } from '../util/zod.ts'
import { QuorumSchema, groupName } from '../wire/messages.ts'
import type { Placement } from '../replica/placement.ts'
import type { SizeSpec } from '../util/size.ts'
import type { Quorum } from '../wire/messages.ts'

/**
 * How often a member pulls its group mates' logs and re-dials mates it lost.
 * Apart from the heartbeat on purpose: that one is cluster-wide (every node
 * hears every heartbeat, so a large cluster may slow it down), this is
 * group-local and stays fast at any size.
 */
export const SYNC_INTERVAL_MS = 2_000
/** A member that sent no heartbeat for this long is marked OFFLINE. */
export const OFFLINE_AFTER_MS = 6_000
/** Target number of content-equal members per replica group. */
export const DEFAULT_GROUP_SIZE = 3
export const DEFAULT_TCP_PORT = 4100
/** Default free space every node keeps on its data disk, in percent of the disk. */
export const DEFAULT_RESERVE_PERCENT = 10
/** A member OFFLINE this long is replaced by a recruit (the --repair-after default). */
export const REPAIR_AFTER_MS = 60_000
/** Default size of the chunk cache of a node that streams files it does not hold (--cache-size). */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024

/** Multipart uploads left unfinished this long are dropped (S3 leaves it to lifecycle rules; a week is the usual one). */
export const S3_MULTIPART_EXPIRY_MS = 7 * 24 * 3600_000
/** The S3 listener's default port (S3 tools' usual local endpoint). */
export const DEFAULT_S3_PORT = 9000

export const CONFIG_FILE_NAME = 'dsm.json'
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export interface NodeConfig {
  dataDir: string
  listen: string[]
  bootstrap: string[]
  http: HttpAddress
  /** Fixed group; null means auto-join (or stay a spare with `spare`). */
  group: string | null
  groupSize: number
  spare: boolean
  heartbeatIntervalMs: number
  /** How often a member pulls its group mates' logs and re-dials missing mates (group-local work, O(group) per node). */
  syncIntervalMs: number
  offlineAfterMs: number
  joinSettleMs: number
  logLevel: typeof LOG_LEVELS[number]
  /** Free space to keep on the data disk: bytes or a percentage of the disk. */
  reserve: SizeSpec
  /** Copies an upload needs before it is acknowledged. */
  writeQuorum: Quorum
  /** Fewest copies any upload is acknowledged with (null: 2, or a smaller numeric write quorum). */
  minCopies: number | null
  placement: Placement
  /** How long a member may stay OFFLINE before its group recruits a replacement. */
  repairAfterMs: number
  /** A replica sending nothing for this long is abandoned mid-read. */
  stallTimeoutMs: number
  /** Chunk size of new uploads (files keep theirs). */
  chunkSize: number
  /** Bytes of chunks kept for files this node streams but does not hold. */
  cacheSize: number
  /** Size at which a volume file is sealed and the next one started (store/volumes.ts). */
  volumeSize: number
  /** How long the chunks of a deleted file stay readable by the reads under way when it was deleted. */
  deletedReadGraceMs: number
  /** How long the file of a replaced or deleted S3 object waits before it is deleted. */
  reclaimDelayMs: number
  /** How often sealed volumes are weighed for compaction (store/compaction.ts). */
  compactIntervalMs: number
  /** Bytes per second a compaction copies at most (it leaves the disk to clients). */
  compactRate: number
  /** Bytes per second the scrub re-hashes at most (store/scrub.ts). */
  scrubRate: number
  /** Replicas one read of a remote file fetches from in parallel. */
  readSources: number
  /** Video jobs (renditions, previews) this node runs at once; 0: it makes none. */
  transcodeJobs: number
  /** Every video uploaded through this node gets an HLS ladder, as if asked with ?hls=1. */
  autoHls: boolean
  /** Video renditions per ladder at most, the highest kept (null: every standard height up to the source's). */
  maxRenditions: number | null
  /** Cluster token for HTTP writes; null: read or make `<data>/token` (unless `open`). */
  token: string | null
  /** No token needed for writes (trusted networks, demos). */
  open: boolean
  /** Downloads need a signed URL (or the token). */
  signedUrls: boolean
  /** The cluster secret every node holds (null: `secretFile`, else read or make `<data>/secret`). */
  secret: string | null
  /** A file holding the cluster secret. */
  secretFile: string | null
  /** Make a cluster secret even though `bootstrap` names peers (a new cluster that starts from known addresses). */
  newCluster: boolean
  /** Older secrets still accepted while a cluster rotates its secret. */
  previousSecrets: string[]
  /** Path of a pnet swarm key file: a private cluster. */
  networkKey: string | null
  /** Peer ids allowed to connect (empty: anyone, subject to the network key). */
  allowPeers: string[]
  /** Rebuild the index from the group at this start (`dsm node --rebuild`; never kept in dsm.json). */
  rebuild: boolean
  /** Where the S3 listener listens (null: no S3 listener). */
  s3: HttpAddress | null
  /** Host names under which `bucket.<name>` is virtual-host-style S3 addressing (besides localhost). */
  s3Domains: string[]
  /** The S3 access key (interim, until replicated keys: `dsm key`); null: S3 refuses every signed request. */
  s3AccessKeyId: string | null
  s3SecretAccessKey: string | null
  /** A multipart upload not completed or aborted this long after it began is dropped with its parts. */
  s3MultipartExpiryMs: number
  /** HTTP deadlines and connection caps (see src/http/limits.ts). */
  httpHeadersTimeoutMs: number
  httpBodyIdleTimeoutMs: number
  httpKeepAliveTimeoutMs: number
  httpSocketIdleTimeoutMs: number
  httpMaxConnections: number
  httpMaxConnectionsPerClient: number
}

const multiaddrString = z.string().refine(s => {
  try { multiaddr(s); return true } catch { return false }
}, 'not a valid multiaddr')

const httpAddress = z.string().transform((s, ctx): HttpAddress => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s)
  const port = Number(m?.[3])
  if (m == null || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT (e.g. 127.0.0.1:8080), got "${s}"` })
    return z.NEVER
  }
  return { host: m[1] ?? m[2] ?? DEFAULT_HTTP_HOST, port }
})

const positiveInt = z.number().int().positive()
/** Node timers cannot wait longer than 2^31-1 ms (a longer delay fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1

const reserveSpec = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx): SizeSpec => {
  const spec = typeof v === 'number' ? { bytes: v } : parseSize(v, { allowPercent: true })
  if (spec == null) {
    ctx.addIssue({ code: 'custom', message: `expected bytes ("5GiB", "500MB", 1000000) or a percentage ("10%"), got "${String(v)}"` })
    return z.NEVER
  }
  return spec
})

const duration = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx): number => {
  const ms = typeof v === 'number' ? v : parseDuration(v)
  if (ms == null || ms > MAX_TIMER_MS) {
    ctx.addIssue({ code: 'custom', message: `expected a duration ("60s", "500ms", "2m" or milliseconds), got "${String(v)}"` })
    return z.NEVER
  }
  return ms
})

const byteCount = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx): number => {
  const spec = typeof v === 'number' ? { bytes: v } : parseSize(v)
  if (spec == null || !('bytes' in spec)) {
    ctx.addIssue({ code: 'custom', message: `expected bytes ("256MiB", "1GB", 1000000), got "${String(v)}"` })
    return z.NEVER
  }
  return spec.bytes
})

const quorumSpec = z.union([QuorumSchema, z.string().regex(/^[1-9]\d?$/).transform(Number).pipe(z.number().int().max(64))])

/** One layer: every key optional, unknown keys refused (they are usually typos). */
const LayerSchema = z.object({
  dataDir: z.string().min(1),
  listen: z.array(multiaddrString),
  bootstrap: z.array(multiaddrString),
  http: httpAddress,
  s3: z.union([z.literal('off').transform(() => null), z.null(), httpAddress]),
  s3Domains: z.array(z.string().min(1).max(253).regex(/^[a-z0-9.-]+$/, 'a host name')),
  s3AccessKeyId: z.string().min(3).max(128).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" or "-"').nullable(),
  s3SecretAccessKey: z.string().min(16).max(256).nullable(),
  s3MultipartExpiryMs: duration,
  group: groupName.nullable(),
  groupSize: positiveInt.max(64),
  spare: z.boolean(),
  heartbeatIntervalMs: positiveInt.min(10).max(MAX_TIMER_MS),
  syncIntervalMs: positiveInt.min(10).max(MAX_TIMER_MS),
  offlineAfterMs: positiveInt.min(20).max(MAX_TIMER_MS),
  joinSettleMs: z.number().int().nonnegative().max(MAX_TIMER_MS),
  logLevel: z.enum(LOG_LEVELS),
  reserve: reserveSpec,
  writeQuorum: quorumSpec,
  minCopies: z.union([positiveInt.max(64), z.string().regex(/^[1-9]\d?$/).transform(Number).pipe(positiveInt.max(64))]).nullable(),
  placement: z.enum(PLACEMENTS),
  repairAfterMs: duration,
  stallTimeoutMs: positiveInt.min(50).max(MAX_TIMER_MS),
  chunkSize: positiveInt.min(1024).max(MAX_CHUNK_SIZE_BYTES),
  cacheSize: byteCount,
  deletedReadGraceMs: duration,
  reclaimDelayMs: duration,
  volumeSize: byteCount.pipe(z.number().int().min(1024 * 1024, 'a volume is at least 1 MiB').max(2 ** 40)),
  compactIntervalMs: duration.pipe(positiveInt.min(100)),
  compactRate: byteCount.pipe(positiveInt.min(64 * 1024, 'a rate of at least 64KiB (per second)')),
  scrubRate: byteCount.pipe(positiveInt.min(64 * 1024, 'a rate of at least 64KiB (per second)')),
  readSources: positiveInt.max(MAX_PARALLEL_SOURCES),
  transcodeJobs: z.number().int().nonnegative().max(64),
  autoHls: z.boolean(),
  maxRenditions: positiveInt.max(5).nullable(),
  token: z.string().min(MIN_TOKEN_CHARS, `a token needs at least ${MIN_TOKEN_CHARS} characters`).max(256).regex(/^[\x21-\x7e]+$/, 'a token is printable ASCII without spaces').nullable(),
  open: z.boolean(),
  signedUrls: z.boolean(),
  secret: z.string().min(1).max(512).nullable(),
  secretFile: z.string().min(1).nullable(),
  newCluster: z.boolean(),
  previousSecrets: z.array(z.string().min(1).max(512)).max(3),
  networkKey: z.string().min(1).nullable(),
  allowPeers: z.array(z.string().min(1).max(128)),
  rebuild: z.boolean(),
  httpHeadersTimeoutMs: duration.pipe(positiveInt),
  httpBodyIdleTimeoutMs: duration.pipe(positiveInt),
  httpKeepAliveTimeoutMs: duration.pipe(positiveInt),
  httpSocketIdleTimeoutMs: duration.pipe(positiveInt),
  httpMaxConnections: positiveInt.max(1_000_000),
  httpMaxConnectionsPerClient: positiveInt.max(1_000_000)
}).partial().strict()
export type ConfigLayer = z.input<typeof LayerSchema>

function parseLayer (source: string, raw: unknown): z.output<typeof LayerSchema> {
  const parsed = LayerSchema.safeParse(raw)
  if (!parsed.success) {
    throw new InvalidConfigError(`${source}: ${formatZodError(parsed.error)}`)
  }
  return parsed.data
}

/** `DSM_GROUP_SIZE=3` → `{ groupSize: 3 }`; lists are comma or space separated. */
export function layerFromEnv (env: NodeJS.ProcessEnv): ConfigLayer {
  const list = (v: string): string[] => v.split(/[\s,]+/).filter(s => s !== '')
  const num = (v: string): number | string => /^\d+$/.test(v) ? Number(v) : v
  const bool = (v: string): boolean | string => ({ 1: true, true: true, 0: false, false: false } as Record<string, boolean>)[v] ?? v
  const map: Record<string, [keyof ConfigLayer, (v: string) => unknown]> = {
    DSM_DATA: ['dataDir', String],
    DSM_LISTEN: ['listen', list],
    DSM_BOOTSTRAP: ['bootstrap', list],
    DSM_HTTP: ['http', String],
    DSM_S3: ['s3', String],
    DSM_S3_DOMAINS: ['s3Domains', list],
    DSM_S3_ACCESS_KEY_ID: ['s3AccessKeyId', String],
    DSM_S3_SECRET_ACCESS_KEY: ['s3SecretAccessKey', String],
    DSM_S3_MULTIPART_EXPIRY: ['s3MultipartExpiryMs', String],
    DSM_GROUP: ['group', String],
    DSM_GROUP_SIZE: ['groupSize', num],
    DSM_SPARE: ['spare', bool],
    DSM_HEARTBEAT_INTERVAL_MS: ['heartbeatIntervalMs', num],
    DSM_SYNC_INTERVAL_MS: ['syncIntervalMs', num],
    DSM_OFFLINE_AFTER_MS: ['offlineAfterMs', num],
    DSM_LOG_LEVEL: ['logLevel', String],
    DSM_RESERVE: ['reserve', String],
    DSM_WRITE_QUORUM: ['writeQuorum', String],
    DSM_MIN_COPIES: ['minCopies', num],
    DSM_PLACEMENT: ['placement', String],
    DSM_REPAIR_AFTER: ['repairAfterMs', String],
    DSM_STALL_TIMEOUT_MS: ['stallTimeoutMs', num],
    DSM_CHUNK_SIZE: ['chunkSize', num],
    DSM_CACHE_SIZE: ['cacheSize', String],
    DSM_VOLUME_SIZE: ['volumeSize', String],
    DSM_DELETED_READ_GRACE: ['deletedReadGraceMs', String],
    DSM_RECLAIM_DELAY: ['reclaimDelayMs', String],
    DSM_COMPACT_INTERVAL: ['compactIntervalMs', String],
    DSM_COMPACT_RATE: ['compactRate', String],
    DSM_SCRUB_RATE: ['scrubRate', String],
    DSM_READ_SOURCES: ['readSources', num],
    DSM_TRANSCODE_JOBS: ['transcodeJobs', num],
    DSM_AUTO_HLS: ['autoHls', bool],
    DSM_MAX_RENDITIONS: ['maxRenditions', num],
    DSM_TOKEN: ['token', String],
    DSM_OPEN: ['open', bool],
    DSM_SIGNED_URLS: ['signedUrls', bool],
    DSM_SECRET: ['secret', String],
    DSM_SECRET_FILE: ['secretFile', String],
    DSM_NEW_CLUSTER: ['newCluster', bool],
    DSM_PREVIOUS_SECRETS: ['previousSecrets', list],
    DSM_NETWORK_KEY: ['networkKey', String],
    DSM_ALLOW_PEERS: ['allowPeers', list],
    DSM_HTTP_HEADERS_TIMEOUT: ['httpHeadersTimeoutMs', String],
    DSM_HTTP_BODY_IDLE_TIMEOUT: ['httpBodyIdleTimeoutMs', String],
    DSM_HTTP_KEEP_ALIVE_TIMEOUT: ['httpKeepAliveTimeoutMs', String],
    DSM_HTTP_SOCKET_IDLE_TIMEOUT: ['httpSocketIdleTimeoutMs', String],
    DSM_HTTP_MAX_CONNECTIONS: ['httpMaxConnections', num],
    DSM_HTTP_MAX_CONNECTIONS_PER_CLIENT: ['httpMaxConnectionsPerClient', num]
  }
  const layer: Record<string, unknown> = {}
  for (const [name, [key, convert]] of Object.entries(map)) {
    const value = env[name]
    if (value !== undefined && value !== '') layer[key] = convert(value)
  }
  return layer as ConfigLayer
}

export function defaultDataDir (env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'dsm')
}

export const DEFAULTS: Omit<NodeConfig, 'dataDir'> = {
  // TCP for nodes, WebSockets for browser nodes (the P2P player).
  listen: [`/ip4/0.0.0.0/tcp/${DEFAULT_TCP_PORT}`, `/ip4/0.0.0.0/tcp/${DEFAULT_TCP_PORT + 1}/ws`],
  bootstrap: [],
  http: { host: DEFAULT_HTTP_HOST, port: DEFAULT_HTTP_PORT },
  s3: { host: DEFAULT_HTTP_HOST, port: DEFAULT_S3_PORT },
  s3Domains: [],
  s3AccessKeyId: null,
  s3SecretAccessKey: null,
  s3MultipartExpiryMs: S3_MULTIPART_EXPIRY_MS,
  group: null,
  groupSize: DEFAULT_GROUP_SIZE,
  spare: false,
  heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
  syncIntervalMs: SYNC_INTERVAL_MS,
  offlineAfterMs: OFFLINE_AFTER_MS,
  joinSettleMs: JOIN_SETTLE_MS,
  logLevel: 'info',
  reserve: { percent: DEFAULT_RESERVE_PERCENT },
  writeQuorum: 'all',
  minCopies: null,
  placement: 'most-free',
  repairAfterMs: REPAIR_AFTER_MS,
  stallTimeoutMs: STALL_TIMEOUT_MS,
  chunkSize: DEFAULT_CHUNK_SIZE_BYTES,
  cacheSize: DEFAULT_CACHE_BYTES,
  volumeSize: VOLUME_MAX_BYTES,
  deletedReadGraceMs: DELETED_READ_GRACE_MS,
  reclaimDelayMs: RECLAIM_DELAY_MS,
  compactIntervalMs: COMPACT_INTERVAL_MS,
  compactRate: COMPACT_BYTES_PER_S,
  scrubRate: SCRUB_BYTES_PER_S,
  // Measured: reading from 2 replicas in parallel gained nothing on a CPU-bound host (bench/stream.ts).
  readSources: 1,
  transcodeJobs: 1,
  autoHls: false,
  maxRenditions: null,
  token: null,
  open: false,
  signedUrls: false,
  secret: null,
  secretFile: null,
  newCluster: false,
  previousSecrets: [],
  networkKey: null,
  allowPeers: [],
  httpHeadersTimeoutMs: DEFAULT_HTTP_LIMITS.headersTimeoutMs,
  httpBodyIdleTimeoutMs: DEFAULT_HTTP_LIMITS.bodyIdleTimeoutMs,
  httpKeepAliveTimeoutMs: DEFAULT_HTTP_LIMITS.keepAliveTimeoutMs,
  httpSocketIdleTimeoutMs: DEFAULT_HTTP_LIMITS.socketIdleTimeoutMs,
  rebuild: false,
  httpMaxConnections: DEFAULT_HTTP_LIMITS.maxConnections,
  httpMaxConnectionsPerClient: DEFAULT_HTTP_LIMITS.maxConnectionsPerClient
}

export interface ResolveConfigInit {
  flags?: ConfigLayer
  env?: NodeJS.ProcessEnv
}

async function readConfigFile (dataDir: string): Promise<unknown> {
  const path = join(dataDir, CONFIG_FILE_NAME)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new InvalidConfigError(`${path}: ${(err as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new InvalidConfigError(`${path}: not valid JSON (${(err as Error).message})`)
  }
}

export async function resolveConfig (init: ResolveConfigInit = {}): Promise<NodeConfig> {
  const env = init.env ?? process.env
  const flags = parseLayer('command line', init.flags ?? {})
  const fromEnv = parseLayer('environment', layerFromEnv(env))
  const dataDir = resolve(flags.dataDir ?? fromEnv.dataDir ?? defaultDataDir(env))
  const fromFile = parseLayer(join(dataDir, CONFIG_FILE_NAME), await readConfigFile(dataDir))
  // A one-off action, not a setting: it must not run again at every start.
  if (fromFile.rebuild !== undefined || fromEnv.rebuild !== undefined) throw new InvalidConfigError('rebuild is a command-line flag only (dsm node --rebuild), not a setting')
  const config: NodeConfig = { ...DEFAULTS, ...fromFile, ...fromEnv, ...flags, dataDir }
  if (config.offlineAfterMs <= config.heartbeatIntervalMs) {
    throw new InvalidConfigError(`offlineAfterMs (${config.offlineAfterMs}) must exceed heartbeatIntervalMs (${config.heartbeatIntervalMs})`)
  }
  // Settings that exclude each other: the one from the stronger layer wins (a flag beats DSM_TOKEN exported in
  // the shell, as the quick start suggests); set in the same layer, they are a mistake worth stopping for.
  const layers = [fromFile, fromEnv, flags]
  const rank = (key: keyof ConfigLayer): number => layers.findLastIndex(l => l[key] !== undefined)
  const exclusive = (a: keyof ConfigLayer, b: keyof ConfigLayer, clear: { [K in 'a' | 'b']: () => void }, message: string): void => {
    if (rank(a) > rank(b)) clear.b()
    else if (rank(b) > rank(a)) clear.a()
    else throw new InvalidConfigError(message)
  }
  if (config.open && config.token != null) {
    exclusive('open', 'token', { a: () => { config.open = false }, b: () => { config.token = null } }, 'a node cannot be --open and have a token: choose one')
  }
  if (config.secret != null && config.secretFile != null) {
    exclusive('secret', 'secretFile', { a: () => { config.secret = null }, b: () => { config.secretFile = null } }, 'give the cluster secret once: a secret or a secret file, not both')
  }
  if (config.open && config.signedUrls) {
    throw new InvalidConfigError('signed URLs need a cluster token: they cannot be used with --open')
  }
  if (config.networkKey != null) config.networkKey = resolve(dataDir, config.networkKey)
  if (config.secretFile != null) config.secretFile = resolve(dataDir, config.secretFile)
  if (config.spare && config.group != null) {
    throw new InvalidConfigError('a spare node cannot also be given a group')
  }
  return config
}

/** The HTTP limits of a node's config. */
export function httpLimits (config: NodeConfig): HttpLimits {
  return {
    headersTimeoutMs: config.httpHeadersTimeoutMs,
    bodyIdleTimeoutMs: config.httpBodyIdleTimeoutMs,
    keepAliveTimeoutMs: config.httpKeepAliveTimeoutMs,
    socketIdleTimeoutMs: config.httpSocketIdleTimeoutMs,
    maxConnections: config.httpMaxConnections,
    maxConnectionsPerClient: config.httpMaxConnectionsPerClient
  }
}
