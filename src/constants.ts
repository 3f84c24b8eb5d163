/**
 * The tunables that several layers share, each with its unit in the name. A
 * constant that one module uses lives beside it, exported there (tests and
 * benchmarks import it from its module); the node's config maps its keys onto
 * the services' Init (see src/node/config.ts).
 */

/** Protocol ids are `/dsm/<name>/<version>`; the DHT uses `/dsm/kad/1.0.0`. */
export const PROTOCOL_PREFIX = '/dsm'

// ---- membership ----------------------------------------------------------

/** How often a node publishes its heartbeat on the membership topic. */
export const HEARTBEAT_INTERVAL_MS = 2_000
/**
 * A member whose clock differs from ours by more than this (measured from its
 * heartbeats) is reported (log, `dsm groups`, metrics). Nothing depends on
 * clocks agreeing: heartbeats are ordered by the sender's (incarnation, seq)
 * and judged fresh by our own receive time.
 */
export const CLOCK_SKEW_WARN_MS = 10_000
/** Sealed heartbeats larger than this are dropped before decoding. */
export const HEARTBEAT_MAX_BYTES = 24 * 1024
/** Gossipsub topic of the membership heartbeats. */
export const MEMBERSHIP_TOPIC = '/dsm/membership/1.0.0'
/** A joining node waits at most this long for the views it pulls from its peers before it commits to a group. */
export const REFRESH_VIEW_TIMEOUT_MS = 1_000

// ---- groups --------------------------------------------------------------

/**
 * An auto-joining node announces its tentative group for this long before it
 * commits, so that nodes starting at once see each other and converge.
 */
export const JOIN_SETTLE_MS = 2 * HEARTBEAT_INTERVAL_MS

// ---- wire ----------------------------------------------------------------

/** Largest control frame (requests, answers, view exchanges). */
export const MAX_CONTROL_FRAME_BYTES = 1024 * 1024
/** Default timeout of a request/response exchange over a dsm protocol. */
export const REQUEST_TIMEOUT_MS = 10_000

// ---- http ----------------------------------------------------------------

export const DEFAULT_HTTP_HOST = '127.0.0.1'
export const DEFAULT_HTTP_PORT = 8080

// ---- node ----------------------------------------------------------------

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
/** A manifest's tag (content/manifest.ts): at most this many printable ASCII characters. */
export const MAX_TAG_CHARS = 64
export const MAX_MANIFEST_BYTES = 72 * 1024 * 1024
/** Largest file accepted by an upload. */
export const MAX_UPLOAD_BYTES = 2 ** 41
/** A replication or upload stream idle this long (no frame) is abandoned. */
export const TRANSFER_IDLE_TIMEOUT_MS = 30_000
/** After refusing a streaming request, how long to discard what the sender still sends. */
export const DRAIN_AFTER_ERROR_TIMEOUT_MS = 10_000
/** Room for framing around a chunk in a data frame. */
export const FRAME_OVERHEAD_BYTES = 64 * 1024
/** Timeout of one locate question to one member. */
export const LOCATE_TIMEOUT_MS = 3_000

// ---- streaming -----------------------------------------------------------

/** A replica that sends no chunk for this long is abandoned for the next one. */
export const STALL_TIMEOUT_MS = 2_000

// ---- group sync & repair -------------------------------------------------

/** Replicas one read fetches from in parallel. */
export const MAX_PARALLEL_SOURCES = 3

// ---- browser nodes -------------------------------------------------------

// --- Security ---------------------------------------------------------------

/** A cluster token shorter than this is refused: it would be guessable. */
export const MIN_TOKEN_CHARS = 16
