/**
 * One named Error subclass per failure. Callers and tests match on `err.name`;
 * `code` is the stable machine-readable identifier sent in HTTP error bodies
 * and wire error frames.
 */
export class DsmError extends Error {
  static override name: string = 'DsmError'
  override name: string = 'DsmError'
  code: string = 'ERR_DSM'
}

/** A config value (flag, env var, dsm.json) is invalid. */
export class InvalidConfigError extends DsmError {
  static override name = 'InvalidConfigError'
  override name = 'InvalidConfigError'
  override code = 'ERR_INVALID_CONFIG'
}

/** A wire frame could not be decoded or failed validation. */
export class InvalidMessageError extends DsmError {
  static override name = 'InvalidMessageError'
  override name = 'InvalidMessageError'
  override code = 'ERR_INVALID_MESSAGE'
}

/** A wire frame or request body was larger than allowed. */
export class MessageTooLargeError extends DsmError {
  static override name = 'MessageTooLargeError'
  override name = 'MessageTooLargeError'
  override code = 'ERR_MESSAGE_TOO_LARGE'
}

/** A heartbeat was rejected (forged, malformed, oversized or stale). */
export class InvalidHeartbeatError extends DsmError {
  static override name = 'InvalidHeartbeatError'
  override name = 'InvalidHeartbeatError'
  override code = 'ERR_INVALID_HEARTBEAT'
}

/** A listen address (HTTP or libp2p) is already taken by another process. */
export class AddressInUseError extends DsmError {
  static override name = 'AddressInUseError'
  override name = 'AddressInUseError'
  override code = 'ERR_ADDRESS_IN_USE'
}

/** The node's HTTP API could not be reached (CLI side). */
export class NodeUnreachableError extends DsmError {
  static override name = 'NodeUnreachableError'
  override name = 'NodeUnreachableError'
  override code = 'ERR_NODE_UNREACHABLE'
}

/** The node answered with an error (CLI side); `code` carries the node's code. */
export class RemoteError extends DsmError {
  static override name = 'RemoteError'
  override name = 'RemoteError'
  override code = 'ERR_REMOTE'
}

/** No such group is known to the cluster. */
export class GroupNotFoundError extends DsmError {
  static override name = 'GroupNotFoundError'
  override name = 'GroupNotFoundError'
  override code = 'ERR_GROUP_NOT_FOUND'
}

/** An operation needs a started node. */
export class NotStartedError extends DsmError {
  static override name = 'NotStartedError'
  override name = 'NotStartedError'
  override code = 'ERR_NOT_STARTED'
}

/** An operation did not finish within its timeout. */
export class TimeoutError extends DsmError {
  static override name = 'TimeoutError'
  override name = 'TimeoutError'
  override code = 'ERR_TIMEOUT'
}

/** The request is malformed (HTTP query, params, headers or body). */
export class BadRequestError extends DsmError {
  static override name = 'BadRequestError'
  override name = 'BadRequestError'
  override code = 'ERR_BAD_REQUEST'
}

/** A string is not a valid dsm file ID (CIDv1, dag-cbor, sha2-256). */
export class InvalidFileIdError extends DsmError {
  static override name = 'InvalidFileIdError'
  override name = 'InvalidFileIdError'
  override code = 'ERR_INVALID_FILE_ID'
}

/** A manifest is malformed or does not hash to the expected file ID. */
export class InvalidManifestError extends DsmError {
  static override name = 'InvalidManifestError'
  override name = 'InvalidManifestError'
  override code = 'ERR_INVALID_MANIFEST'
}

/** A file name is empty, too long, or contains path separators or control characters. */
export class InvalidFileNameError extends DsmError {
  static override name = 'InvalidFileNameError'
  override name = 'InvalidFileNameError'
  override code = 'ERR_INVALID_FILE_NAME'
}

/** No replica of the file could be found. */
export class FileNotFoundError extends DsmError {
  static override name = 'FileNotFoundError'
  override name = 'FileNotFoundError'
  override code = 'ERR_FILE_NOT_FOUND'
}

