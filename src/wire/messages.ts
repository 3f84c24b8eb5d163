/**
 * Every dsm wire message and protocol id, in one place.
 * Schemas are strict about types and sizes; unknown fields are stripped so a
 * newer minor version can add optional fields without breaking older peers.
 */
import { z } from 'zod'
import { NODE_STATES } from './state.ts'
import { ErrorFrameSchema } from './answer.ts'
import { HEARTBEAT_MAX_BYTES, MAX_CHUNK_SIZE_BYTES, MAX_CONTROL_FRAME_BYTES, MAX_MANIFEST_BYTES, MAX_TAG_CHARS, MAX_UPLOAD_BYTES, PROTOCOL_PREFIX } from '../constants.ts'

/** At most this many addresses in one heartbeat (and this long each). */
export const HEARTBEAT_MAX_ADDRS = 32
export const MULTIADDR_MAX_CHARS = 512
/** Longest group name accepted (names are also DHT keys and path-free). */
export const GROUP_NAME_MAX_CHARS = 64

export const PROTOCOLS = {
  /** Request a peer's membership view (join and partition heal). */
  members: `${PROTOCOL_PREFIX}/members/1.0.0`,
  /** Tell a connected peer we are leaving (body: our OFFLINE heartbeat). */
  leave: `${PROTOCOL_PREFIX}/leave/1.0.0`,
  /** Stream an upload to a member of the target group (the coordinator). */
  put: `${PROTOCOL_PREFIX}/put/1.0.0`,
  /** Coordinator → other members: the chunks of an upload, its prepare, then the decision (replica/replicate.ts). */
  replicate: `${PROTOCOL_PREFIX}/replicate/2.0.0`,
  /**
   * Coordinator → member, one long-lived stream per pair: small uploads (one
   * chunk) whole in one frame each, many in flight, then their decisions
   * (replica/channel.ts). No stream to open per upload. 2.0.0: a put's chunk
   * travels as raw bytes after its CBOR fields; 3.0.0: a put's fields, a
   * decision and a member's "prepared" are fixed binary layouts, not CBOR
   * (./channel-frames.ts).
   */
  channel: `${PROTOCOL_PREFIX}/channel/3.0.0`,
  /** The channel's previous version, served and dialed while a group is upgraded one node at a time (./channel-frames-v2.ts). */
  channelV2: `${PROTOCOL_PREFIX}/channel/2.0.0`,
  /** Has this upload (id, stamp) committed here? Asked to decide a prepared upload whose decision was lost. */
  outcome: `${PROTOCOL_PREFIX}/outcome/1.0.0`,
  /** Does this node hold a file? Answers with the manifest. */
  locate: `${PROTOCOL_PREFIX}/locate/1.0.0`,
  /** Read chunks of a file: (id, offset, length) → verified-by-receiver chunk frames. */
  get: `${PROTOCOL_PREFIX}/get/1.0.0`,
  /** Ask a group member to delete a file from its group. */
  delete: `${PROTOCOL_PREFIX}/delete/1.0.0`,
  /** Coordinator → members: apply a group operation (a delete). */
  apply: `${PROTOCOL_PREFIX}/apply/1.0.0`,
  /** Pull a member's group log after a position (anti-entropy). */
  sync: `${PROTOCOL_PREFIX}/sync/1.0.0`,
  /** A group asks a node to become its member (repair). */
  recruit: `${PROTOCOL_PREFIX}/recruit/1.0.0`,
  /** List the files a member holds. */
  list: `${PROTOCOL_PREFIX}/list/1.0.0`,
  /** A member's summary of the files it holds (a Bloom filter) and its log head: where a reader looks first. */
  summary: `${PROTOCOL_PREFIX}/summary/1.0.0`,
  /** Browser nodes announce which chunks of a file they hold and learn who else watches it. */
  swarm: `${PROTOCOL_PREFIX}/swarm/1.0.0`,
  /** Once per connection: both ends prove they hold the cluster secret (net/peer-auth.ts). */
  auth: `${PROTOCOL_PREFIX}/auth/1.0.0`,
  /** The S3 namespace, asked of a member of the bucket's group: read, list, write a bucket or key (./names.ts). */
  names: `${PROTOCOL_PREFIX}/names/1.0.0`,
  /** The member that stamped a name operation pushes it to its mates. */
  nameApply: `${PROTOCOL_PREFIX}/name-apply/1.0.0`,
  /** Pull a member's name log after a cursor (the file log's sync, for names). */
  nameSync: `${PROTOCOL_PREFIX}/name-sync/1.0.0`
} as const

