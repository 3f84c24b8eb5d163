/**
 * The one place that decides who may open which dsm protocol (see
 * PROTOCOL_ACCESS): every handler a node registers goes through this
 * registrar. A stream of a cluster-only protocol from a peer that has not
 * proven the cluster secret — after waiting for its handshake, bounded — is
 * answered with an ERR_PEER_UNAUTHORIZED error frame and closed; the handler
 * never runs, so nothing changes and nothing is handed out.
 */
import { PeerUnauthorizedError, toError } from '../errors.ts'
import { encodeMessage } from '../wire/codec.ts'
import { writeFrame } from '../wire/frames.ts'
import { protocolAccess } from '../wire/messages.ts'
import { ErrorFrameSchema, errorFrame } from '../wire/answer.ts'
import { z } from 'zod'
import type { ConnectionProof } from './fast-dialer.ts'
import type { Registrar } from '../wire/rpc.ts'
import type { Stream } from '@libp2p/interface'

/** How long a refused stream may take to read our answer before it is reset. */
const REFUSE_CLOSE_TIMEOUT_MS = 2_000
const RefusalSchema = z.object({ error: ErrorFrameSchema })

export interface GuardInit {
  /** Public protocols (locate, get, swarm) need the secret too (--signed-urls: reads need a signature over HTTP). */
  publicNeedsProof: boolean
}

async function refuse (stream: Stream, err: Error): Promise<void> {
  const signal = AbortSignal.timeout(REFUSE_CLOSE_TIMEOUT_MS)
  try {
    await writeFrame(stream, encodeMessage(RefusalSchema, { error: errorFrame(err) }), { signal })
    await stream.close({ signal })
  } catch (closeErr) {
    stream.abort(toError(closeErr))
  }
}

export function guardedRegistrar (registrar: Registrar, auth: ConnectionProof, init: GuardInit): Registrar {
  const guarded = (protocol: string): boolean => {
    const access = protocolAccess(protocol)
    return access === 'cluster' || (access === 'public' && init.publicNeedsProof)
  }
  return {
    async handle (protocol, handler, options) {
      if (!guarded(protocol)) { await registrar.handle(protocol, handler, options); return }
      await registrar.handle(protocol, (stream, connection) => {
        auth.ensure(connection).then(
          async () => handler(stream, connection),
          async (err: unknown) => refuse(stream, err instanceof PeerUnauthorizedError ? err : new PeerUnauthorizedError(toError(err).message))
        ).catch((err: unknown) => { stream.abort(toError(err)) })
      }, options)
    },
    async unhandle (protocol) { await registrar.unhandle(protocol) }
  }
}
