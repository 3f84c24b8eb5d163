/**
 * Every tunable of dsm in one place, each with its unit in the name.
 * Defaults can be overridden per node through its config (see src/app/config.ts).
 */

/** Protocol ids are `/dsm/<name>/<version>`; the DHT uses `/dsm/kad/1.0.0`. */
export const PROTOCOL_PREFIX = '/dsm'

// ---- membership ----------------------------------------------------------

/** How often a node publishes its heartbeat on the membership topic. */
export const HEARTBEAT_INTERVAL_MS = 2_000
/**
 * How often a member pulls its group mates' logs and re-dials mates it lost.
 * Apart from the heartbeat on purpose: that one is cluster-wide (every node
 * hears every heartbeat, so a large cluster may slow it down), this is
 * group-local and stays fast at any size.
 */
export const SYNC_INTERVAL_MS = 2_000
/** A member pulls each mate's log at least this often, even when heartbeats say nothing moved. */
export const SYNC_FULL_PULL_INTERVAL_MS = 10_000
/** A state change is announced again after these delays (each shorter than the heartbeat interval). */
export const STATE_REANNOUNCE_DELAYS_MS = [1_000, 5_000] as const
/** A member that sent no heartbeat for this long is marked OFFLINE. */
export const OFFLINE_AFTER_MS = 6_000
/**
 * A member whose clock differs from ours by more than this (measured from its
 * heartbeats) is reported (log, `dsm groups`, metrics). Nothing depends on
 * clocks agreeing: heartbeats are ordered by the sender's (incarnation, seq)
 * and judged fresh by our own receive time.
 */
export const CLOCK_SKEW_WARN_MS = 10_000
/** Sealed heartbeats larger than this are dropped before decoding. */
export const HEARTBEAT_MAX_BYTES = 24 * 1024
/** At most this many addresses in one heartbeat (and this long each). */
export const HEARTBEAT_MAX_ADDRS = 32
export const MULTIADDR_MAX_CHARS = 512
/** Gossipsub topic of the membership heartbeats. */
export const MEMBERSHIP_TOPIC = '/dsm/membership/1.0.0'
/** A node tries to stay connected to at least this many known members. */
export const MIN_CONNECTED_PEERS = 6
/** How long a leaving node waits for its peers to acknowledge the leave notice. */
export const LEAVE_NOTICE_TIMEOUT_MS = 1_000
/** A joining node pulls the views of this many peers before it commits to a group... */
export const REFRESH_VIEW_PEERS = 8
/** ...waiting at most this long for them. */
export const REFRESH_VIEW_TIMEOUT_MS = 1_000
/** Members OFFLINE for this long are dropped from the view. */
export const FORGET_OFFLINE_AFTER_MS = 24 * 60 * 60 * 1000

// ---- groups --------------------------------------------------------------

/** Target number of content-equal members per replica group. */
export const DEFAULT_GROUP_SIZE = 3
/** No upload is acknowledged with fewer copies (where the group has that many members): see ingest.ts copyFloor. */
export const DEFAULT_MIN_COPIES = 2
/** Longest group name accepted (names are also DHT keys and path-free). */
export const GROUP_NAME_MAX_CHARS = 64
/**
 * An auto-joining node announces its tentative group for this long before it
 * commits, so that nodes starting at once see each other and converge.
 */
export const JOIN_SETTLE_MS = 2 * HEARTBEAT_INTERVAL_MS

// ---- bootstrap & dialing -------------------------------------------------

/** First retry delay when no bootstrap peer answers; doubles up to the max. */
export const BOOTSTRAP_RETRY_MIN_MS = 250
export const BOOTSTRAP_RETRY_MAX_MS = 10_000
/** Default timeout of one dial. */
export const DIAL_TIMEOUT_MS = 5_000

// ---- wire ----------------------------------------------------------------

/** Largest control frame (requests, answers, view exchanges). */
export const MAX_CONTROL_FRAME_BYTES = 1024 * 1024
/** Default timeout of a request/response exchange over a dsm protocol. */
export const REQUEST_TIMEOUT_MS = 10_000
/** Concurrent inbound streams of one dsm protocol per connection. */
export const MAX_INBOUND_STREAMS_PER_PEER = 32
export const MAX_OUTBOUND_STREAMS_PER_PEER = 64
/** Concurrent transfer streams (put, replicate, get) per connection, each way. */
export const MAX_TRANSFER_STREAMS_PER_PEER = 256
/** Uploads one coordinator runs at once; more wait their turn (their senders are paused). */
export const MAX_CONCURRENT_UPLOADS = 32
/** Uploads allowed to wait for a turn before new ones are refused (503). */
export const MAX_QUEUED_UPLOADS = 4096

