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

/** A group name is malformed. */
export class InvalidGroupNameError extends DsmError {
  static override name = 'InvalidGroupNameError'
  override name = 'InvalidGroupNameError'
  override code = 'ERR_INVALID_GROUP_NAME'
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

/** The remote peer answered a request with an error frame. */
export class ProtocolError extends DsmError {
  static override name = 'ProtocolError'
  override name = 'ProtocolError'
  override code = 'ERR_PROTOCOL'
}

/** The requested route or resource does not exist. */
export class NotFoundError extends DsmError {
  static override name = 'NotFoundError'
  override name = 'NotFoundError'
  override code = 'ERR_NOT_FOUND'
}

/** The request is malformed (HTTP query, params, headers or body). */
export class BadRequestError extends DsmError {
  static override name = 'BadRequestError'
  override name = 'BadRequestError'
  override code = 'ERR_BAD_REQUEST'
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
