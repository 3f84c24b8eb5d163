/**
 * Every tunable of dsm in one place, each with its unit in the name.
 * Defaults can be overridden per node through its config (see src/node/config.ts).
 */

/** Protocol ids are `/dsm/<name>/<version>`; the DHT uses `/dsm/kad/1.0.0`. */
export const PROTOCOL_PREFIX = '/dsm'

// ---- membership ----------------------------------------------------------

/** How often a node publishes its heartbeat on the membership topic. */
export const HEARTBEAT_INTERVAL_MS = 2_000
/** A member that sent no heartbeat for this long is marked OFFLINE. */
export const OFFLINE_AFTER_MS = 6_000
/** Heartbeats older than this (by the sender's clock) are dropped as stale/replayed. */
export const HEARTBEAT_MAX_AGE_MS = 60_000
/** A heartbeat stamped this far in the future is dropped: the sender's clock is off. */
export const HEARTBEAT_MAX_FUTURE_MS = 60_000
/** Heartbeats larger than this are dropped before decoding. */
export const HEARTBEAT_MAX_BYTES = 16 * 1024
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
/** Longest group name accepted (names are also DHT keys and path-free). */
export const GROUP_NAME_MAX_CHARS = 64
/**
 * An auto-joining node announces its tentative group for this long before it
 * commits, so that nodes starting at once see each other and converge.
 */
export const JOIN_SETTLE_MS = 2 * HEARTBEAT_INTERVAL_MS
/** How often a group member re-provides its group key in the DHT. */
export const GROUP_REPROVIDE_INTERVAL_MS = 10 * 60 * 1000

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
export const MAX_CONNECTIONS = 400