export type ProtocolName = keyof typeof PROTOCOLS

/**
 * Who may call each protocol. 'cluster': only a peer that proved the cluster
 * secret on this connection (anything that changes state, carries or hands
 * out group data, or counts in membership). 'public': anyone, as anyone may
 * read over HTTP (with --signed-urls these need the secret too: HTTP then
 * asks for signatures). 'open': the handshake itself.
 */
export const PROTOCOL_ACCESS: Record<ProtocolName, 'cluster' | 'public' | 'open'> = {
  members: 'cluster',
  leave: 'cluster',
  put: 'cluster',
  replicate: 'cluster',
  channel: 'cluster',
  channelV2: 'cluster',
  outcome: 'cluster',
  locate: 'public',
  get: 'public',
  delete: 'cluster',
  apply: 'cluster',
  sync: 'cluster',
  recruit: 'cluster',
  list: 'cluster',
  summary: 'cluster',
  swarm: 'public',
  auth: 'open',
  names: 'cluster',
  nameApply: 'cluster',
  nameSync: 'cluster'
}

const ACCESS_BY_ID = new Map(Object.entries(PROTOCOLS).map(([name, id]) => [id as string, PROTOCOL_ACCESS[name as ProtocolName]]))

/** The access class of a protocol id ('open' for ids that are not dsm's, e.g. libp2p's own). */
export function protocolAccess (protocol: string): 'cluster' | 'public' | 'open' {
  return ACCESS_BY_ID.get(protocol) ?? 'open'
}

/** Binary data (any Uint8Array, whatever its buffer type). */
export const bytesSchema = z.custom<Uint8Array>(v => v instanceof Uint8Array, 'expected bytes')
export const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
/** A peer id as text (base58btc), and a group's name: the schemas below and ./put-fields.ts check them alike. */
export const PEER_ID_PATTERN = /^[1-9A-HJ-NP-Za-km-z]+$/
export const PEER_ID_MAX_CHARS = 128
export const GROUP_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
export const peerIdString = z.string().min(1).max(PEER_ID_MAX_CHARS).regex(PEER_ID_PATTERN, 'a base58btc peer id')
export const groupName = z.string().min(1).max(GROUP_NAME_MAX_CHARS).regex(GROUP_NAME_PATTERN, 'letters, digits, ".", "_" or "-", not starting with a symbol')

export const SyncStatusSchema = z.object({
  /** Head of this member's group log (its latest local sequence number). */
  head: count,
  /** While SYNCING: files and bytes still to fetch. */
  filesToGo: count,
  bytesToGo: count,
  /** Files this member holds (present). Optional: older members do not send it. */
  files: count.optional(),
  /** Files this member cannot heal: no member of its group holds a good copy of one of their chunks. */
  damaged: count.optional(),
  /** Head of this member's name log (the S3 namespace). Optional: older members do not send it. */
  names: count.optional()
})
export type SyncStatus = z.infer<typeof SyncStatusSchema>

export const HeartbeatSchema = z.object({
  peer: peerIdString,
  addrs: z.array(z.string().min(1).max(MULTIADDR_MAX_CHARS)).max(HEARTBEAT_MAX_ADDRS),
  group: groupName.nullable(),
  state: z.enum(NODE_STATES),
  /** Capacity of the data dir's file system, and what is still free. */
  total: count,
  free: count,
  /** Active transfers (uploads + downloads being served). */
  load: count,
  version: z.string().max(32),
  /** The sender's incarnation, persisted and raised at every start (node.json): orders heartbeats across restarts. */
  incarnation: count,
  /** Per-incarnation counter: a heartbeat not newer than the last one is stale. */
  seq: count,
  /** Sender's wall clock when sent (ms since epoch). */
  ts: count,
  sync: SyncStatusSchema,
  /** A spare holds no group and waits to be recruited by a group that lost a member. */
  spare: z.boolean(),
  /** Bytes this node keeps free (its --reserve): free - reserve is what it can take. */
  reserve: count
})
export type Heartbeat = z.infer<typeof HeartbeatSchema>