/** Storing this would cross the node's reserve of free disk space. */
export class InsufficientStorageError extends DsmError {
  static override name = 'InsufficientStorageError'
  override name = 'InsufficientStorageError'
  override code = 'ERR_INSUFFICIENT_STORAGE'
}

/** Fewer replicas than the write quorum stored the file; the upload is not acknowledged. */
export class QuorumError extends DsmError {
  static override name = 'QuorumError'
  override name = 'QuorumError'
  override code = 'ERR_QUORUM'
}

/** No group has an ACTIVE member to take the write. */
export class NoGroupAvailableError extends DsmError {
  static override name = 'NoGroupAvailableError'
  override name = 'NoGroupAvailableError'
  override code = 'ERR_NO_GROUP'
}

/** A chunk failed verification against its hash. */
export class CorruptChunkError extends DsmError {
  static override name = 'CorruptChunkError'
  override name = 'CorruptChunkError'
  override code = 'ERR_CORRUPT_CHUNK'
  /** The stored copy that failed, when it was one of ours (volume 0: inline). */
  readonly at?: { volume: number, offset: number }

  constructor (message: string, options: ErrorOptions & { at?: { volume: number, offset: number } } = {}) {
    super(message, options)
    if (options.at != null) this.at = options.at
  }
}

/** No replica could serve the request right now. */
export class UnavailableError extends DsmError {
  static override name = 'UnavailableError'
  override name = 'UnavailableError'
  override code = 'ERR_UNAVAILABLE'
}

/** The request needs a member of the group and this node is not one (or not ACTIVE). */
export class NotAMemberError extends DsmError {
  static override name = 'NotAMemberError'
  override name = 'NotAMemberError'
  override code = 'ERR_NOT_A_MEMBER'
}

/** The requested byte range lies outside the file. */
export class RangeNotSatisfiableError extends DsmError {
  static override name = 'RangeNotSatisfiableError'
  override name = 'RangeNotSatisfiableError'
  override code = 'ERR_RANGE_NOT_SATISFIABLE'
}

/** A write (upload, delete, signing) came without the cluster token, or with a wrong one. */
export class UnauthorizedError extends DsmError {
  static override name = 'UnauthorizedError'
  override name = 'UnauthorizedError'
  override code = 'ERR_UNAUTHORIZED'
}

/** A signed download URL whose expiry has passed. */
export class UrlExpiredError extends DsmError {
  static override name = 'UrlExpiredError'
  override name = 'UrlExpiredError'
  override code = 'ERR_URL_EXPIRED'
}

/** A download that needs a signed URL came without one, or with a signature that does not match. */
export class UrlSignatureError extends DsmError {
  static override name = 'UrlSignatureError'
  override name = 'UrlSignatureError'
  override code = 'ERR_BAD_SIGNATURE'
}

/** The node's database file is damaged: the node cannot start on it (see `dsm node --rebuild`). */
export class DatabaseDamagedError extends DsmError {
  static override name = 'DatabaseDamagedError'
  override name = 'DatabaseDamagedError'
  override code = 'ERR_DATABASE_DAMAGED'
}

/** The database was written by a newer dsm (a schema this binary does not know): it is not opened, so nothing is misread. */
export class DatabaseVersionError extends DsmError {
  static override name = 'DatabaseVersionError'
  override name = 'DatabaseVersionError'
  override code = 'ERR_DATABASE_VERSION'
}

/** A client sent its request (headers or body) too slowly: 408, and the connection is closed. */
export class RequestTimeoutError extends DsmError {
  static override name = 'RequestTimeoutError'
  override name = 'RequestTimeoutError'
  override code = 'ERR_REQUEST_TIMEOUT'
}