// ---- http ----------------------------------------------------------------

export const DEFAULT_HTTP_HOST = '127.0.0.1'
export const DEFAULT_HTTP_PORT = 8080
/** Time a graceful stop waits for open HTTP responses before closing them. */
export const HTTP_CLOSE_GRACE_MS = 2_000
/** Default timeout of a CLI call to a node's HTTP API. */
export const CLIENT_TIMEOUT_MS = 10_000

// ---- node ----------------------------------------------------------------

export const DEFAULT_TCP_PORT = 4100
/** libp2p's default (5 dials/s per host) refuses many local dials in one host. */
export const INBOUND_CONNECTION_THRESHOLD = 1_000
/** A member's unchanged heartbeat addresses are written to the peer store again after this long. */
export const ADDRS_REFRESH_MS = 10 * 60_000
/** How often libp2p's connection monitor pings each connection (its RTT feeds replica choice). */
export const CONNECTION_PING_INTERVAL_MS = 10_000
/** Ping streams one connection may have open each way (libp2p's default of 1 fails overlapping pings). */
export const MAX_PING_STREAMS_PER_CONNECTION = 4
export const MAX_CONNECTIONS = 400
/** Browser nodes one storage node relays for (WebRTC signalling between tabs). */
export const RELAY_MAX_RESERVATIONS = 256
/**
 * yamux grows a stream's receive window up to this (its default is 16 MiB).
 * A window is what one transfer may have in flight, so it bounds memory per
 * stream; 4 MiB still covers the bandwidth-delay product of a LAN.
 */
export const YAMUX_MAX_STREAM_WINDOW_BYTES = 4 * 1024 * 1024

// ---- files & storage -----------------------------------------------------

/**
 * Files are cut into fixed chunks of this size, each verified on its own.
 * 1 MiB: the per-chunk costs (a frame, a hash, a file, an index row) vanish
 * against the bytes at hundreds of MiB/s, while a seek still fetches and
 * verifies at most 1 MiB before its first byte (a few ms on a LAN), in-flight
 * memory stays a few MiB per transfer, and it matches the 1 MiB block limit
 * of IPFS/bitswap, so chunks could travel there too.
 */
export const DEFAULT_CHUNK_SIZE_BYTES = 1024 * 1024
/**
 * A chunk's hash is the SHA-256 of the SHA-256s of its 64 KiB leaves, so a
 * replica can send — and a reader verify — just the leaves a seek needs
 * (with the 16 leaf hashes, 512 bytes) instead of the whole 1 MiB chunk.
 * Hashing a whole chunk this way costs the same as hashing it plainly.
 */
export const CHUNK_LEAF_BYTES = 64 * 1024
/** Largest chunk size a manifest may declare (bounds every chunk frame). */
export const MAX_CHUNK_SIZE_BYTES = 4 * 1024 * 1024
/** Largest manifest accepted (≈ 2 M chunk hashes: a 2 TiB file at 1 MiB chunks). */
export const MAX_MANIFEST_BYTES = 72 * 1024 * 1024
/** Largest file accepted by an upload. */
export const MAX_UPLOAD_BYTES = 2 ** 41
/** Longest original file name, in UTF-8 bytes (the common file-system limit). */
export const MAX_FILE_NAME_BYTES = 255
/** Default free space every node keeps on its data disk, in percent of the disk. */
export const DEFAULT_RESERVE_PERCENT = 10
/** How long a statfs of the data disk is trusted (writes in between are counted locally). */
export const CAPACITY_REFRESH_MS = 1_000
/** Raw data frames of an upload stream. */
export const MAX_DATA_FRAME_BYTES = 1024 * 1024
/** A replication or upload stream idle this long (no frame) is abandoned. */
export const TRANSFER_IDLE_TIMEOUT_MS = 30_000
/** After refusing a streaming request, how long to discard what the sender still sends. */
export const DRAIN_AFTER_ERROR_TIMEOUT_MS = 10_000
/** Room for framing around a chunk in a data frame. */
export const FRAME_OVERHEAD_BYTES = 64 * 1024
/** Manifests of remote files kept by the locator (bytes of manifest data). */
export const LOCATE_CACHE_BYTES = 64 * 1024 * 1024
/**
 * How long a node that holds no copy trusts a located manifest before asking
 * the group again: the bound on how long a deleted file stays readable there
 * (its chunks may still sit in the chunk cache). One small RPC per file per period.
 */
export const LOCATE_CACHE_TTL_MS = 3_000
/** Timeout of one locate question to one member. */
export const LOCATE_TIMEOUT_MS = 3_000
/**
 * Locate asks at most this many peers at once (one per group first): with 67
 * groups a read asked 67 members, and those questions were most of the CPU of
 * a read in the 200-node simulation. A file sits in a group taken at random, so
 * waves of 16 ask about 60 % as many.
 */