export const MembersRequestSchema = z.object({
  /** Only this group's members (a joiner checking its seat); absent: the whole view. Older peers ignore it and send all. */
  group: groupName.optional()
})

/**
 * A heartbeat as its member sealed it (membership/seal.ts): a signed
 * heartbeat (`SignedHeartbeat`), encrypted once per cluster secret the member
 * holds. Only holders of the secret can read or make one.
 */
export const SealedHeartbeatSchema = z.object({
  boxes: z.array(bytesSchema.refine(b => b.byteLength <= HEARTBEAT_MAX_BYTES, 'box too large')).min(1).max(4)
})
/** What a box holds: the heartbeat's bytes and the member's signature over them. */
export const SignedHeartbeatSchema = z.object({
  body: bytesSchema.refine(b => b.byteLength <= HEARTBEAT_MAX_BYTES, 'heartbeat too large'),
  sig: bytesSchema.refine(b => b.byteLength <= 128, 'signature too large')
})

export const MembersResponseSchema = z.object({
  members: z.array(z.object({
    /** The member's own sealed heartbeat (so no node can describe another). */
    sealed: bytesSchema,
    /** How long ago the answering node heard this heartbeat. */
    ageMs: count
  })).max(10_000)
})
export type MembersResponse = z.infer<typeof MembersResponseSchema>

/** A leave notice: the leaving member's sealed OFFLINE heartbeat. */
export const LeaveNoticeSchema = z.object({ sealed: bytesSchema })
export const LeaveAckSchema = z.object({ ok: z.literal(true) })

// ---- files ----------------------------------------------------------------

export const fileId = z.string().min(1).max(128)
const manifestBytes = bytesSchema.refine(b => b.byteLength <= MAX_MANIFEST_BYTES, 'manifest too large')
export const stamp = { ts: count, origin: peerIdString }

/** Write quorum: every ACTIVE member of the group, or at least N copies. */
export const QuorumSchema = z.union([z.literal('all'), z.number().int().positive().max(64)])
export type Quorum = z.infer<typeof QuorumSchema>

export const PutHeaderSchema = z.object({
  group: groupName,
  name: z.string().min(1).max(1024),
  /** Explicit type (Content-Type of the upload); else from the name or sniffed. */
  mime: z.string().min(1).max(255).optional(),
  /** Declared size (Content-Length), when known: checked against space up front. */
  size: count.max(MAX_UPLOAD_BYTES).optional(),
  quorum: QuorumSchema,
  /** Part of the file's ID (content/manifest.ts): a file of its own, whatever its bytes. */
  tag: z.string().min(1).max(MAX_TAG_CHARS).regex(/^[\x21-\x7e]+$/, 'printable ASCII').optional()
})
export type PutHeader = z.infer<typeof PutHeaderSchema>

export const UploadResultSchema = z.object({
  id: fileId,
  size: count,
  name: z.string(),
  mime: z.string(),
  group: groupName,
  createdAt: count,
  /** Members that durably hold the file, the coordinator first. */
  replicas: z.array(peerIdString),
  /** The key record the upload carried is written (acknowledged with it); absent: the caller writes it. */
  named: z.literal(true).optional()
})
export type UploadResult = z.infer<typeof UploadResultSchema>

export const ReplicateHeaderSchema = z.object({
  group: groupName,
  chunkSize: z.number().int().positive().max(MAX_CHUNK_SIZE_BYTES)
})
export type ReplicateHeader = z.infer<typeof ReplicateHeaderSchema>

/** The prepare of an upload: the file, its stamp, and what deciding it needs without the coordinator. */
export const PrepareFrameSchema = z.object({
  manifest: manifestBytes,
  createdAt: count,
  ...stamp,
  /** Copies the upload needs to be acknowledged (the coordinator's included). */
  copies: z.number().int().positive().max(64),
  /** The members asked to store it (the coordinator excluded). */
  members: z.array(peerIdString).max(64),
  /**
   * An S3 key record that commits with the upload (an encoded wire/names.ts
   * NameOp, stamped by the coordinator): prepared with it, applied when it
   * commits. Only on the upload channel.
   */
  name: bytesSchema.refine(b => b.byteLength <= MAX_CONTROL_FRAME_BYTES, 'key record too large').optional()
})
export type PrepareFrame = z.infer<typeof PrepareFrameSchema>