/** A peer did not prove it holds the cluster secret (or refused ours): it may not use cluster protocols. */
export class PeerUnauthorizedError extends DsmError {
  static override name = 'PeerUnauthorizedError'
  override name = 'PeerUnauthorizedError'
  override code = 'ERR_PEER_UNAUTHORIZED'
}

/** Build an Error from a value thrown by code we do not control. */
export function toError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/** An error received from a remote node keeps the code it was sent with. */
export function remoteError (code: string, message: string): RemoteError {
  const err = new RemoteError(message)
  err.code = code
  return err
}

/** The store was stopped (or never started) while an operation needed it. */
export class StoreStoppedError extends DsmError {
  static override name = 'StoreStoppedError'
  override name = 'StoreStoppedError'
  override code = 'ERR_STORE_STOPPED'
}

/**
 * A forced write (fdatasync) failed. After such a failure the kernel may have
 * dropped the unwritten pages, so a retry proves nothing: the file refuses
 * every later sync, and what waited on it is not acknowledged.
 */
export class DiskSyncError extends DsmError {
  static override name = 'DiskSyncError'
  override name = 'DiskSyncError'
  override code = 'ERR_DISK_SYNC'
}

/** Another process already runs a node on this data directory. */
export class DataDirLockedError extends DsmError {
  static override name = 'DataDirLockedError'
  override name = 'DataDirLockedError'
  override code = 'ERR_DATA_DIR_LOCKED'
}

/** A chunk this node does not (or no longer) store was asked for. */
export class ChunkNotStoredError extends DsmError {
  static override name = 'ChunkNotStoredError'
  override name = 'ChunkNotStoredError'
  override code = 'ERR_CHUNK_NOT_STORED'
}

/** A node that joins a cluster was given no cluster secret (it would silently start a cluster of its own). */
export class SecretRequiredError extends DsmError {
  static override name = 'SecretRequiredError'
  override name = 'SecretRequiredError'
  override code = 'ERR_SECRET_REQUIRED'
}

/** A copy of the file is prepared but its upload is not decided yet (it may already be acknowledged): retry, it is not "not found". */
export class UndecidedError extends DsmError {
  static override name = 'UndecidedError'
  override name = 'UndecidedError'
  override code = 'ERR_UNDECIDED'
}

/** An S3 bucket does not exist. */
export class NoSuchBucketError extends DsmError {
  static override name = 'NoSuchBucketError'
  override name = 'NoSuchBucketError'
  override code = 'ERR_NO_SUCH_BUCKET'
}

/** A bucket that exists already was to be created. */
export class BucketExistsError extends DsmError {
  static override name = 'BucketExistsError'
  override name = 'BucketExistsError'
  override code = 'ERR_BUCKET_EXISTS'
}

/** A bucket that still holds keys was to be deleted. */
export class BucketNotEmptyError extends DsmError {
  static override name = 'BucketNotEmptyError'
  override name = 'BucketNotEmptyError'
  override code = 'ERR_BUCKET_NOT_EMPTY'
}

/** No usable ffmpeg/ffprobe (neither the system's, new enough, nor the npm packages' binaries). */
export class MediaToolsError extends DsmError {
  static override name = 'MediaToolsError'
  override name = 'MediaToolsError'
  override code = 'ERR_MEDIA_TOOLS'
}

/** ffprobe could not read a media file (corrupt, not media, missing); the message carries its reason. */
export class ProbeError extends DsmError {
  static override name = 'ProbeError'
  override name = 'ProbeError'
  override code = 'ERR_PROBE'
}

/** ffmpeg failed to make a rendition, a poster or a storyboard; the message carries ffmpeg's reason. */
export class TranscodeError extends DsmError {
  static override name = 'TranscodeError'
  override name = 'TranscodeError'
  override code = 'ERR_TRANSCODE'
}

/** No such video package (never asked for, deleted, or cancelled). */
export class NoSuchPackageError extends DsmError {
  static override name = 'NoSuchPackageError'
  override name = 'NoSuchPackageError'
  override code = 'ERR_NO_SUCH_PACKAGE'
}