export const LOCATE_WAVE_PEERS = 16
/** The next wave starts when the current one has all said no, or after this long (a silent peer must not stall the search). */
export const LOCATE_WAVE_DELAY_MS = 250

// ---- streaming -----------------------------------------------------------

/** A replica that sends no chunk for this long is abandoned for the next one. */
export const STALL_TIMEOUT_MS = 2_000
/** Decoded manifests kept in memory for serving reads. */
export const MANIFEST_CACHE_ENTRIES = 512

// ---- group sync & repair -------------------------------------------------

/** Entries per page of a group-log pull. */
export const SYNC_PAGE_ENTRIES = 500
/** Manifest bytes per page of a group-log pull (bounds the answer frame). */
export const SYNC_PAGE_BYTES = 8 * 1024 * 1024
/** Files fetched in parallel while catching up. */
export const SYNC_FETCH_CONCURRENCY = 2
/** A member OFFLINE this long is replaced by a recruit (the --repair-after default). */
export const REPAIR_AFTER_MS = 60_000
/** A recruit that has not shown up in its new group after this long may be replaced. */
export const RECRUIT_GRACE_MS = 30_000
/** Most files one listing returns (per group). */
export const MAX_LIST_FILES_PER_GROUP = 10_000
/** Chunk writes (write + fsync) one transfer keeps in flight, overlapping disk and network. */
export const CHUNK_WRITE_CONCURRENCY = 4
/** Chunks one transfer may hold in memory waiting for the disk (bounds memory per transfer). */
export const CHUNK_WRITE_BACKLOG = 8
/** Default size of the chunk cache of a node that streams files it does not hold (--cache-size). */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
/** Consecutive chunks fetched from one replica in one request (a segment). */
export const SEGMENT_CHUNKS = 4
/** Chunks a remote read fetches ahead of the consumer (per replica in use, at most 3 replicas). */
export const READ_AHEAD_CHUNKS_PER_SOURCE = 4
/** Times one read goes back to replicas that only stalled, once all replicas failed it. */
export const MAX_STALL_RETRIES = 2
/** Replicas one read fetches from in parallel. */
export const MAX_PARALLEL_SOURCES = 3

// ---- browser nodes -------------------------------------------------------

/** A browser watching a file is forgotten by the swarm registry after this long without an announce. */
export const SWARM_TTL_MS = 30_000
/** Viewers a storage node tracks per file, and files it tracks. */
export const SWARM_MAX_PEERS_PER_FILE = 256
export const SWARM_MAX_FILES = 10_000
/** Peers a swarm answer lists (the freshest first). */
export const SWARM_ANSWER_PEERS = 16
/** How often a browser node announces what it holds for a file it watches. */
export const SWARM_ANNOUNCE_INTERVAL_MS = 2_000
/** A browser node announces chunks it has just got after this delay (a burst of chunks makes one announce). */
export const SWARM_HAVE_ANNOUNCE_DELAY_MS = 200
/** Other browsers a browser node connects to per file. */
export const SWARM_MAX_PEER_CONNECTIONS = 8
/** Chunks a browser node fetches ahead of its player. */
export const BROWSER_READ_AHEAD_CHUNKS = 3
/** Default memory a browser node keeps for chunks (served to other browsers too). */
export const BROWSER_CACHE_BYTES = 256 * 1024 * 1024

// --- Security ---------------------------------------------------------------

/** A cluster token shorter than this is refused: it would be guessable. */
export const MIN_TOKEN_CHARS = 16
/** Lifetime of a signed download URL when the signer asks for none. */
export const DEFAULT_SIGNED_URL_TTL_S = 3_600
/** Longest lifetime a signed URL may have (a week): a leaked link must die. */
export const MAX_SIGNED_URL_TTL_S = 7 * 24 * 3_600
/** Several peers this misbehaving (failed verifications) are tried last on reads. */
export const PEER_SCORE_AVOID_BELOW = -10
/** Penalty for one chunk that failed verification: one strike puts a peer below the threshold. */
export const PEER_SCORE_BAD_CHUNK = -20
/** Half-life of a peer's penalty: a replica whose disk was repaired is trusted again. */
export const PEER_SCORE_HALF_LIFE_MS = 10 * 60_000
/** Heartbeats a member may send in a burst (joining: several state changes at once). */
export const HEARTBEAT_BURST = 20
/** Sustained heartbeats per second a member may send before the excess counts as a flood. */
export const HEARTBEAT_REFILL_PER_S = 5