/** Frames of the upload channel (replica/channel.ts); `u` numbers an upload on its channel. */
export const ChannelPutSchema = z.object({
  u: count,
  group: groupName,
  chunkSize: z.number().int().positive().max(MAX_CHUNK_SIZE_BYTES),
  /** The file's only chunk. */
  chunk: bytesSchema.refine(b => b.byteLength <= MAX_CHUNK_SIZE_BYTES, 'chunk too large'),
  prepare: PrepareFrameSchema
})
export type ChannelPut = z.infer<typeof ChannelPutSchema>
/** `ack`: answer once decided (an upload carrying a key record: the coordinator counts who applied it). */
export const ChannelDecideSchema = z.object({ u: count, commit: z.boolean(), ack: z.literal(true).optional() })
/** What a member holds of a carried key record once the upload committed: ours applied, or a newer stamp. */
export const ChannelDecidedSchema = z.object({ applied: z.boolean(), holds: z.object(stamp).optional() })
export type ChannelDecided = z.infer<typeof ChannelDecidedSchema>
/**
 * A name operation a member pushes to a mate (the S3 namespace): the request
 * of `/dsm/name-apply`, encoded (wire/names.ts NameApplyRequestSchema), on the
 * channel instead of a stream of its own; answered with its response, encoded.
 */
export const ChannelNameSchema = z.object({ u: count, req: bytesSchema.refine(b => b.byteLength <= MAX_CONTROL_FRAME_BYTES, 'name request too large') })
/** A put's fields but its chunk, which travels after them as raw bytes (./channel-frames.ts). */
export const ChannelPutMetaSchema = ChannelPutSchema.omit({ chunk: true })
/** The channel's other requests (CBOR whole). */
export const ChannelControlSchema = z.object({ decide: ChannelDecideSchema.optional(), name: ChannelNameSchema.optional() })
export type ChannelRequest = z.infer<typeof ChannelControlSchema> & { put?: ChannelPut }
/** An answer without `u` refuses the whole channel (an unproven peer: the guard's error frame). */
export const ChannelAnswerSchema = z.object({
  u: count.optional(),
  prepared: z.literal(true).optional(),
  /** The answer to a `name` request (wire/names.ts NameApplyResponseSchema, encoded). */
  named: bytesSchema.refine(b => b.byteLength <= MAX_CONTROL_FRAME_BYTES, 'name answer too large').optional(),
  /** The answer to a decision asked with `ack`. */
  decided: ChannelDecidedSchema.optional(),
  error: ErrorFrameSchema.optional()
})
export type ChannelAnswer = z.infer<typeof ChannelAnswerSchema>

export const OutcomeRequestSchema = z.object({ id: fileId, ...stamp })
/**
 * committed: this node holds the file under that stamp; superseded: it holds a
 * newer operation on the file (the stamp no longer matters); prepared: it
 * prepared it and waits for a decision too; unknown: it has nothing of it — from
 * the coordinator, that means the upload was never acknowledged.
 */
export const OutcomeResponseSchema = z.object({ state: z.enum(['committed', 'superseded', 'prepared', 'unknown']) })
export type Outcome = z.infer<typeof OutcomeResponseSchema>['state']

export const PreparedSchema = z.object({ prepared: z.literal(true) })

export const LocateRequestSchema = z.object({ id: fileId })
const PeerAddrsSchema = z.object({
  peerId: peerIdString,
  addrs: z.array(z.string().min(1).max(MULTIADDR_MAX_CHARS)).max(HEARTBEAT_MAX_ADDRS)
})

export const LocateResponseSchema = z.object({
  state: z.enum(['present', 'pending', 'deleted', 'unknown']),
  group: groupName.optional(),
  manifest: manifestBytes.optional(),
  createdAt: count.optional(),
  /** ACTIVE members of the file's group and their addresses (for browser nodes, which keep no view). */
  replicas: z.array(PeerAddrsSchema).max(64).optional()
})
export type LocateResponse = z.infer<typeof LocateResponseSchema>

/** Largest group summary a member sends (a filter for ~3.3 million files). */
export const SUMMARY_MAX_BYTES = 4 * 1024 * 1024
export const SummaryRequestSchema = z.object({ group: groupName })
export const SummaryResponseSchema = z.object({
  group: groupName,
  /** The member's log head when it answered: the filter holds every file it held then. */
  head: count,
  /** Entries added to the filter. */
  count,
  hashes: z.number().int().min(1).max(32),
  bits: bytesSchema.refine(b => b.byteLength >= 1 && b.byteLength <= SUMMARY_MAX_BYTES, `1 to ${SUMMARY_MAX_BYTES} bytes`)
})
export type SummaryResponse = z.infer<typeof SummaryResponseSchema>

export const GetRequestSchema = z.object({
  id: fileId,
  offset: count,
  length: count,
  /** A later part of a read that already began: a holder serves it even if the file was deleted since (its grace). */
  resume: z.boolean().optional()
})
/** First frame of a get answer; chunk frames follow it. */
export const GetHeaderSchema = z.object({ first: count, last: z.number().int().min(-1) })

export const DeleteRequestSchema = z.object({ id: fileId })
export const DeleteResultSchema = z.object({ id: fileId, group: groupName, replicas: z.array(peerIdString) })
export type DeleteResult = z.infer<typeof DeleteResultSchema>

export const DeleteOpSchema = z.object({ kind: z.literal('delete'), id: fileId, group: groupName, ...stamp })
export const ApplyRequestSchema = z.object({ op: DeleteOpSchema })
export const ApplyResultSchema = z.object({ effect: z.enum(['ignored', 'added', 'restamped', 'deleted']) })

export const LogEntrySchema = z.object({
  id: fileId,
  kind: z.enum(['add', 'delete']),
  seq: count,
  manifest: manifestBytes.optional(),
  createdAt: count.optional(),
  ...stamp
})
export type LogEntry = z.infer<typeof LogEntrySchema>
export const SyncRequestSchema = z.object({ group: groupName, since: count, limit: z.number().int().positive().max(10_000) })
export const SyncResponseSchema = z.object({ entries: z.array(LogEntrySchema), head: count, more: z.boolean() })
export type SyncResponse = z.infer<typeof SyncResponseSchema>

export const RecruitRequestSchema = z.object({ group: groupName, replaces: peerIdString.optional() })
export const RecruitResponseSchema = z.object({ accepted: z.boolean(), reason: z.string().max(500).optional() })

export const ListRequestSchema = z.object({ afterSeq: count, limit: z.number().int().positive().max(5_000) })
export const FileSummarySchema = z.object({
  id: fileId, size: count, name: z.string(), mime: z.string(), createdAt: count, chunks: count, seq: count
})
export type FileSummary = z.infer<typeof FileSummarySchema>
export const ListResponseSchema = z.object({ group: groupName.nullable(), files: z.array(FileSummarySchema), more: z.boolean() })
export type ListResponse = z.infer<typeof ListResponseSchema>

/** A chunk bitmap: bit i (byte i >> 3, bit i & 7) set when chunk i is held. */
const bitmap = bytesSchema.refine(b => b.byteLength <= 1024 * 1024, 'bitmap too large')

export const SwarmAnnounceSchema = z.object({
  id: fileId,
  /** How other browsers reach the announcer (relay addresses). */
  addrs: z.array(z.string().min(1).max(MULTIADDR_MAX_CHARS)).max(HEARTBEAT_MAX_ADDRS),
  have: bitmap,
  /** True: the announcer stops watching (remove it). */
  leave: z.boolean().optional()
})
export type SwarmAnnounce = z.infer<typeof SwarmAnnounceSchema>

export const SwarmPeersSchema = z.object({
  peers: z.array(z.object({ peerId: peerIdString, addrs: PeerAddrsSchema.shape.addrs, have: bitmap })).max(256)
})
export type SwarmPeers = z.infer<typeof SwarmPeersSchema>

// ---- peer authentication (net/peer-auth.ts) --------------------------------

const nonce = bytesSchema.refine(b => b.byteLength === 32, 'a nonce is 32 bytes')
/** One HMAC per secret the prover holds (rotation: old and new). */
const proofs = z.array(bytesSchema.refine(b => b.byteLength === 32, 'a proof is 32 bytes')).min(1).max(4)
export const AuthHelloSchema = z.object({ nonce })
export const AuthChallengeSchema = z.object({ nonce, proofs })
export const AuthProofSchema = z.object({ proofs })
export const AuthResultSchema = z.object({ accepted: z.boolean() })
